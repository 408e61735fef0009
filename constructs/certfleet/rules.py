"""What each AWS service accepts from an imported certificate: region, key algorithms, TLS floors.

Pure data from ../shared/FACTS.md. Where AWS documents nothing firm, the key is listed as
``unverified`` (a warning, never an error), so being wrong about it does no harm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

EDGE_REGION = "us-east-1"

RSA_1024 = "RSA_1024"
RSA_2048 = "RSA_2048"
RSA_3072 = "RSA_3072"
RSA_4096 = "RSA_4096"
EC_P256 = "EC_prime256v1"
EC_P384 = "EC_secp384r1"
EC_P521 = "EC_secp521r1"

#: Every key algorithm ACM ImportCertificate accepts, in ACM's own spelling.
ACM_KEY_ALGORITHMS: tuple[str, ...] = (RSA_1024, RSA_2048, RSA_3072, RSA_4096, EC_P256, EC_P384, EC_P521)
RSA_ALL = frozenset({RSA_1024, RSA_2048, RSA_3072, RSA_4096})
EC_ALL = frozenset({EC_P256, EC_P384, EC_P521})
ALL = RSA_ALL | EC_ALL


class Service(StrEnum):
    """Every service of the seed's table that can (or cannot) use an imported certificate."""

    CLOUDFRONT = "cloudfront"
    API_GATEWAY_EDGE = "apigateway-edge"
    API_GATEWAY_REGIONAL = "apigateway-regional"
    API_GATEWAY_V2 = "apigatewayv2"
    AMPLIFY = "amplify"
    ALB = "alb"
    NLB = "nlb"
    CLB = "clb"
    ELASTIC_BEANSTALK = "elasticbeanstalk"
    TRANSFER_FAMILY = "transfer"
    APP_RUNNER = "apprunner"
    APPSYNC = "appsync"
    COGNITO = "cognito"
    EC2 = "ec2"


class Placement(StrEnum):
    """Where the certificate must live for a service."""

    EDGE = "us-east-1"  # whatever region the consumer itself is in
    LOCAL = "the consumer's own region"
    NONE = "not in ACM"


@dataclass(frozen=True)
class ServiceRule:
    """One row of the table: what a service takes and what it refuses."""

    service: Service
    title: str
    placement: Placement
    accepted: frozenset[str] = frozenset()
    refused: frozenset[str] = frozenset()
    accepts_imported: bool = True
    refusal: str = ""
    tls_floor: str = ""
    notes: str = ""
    aliases: tuple[str, ...] = field(default=())
    region_verified: bool = True  # False: AWS documents no region; a wrong one is a warning, never an error

    def judge_key(self, algorithm: str) -> str:
        """Return ``accepted``, ``refused`` or ``unverified`` for an ACM key algorithm name."""
        if algorithm in self.refused or algorithm not in ALL:
            return "refused"
        if algorithm in self.accepted:
            return "accepted"
        return "unverified"

    def region_for(self, consumer_region: str) -> str | None:
        """The region the certificate must be in for a consumer in ``consumer_region``."""
        if self.placement is Placement.EDGE:
            return EDGE_REGION
        if self.placement is Placement.LOCAL:
            return consumer_region
        return None


_CLOUDFRONT_KEYS = RSA_ALL | {EC_P256}

