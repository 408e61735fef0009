"""What each AWS service accepts from an imported certificate: region, key algorithms, TLS floors.

Pure data from ../shared/FACTS.md; each rule's comment quotes its source. Where AWS documents nothing firm (a key
neither accepted nor refused, a region with ``region_verified=False``) it is ``unverified``: a warning, never an error,
so being wrong about it does no harm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from certfleet._lambda.certfleet_contract import (
    ACM_KEY_TYPES,
    EC_P256,
    EC_P384,
    EC_P521,
    RSA_1024,
    RSA_2048,
    RSA_3072,
    RSA_4096,
)

EDGE_REGION = "us-east-1"

#: Every key algorithm ACM ImportCertificate accepts, in ACM's own spelling (the handlers' contract).
ACM_KEY_ALGORITHMS: tuple[str, ...] = ACM_KEY_TYPES
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


@dataclass(frozen=True)
class TlsFloor:
    """The oldest TLS policy a consumer should allow: which setting holds it, and which values are below it."""

    setting: str  # the CloudFormation property, e.g. "MinimumProtocolVersion"
    floor: str  # the oldest policy at the floor, named in messages
    below: frozenset[str] = frozenset()  # known policies below the floor
    marker: str = ""  # a policy at the floor contains this ("TLS13"); any other literal is below it
    default: str = ""  # what the service uses when the setting is absent ("" when that is at the floor)
    cdk_setting: str = ""  # the CDK keyword and value that reach the floor, for the fix

    def is_below(self, policy: str | None) -> bool:
        """True for a literal policy (``None``: the setting is absent) that allows TLS below the floor."""
        if policy is None:
            return bool(self.default)
        if self.marker:
            return self.marker not in policy
        return policy in self.below


# CloudFront security policies, oldest first (CloudFront developer guide, supported protocols and ciphers): the
# floor is TLSv1.2_2021 (FACTS.md); an absent MinimumProtocolVersion means TLSv1.
CLOUDFRONT_POLICIES: tuple[str, ...] = (
    "SSLv3", "TLSv1", "TLSv1_2016", "TLSv1.1_2016", "TLSv1.2_2018", "TLSv1.2_2019",
    "TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025",
)
CLOUDFRONT_TLS = TlsFloor(
    "MinimumProtocolVersion", "TLSv1.2_2021",
    below=frozenset(CLOUDFRONT_POLICIES[: CLOUDFRONT_POLICIES.index("TLSv1.2_2021")]), default="TLSv1",
    cdk_setting="minimum_protocol_version=SecurityPolicyProtocol.TLS_V1_2_2021",
)
# API Gateway custom domain names: SecurityPolicy TLS_1_0 or TLS_1_2, or an enhanced TLS 1.3 policy. An absent
# SecurityPolicy is not judged: aws-cdk-lib 2.275 writes none unless asked, and AWS's default is unverified.
API_TLS = TlsFloor("SecurityPolicy", "TLS_1_2", below=frozenset({"TLS_1_0", "TLS_1_1"}),
                   cdk_setting="security_policy=SecurityPolicy.TLS_1_2")
# ELB: the default ELBSecurityPolicy-2016-08 has no TLS 1.3; every TLS 1.3 policy's name holds "TLS13".
ELB_TLS = TlsFloor("SslPolicy", "ELBSecurityPolicy-TLS13-1-2-2021-06", marker="TLS13",
                   default="ELBSecurityPolicy-2016-08", cdk_setting="ssl_policy=SslPolicy.RECOMMENDED_TLS")
#: AWS's current recommendation for a new ELB listener (FACTS.md).
ELB_RECOMMENDED_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"


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
    tls: TlsFloor | None = None  # the floor the template checks judge; None when the service sets its own
    notes: str = ""
    aliases: tuple[str, ...] = field(default=())
    region_verified: bool = True  # False: AWS documents no region; a wrong one is a warning, never an error
    #: the service's answer at deploy time to a certificate in a wrong region ("{region}": the one needed, "{arn}")
    deploy_error: str = ""

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


# CloudFront: "CloudFront only supports 1024-bit RSA, 2048-bit RSA, 3072-bit RSA, 4096-bit RSA, and Elliptic Prime Curve
# 256-bit keys" (https://docs.aws.amazon.com/acm/latest/userguide/import-certificate-prerequisites.html). Services that
# serve a custom domain through a CloudFront distribution (AppSync, Cognito, edge-optimized API Gateway, Amplify)
# take the certificate CloudFront takes.
_CLOUDFRONT_KEYS = RSA_ALL | {EC_P256}
_CLOUDFRONT_REFUSED = frozenset({EC_P384, EC_P521})
# API Gateway regional custom domain names (REST, HTTP and WebSocket APIs): "If you create a Regional custom domain
# name, the maximum size of the public key is 2048." (https://docs.aws.amazon.com/apigateway/latest/developerguide/
# how-to-specify-certificate-for-custom-domain-name.html). ECDSA keys are not mentioned there: unverified.
_REGIONAL_API_KEYS = frozenset({RSA_1024, RSA_2048})
_REGIONAL_API_REFUSED = frozenset({RSA_3072, RSA_4096})

RULES: dict[Service, ServiceRule] = {
    r.service: r
    for r in (
        # Region: "To use an ACM certificate with Amazon CloudFront, you must request or import the certificate in
        # the US East (N. Virginia) region." (https://docs.aws.amazon.com/acm/latest/userguide/acm-regions.html)
        # Error text (InvalidViewerCertificate): JakePartusch/serverlessui issue #20, cloudposse issue #10.
        ServiceRule(
            Service.CLOUDFRONT, "CloudFront distribution", Placement.EDGE,
            accepted=_CLOUDFRONT_KEYS, refused=_CLOUDFRONT_REFUSED,
            tls=CLOUDFRONT_TLS,
            notes="SSLSupportMethod sni-only (vip costs extra)",
            deploy_error="The specified SSL certificate doesn't exist, isn't in us-east-1 region, isn't valid, or "
            "doesn't include a valid certificate chain.",
            aliases=("cf",),
        ),
        # "To use an ACM certificate with an edge-optimized custom domain name, you must request or import the
        # certificate in the US East (N. Virginia) - us-east-1 Region." (API Gateway, how-to-specify-certificate-...)
        # Keys: "the requirements and constraints of a custom domain name SSL/TLS certificate are dictated by
        # CloudFront" (same page). Error text: serverless-domain-manager issue #64, architect/architect issue #25.
        ServiceRule(
            Service.API_GATEWAY_EDGE, "API Gateway REST API, edge-optimized domain", Placement.EDGE,
            accepted=_CLOUDFRONT_KEYS, refused=_CLOUDFRONT_REFUSED,
            tls=API_TLS,
            notes="CertificateArn; the certificate must be in us-east-1 whatever the API's region",
            deploy_error="Invalid certificate ARN: {arn}. Certificate must be in 'us-east-1'.",
            aliases=("apigw-edge", "api-edge", "edge-api"),
        ),
        # "To use an ACM certificate with a Regional custom domain name, you must request or import the certificate
        # in the same Region as your API." (same page). Error text: serverless-domain-manager pull request #49.
        ServiceRule(
            Service.API_GATEWAY_REGIONAL, "API Gateway REST API, regional domain", Placement.LOCAL,
            accepted=_REGIONAL_API_KEYS, refused=_REGIONAL_API_REFUSED,
            tls=API_TLS,
            notes="RegionalCertificateArn; RSA public keys of at most 2048 bits (AWS documents the maximum), "
            "ECDSA unverified",
            deploy_error="Invalid certificate ARN: {arn}. Certificate must be in '{region}'.",
            aliases=("apigw-regional", "api-regional", "regional-api", "apigateway"),
        ),
        # "A Regional custom domain name can be associated with REST APIs and HTTP APIs" (API Gateway,
        # how-to-custom-domains.html): the regional rules above apply.
        ServiceRule(
            Service.API_GATEWAY_V2, "API Gateway HTTP/WebSocket API domain", Placement.LOCAL,
            accepted=_REGIONAL_API_KEYS, refused=_REGIONAL_API_REFUSED,
            tls=API_TLS,
            notes="regional domain names only; RSA public keys of at most 2048 bits, ECDSA unverified",
            deploy_error="Invalid certificate ARN: {arn}. Certificate must be in '{region}'.",
            aliases=("http-api", "websocket-api", "apigwv2"),
        ),
        # "Make sure you request (or import) the certificate in the US East (N. Virginia) Region (us-east-1)."
        # (AWS::Amplify::Domain CertificateSettings, CloudFormation template reference)
        ServiceRule(
            Service.AMPLIFY, "Amplify Hosting custom domain", Placement.EDGE,
            accepted=_CLOUDFRONT_KEYS, refused=_CLOUDFRONT_REFUSED,
            notes="CertificateSettings {CertificateType: CUSTOM, CustomCertificateArn}",
        ),
        # "Application Load Balancer supports all of the algorithms available from ACM" (ACM import prerequisites);
        # "To use a certificate with Elastic Load Balancing ... in more than one AWS region, you must request or
        # import a certificate for each region." (ACM acm-regions.html)
        ServiceRule(
            Service.ALB, "Application Load Balancer", Placement.LOCAL, accepted=ALL,
            tls=ELB_TLS,
            aliases=("elb", "elbv2"),
        ),
        # AWS's notice to an account with an RSA 4096 NLB listener: "Network Load Balancers support RSA certificates
        # with up to 3072-bit keys and ECDSA certificates with curves P-256, P-384, and P-521."
        # (quoted in mattclay/aws-terminator issue #309)
        ServiceRule(
            Service.NLB, "Network Load Balancer TLS listener", Placement.LOCAL,
            accepted=frozenset({RSA_1024, RSA_2048, RSA_3072}) | EC_ALL, refused=frozenset({RSA_4096}),
            tls=ELB_TLS,
        ),
        # Region: "To deploy a certificate on your load balancer, the certificate must be in the same region as the
        # load balancer." (https://docs.aws.amazon.com/elasticloadbalancing/latest/classic/ssl-server-cert.html).
        # Keys: RSA 4096 and ECDSA through ACM are unverified. An older Application Load Balancer guide said "ACM
        # supports RSA certificates with a 4096 key length and EC certificates. However, you cannot install these
        # certificates on your load balancer through integration with ACM." (create-https-listener.html, since
        # replaced); awsdocs/aws-certificate-user-guide issue #1 (2018) reported the same for CLBs. No current CLB
        # text found (searched the ELB Classic guide, the ACM guide, public issues).
        ServiceRule(
            Service.CLB, "Classic Load Balancer", Placement.LOCAL,
            accepted=frozenset({RSA_1024, RSA_2048, RSA_3072}),
            notes="RSA 4096 and EC keys through ACM unverified (older ELB guides refused them); legacy",
        ),
        ServiceRule(
            Service.ELASTIC_BEANSTALK, "Elastic Beanstalk environment load balancer", Placement.LOCAL,
            accepted=ALL,
            notes="aws:elbv2:listener:443 SSLCertificateArns (ALB) or aws:elb:listener:443 SSLCertificateId "
            "(CLB, where the Classic Load Balancer's limits apply); single-instance environments have no "
            "load balancer",
            aliases=("beanstalk", "eb"),
        ),
        # Keys: "Certificates with the following cryptographic algorithms and key sizes are supported: 2048-bit RSA,
        # 4096-bit RSA, Elliptic Prime Curve 256/384/521 bit" (Transfer CreateServer Certificate, botocore model).
        # Region: no AWS text says the certificate must be in the server's region (searched the Transfer Family
        # guide, CreateServer reference, public issues): unverified, a wrong region is a warning.
        ServiceRule(
            Service.TRANSFER_FAMILY, "Transfer Family FTPS server", Placement.LOCAL,
            accepted=frozenset({RSA_2048, RSA_4096}) | EC_ALL, refused=frozenset({RSA_1024, RSA_3072}),
            region_verified=False,
            notes="FTPS needs EndpointType VPC; the server's region is assumed (unverified)",
            aliases=("ftps", "transfer-family"),
        ),
        ServiceRule(
            Service.APP_RUNNER, "App Runner custom domain", Placement.NONE, accepts_imported=False,
            refusal="App Runner does not accept imported certificates: AssociateCustomDomain takes no "
            "certificate, App Runner issues and manages its own. Associate the domain with App Runner and "
            "let it validate, or put CloudFront in front of the service with this certificate in us-east-1.",
            aliases=("app-runner",),
        ),
        # GraphQL and Event APIs alike (both synthesize AWS::AppSync::DomainName). "Creating a custom domain name for
        # an AWS AppSync API sets up an Amazon CloudFront distribution." (AppSync guide, custom-domain-name.html,
        # and the Event API guide, event-api-custom-domains.html). AppSync refuses another region at deploy time:
        # "Invalid request provided: Certificate must be in us-east-1." (serverless-appsync-plugin issue #587).
        ServiceRule(
            Service.APPSYNC, "AppSync custom domain", Placement.EDGE,
            accepted=_CLOUDFRONT_KEYS, refused=_CLOUDFRONT_REFUSED,
            notes="GraphQL and Event APIs; served through CloudFront; TLS 1.2 and 1.3 only (set by AppSync)",
            deploy_error="Invalid request provided: Certificate must be in us-east-1.",
            aliases=("appsync-graphql", "appsync-events", "graphql-api", "event-api"),
        ),
        # "Custom domains also require an SSL certificate ... managed with AWS Certificate Manager (ACM) in US East
        # (N. Virginia). Amazon Cognito creates a Amazon CloudFront distribution, secured in transit with your ACM
        # certificate." (Cognito developer guide, cognito-user-pools-add-custom-domain.html)
        ServiceRule(
            Service.COGNITO, "Cognito user pool custom domain", Placement.EDGE,
            accepted=_CLOUDFRONT_KEYS, refused=_CLOUDFRONT_REFUSED,
            notes="served through CloudFront; SecurityPolicy TLS_V1_2_2021 or TLS_V1_3_2025 (not checked)",
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