RULES: dict[Service, ServiceRule] = {
    r.service: r
    for r in (
        ServiceRule(
            Service.CLOUDFRONT, "CloudFront distribution", Placement.EDGE,
            accepted=_CLOUDFRONT_KEYS, refused=frozenset({EC_P384, EC_P521}),
            tls_floor="MinimumProtocolVersion TLSv1.2_2021 or newer, SSLSupportMethod sni-only",
            aliases=("cf",),
        ),
        ServiceRule(
            Service.API_GATEWAY_EDGE, "API Gateway REST API, edge-optimized domain", Placement.EDGE,
            accepted=_CLOUDFRONT_KEYS, refused=frozenset({EC_P384, EC_P521}),
            tls_floor="SecurityPolicy TLS_1_2",
            notes="CertificateArn; the certificate must be in us-east-1 whatever the API's region",
            aliases=("apigw-edge", "api-edge", "edge-api"),
        ),
        ServiceRule(
            Service.API_GATEWAY_REGIONAL, "API Gateway REST API, regional domain", Placement.LOCAL,
            accepted=frozenset({RSA_1024, RSA_2048}),
            tls_floor="SecurityPolicy TLS_1_2",
            notes="RegionalCertificateArn; AWS documents RSA up to 2048 bits, larger keys and ECDSA are unverified",
            aliases=("apigw-regional", "api-regional", "regional-api", "apigateway"),
        ),
        ServiceRule(
            Service.API_GATEWAY_V2, "API Gateway HTTP/WebSocket API domain", Placement.LOCAL,
            accepted=frozenset({RSA_1024, RSA_2048}),
            tls_floor="SecurityPolicy TLS_1_2",
            notes="regional domain names only; RSA up to 2048 bits documented, others unverified",
            aliases=("http-api", "websocket-api", "apigwv2"),
        ),
        ServiceRule(
            Service.AMPLIFY, "Amplify Hosting custom domain", Placement.EDGE,
            accepted=_CLOUDFRONT_KEYS, refused=frozenset({EC_P384, EC_P521}),
            notes="CertificateSettings {CertificateType: CUSTOM, CustomCertificateArn}",
        ),
        ServiceRule(
            Service.ALB, "Application Load Balancer", Placement.LOCAL, accepted=ALL,
            tls_floor="SslPolicy ELBSecurityPolicy-TLS13-1-2-2021-06 or newer (the default 2016-08 has no TLS 1.3)",
            aliases=("elb", "elbv2"),
        ),
        ServiceRule(
            Service.NLB, "Network Load Balancer TLS listener", Placement.LOCAL,
            accepted=frozenset({RSA_1024, RSA_2048, RSA_3072}) | EC_ALL, refused=frozenset({RSA_4096}),
            tls_floor="SslPolicy ELBSecurityPolicy-TLS13-1-2-2021-06 or newer",
        ),
        ServiceRule(
            Service.CLB, "Classic Load Balancer", Placement.LOCAL,
            accepted=frozenset({RSA_1024, RSA_2048, RSA_3072}),
            notes="older AWS docs: no RSA 4096 and no EC keys through ACM (unverified today); legacy",
        ),
        ServiceRule(
            Service.ELASTIC_BEANSTALK, "Elastic Beanstalk environment load balancer", Placement.LOCAL,
            accepted=ALL,
            notes="aws:elbv2:listener:443 SSLCertificateArns (ALB) or aws:elb:listener:443 SSLCertificateId "
            "(CLB, where the Classic Load Balancer's limits apply); single-instance environments have no "
            "load balancer",
            aliases=("beanstalk", "eb"),
        ),
        ServiceRule(
            Service.TRANSFER_FAMILY, "Transfer Family FTPS server", Placement.LOCAL,
            accepted=frozenset({RSA_2048, RSA_4096}) | EC_ALL,
            notes="FTPS needs EndpointType VPC; the certificate region is assumed to be the server's",
            aliases=("ftps", "transfer-family"),
        ),
        ServiceRule(
            Service.APP_RUNNER, "App Runner custom domain", Placement.NONE, accepts_imported=False,
            refusal="App Runner does not accept imported certificates: AssociateCustomDomain takes no "
            "certificate, App Runner issues and manages its own. Associate the domain with App Runner and "
            "let it validate, or put CloudFront in front of the service with this certificate in us-east-1.",
            aliases=("app-runner",),
        ),
        ServiceRule(
            Service.APPSYNC, "AppSync custom domain", Placement.EDGE,
            accepted=_CLOUDFRONT_KEYS, region_verified=False,
            notes="us-east-1 (unverified); served through CloudFront, so P-384/P-521 are unverified",
        ),
        ServiceRule(
            Service.COGNITO, "Cognito user pool custom domain", Placement.EDGE,
            accepted=_CLOUDFRONT_KEYS,
            tls_floor="SecurityPolicy TLS_V1_2_2021 or TLS_V1_3_2025",
            notes="served through CloudFront, so P-384/P-521 are unverified",
        ),
        ServiceRule(
            Service.EC2, "EC2 instance (nginx, Apache)", Placement.NONE, accepted=ALL,
            notes="no ACM: the key and certificate are files on the instance, read from Secrets Manager",
            aliases=("nginx", "apache"),
        ),
    )
}


def service_named(name: str) -> Service:
    """Resolve a service name or alias (case-insensitive); raise ``KeyError`` naming the choices."""
    wanted = name.strip().lower().replace("_", "-")
    for rule in RULES.values():
        if wanted == rule.service.value or wanted in rule.aliases:
            return rule.service
    choices = ", ".join(s.value for s in Service)
    raise KeyError(f"unknown service {name!r}; choose one of: {choices}")
