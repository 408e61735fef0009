"""The seed article's architectures as CDK stacks, each handed its certificate by a CertificateFleet.

Every stack pins its account and region (no context lookups: availability zones are given), so the whole
reference app synthesizes offline.
"""

from __future__ import annotations

from aws_cdk import Environment, Stack
from aws_cdk import aws_amplify as amplify
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticbeanstalk as beanstalk
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_transfer as transfer
from constructs import Construct

from certfleet.fleet import CertificateFleet
from certfleet.rules import Service

ALB_POLICY = elbv2.SslPolicy.RECOMMENDED_TLS
CLOUDFRONT_TLS = cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021
_HELLO = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'hello from certfleet'}\n"


class _Base(Stack):
    def __init__(self, scope: Construct, id: str, *, fleet: CertificateFleet, region: str, domain: str) -> None:
        super().__init__(scope, id, env=Environment(account=fleet.account, region=region),
                         description=f"certfleet reference app: {type(self).__name__} in {region}")
        self.fleet = fleet
        self.domain = domain

    @property
    def availability_zones(self) -> list[str]:
        """Fixed zones: the reference app synthesizes offline, with no context lookup."""
        return [f"{self.region}a", f"{self.region}c"]

    def vpc(self) -> ec2.Vpc:
        return ec2.Vpc(
            self, "Vpc", nat_gateways=0, max_azs=2,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )

    def alb(self, vpc: ec2.Vpc) -> elbv2.ApplicationLoadBalancer:
        """An internet-facing ALB with an HTTPS listener on the fleet certificate of this region."""
        alb = elbv2.ApplicationLoadBalancer(self, "Alb", vpc=vpc, internet_facing=True)
        alb.add_listener(
            "Https", port=443, ssl_policy=ALB_POLICY,
            certificates=[self.fleet.certificate_for(self, Service.ALB)],
            default_action=elbv2.ListenerAction.fixed_response(200, content_type="text/plain", message_body="ok"),
        )
        return alb

    def hello(self) -> lambda_.Function:
        return lambda_.Function(self, "Hello", runtime=lambda_.Runtime.PYTHON_3_14, handler="index.handler",
                                code=lambda_.Code.from_inline(_HELLO))


class CloudFrontAlbStack(_Base):
    """Seed architecture 1: CloudFront (certificate in us-east-1) in front of an ALB (certificate local)."""

    def __init__(self, scope: Construct, id: str, *, fleet: CertificateFleet, region: str, domain: str) -> None:
        super().__init__(scope, id, fleet=fleet, region=region, domain=domain)
        alb = self.alb(self.vpc())
        cloudfront.Distribution(
            self, "Cdn",
            default_behavior=cloudfront.BehaviorOptions(origin=origins.LoadBalancerV2Origin(alb)),
            domain_names=[f"www.{domain}"],
            certificate=fleet.certificate_for(self, Service.CLOUDFRONT),
            minimum_protocol_version=CLOUDFRONT_TLS,
        )


class CloudFrontRegionalApiStack(_Base):
    """Seed architecture 2: CloudFront (us-east-1 certificate) in front of a regional REST API (local one)."""

    def __init__(self, scope: Construct, id: str, *, fleet: CertificateFleet, region: str, domain: str) -> None:
        super().__init__(scope, id, fleet=fleet, region=region, domain=domain)
        api = apigateway.LambdaRestApi(
            self, "Api", handler=self.hello(), endpoint_types=[apigateway.EndpointType.REGIONAL],
            domain_name=apigateway.DomainNameOptions(
                domain_name=f"api.{domain}", endpoint_type=apigateway.EndpointType.REGIONAL,
                certificate=fleet.certificate_for(self, Service.API_GATEWAY_REGIONAL),
                security_policy=apigateway.SecurityPolicy.TLS_1_2,
            ),
        )
        cloudfront.Distribution(
            self, "Cdn",
            default_behavior=cloudfront.BehaviorOptions(origin=origins.RestApiOrigin(api)),
            domain_names=[f"app.{domain}"],
            certificate=fleet.certificate_for(self, Service.CLOUDFRONT),
            minimum_protocol_version=CLOUDFRONT_TLS,
        )


class EdgeApiStack(_Base):
    """Seed architecture 3: an edge-optimized REST API created outside us-east-1 (certificate in us-east-1)."""

    def __init__(self, scope: Construct, id: str, *, fleet: CertificateFleet, region: str, domain: str) -> None:
        super().__init__(scope, id, fleet=fleet, region=region, domain=domain)
        apigateway.LambdaRestApi(
            self, "Api", handler=self.hello(), endpoint_types=[apigateway.EndpointType.EDGE],
            domain_name=apigateway.DomainNameOptions(
                domain_name=f"edge-api.{domain}", endpoint_type=apigateway.EndpointType.EDGE,
                certificate=fleet.certificate_for(self, Service.API_GATEWAY_EDGE),
                security_policy=apigateway.SecurityPolicy.TLS_1_2,
            ),
        )


class HttpApiStack(_Base):
    """An HTTP API (API Gateway v2) custom domain: regional, certificate in the API's region."""

    def __init__(self, scope: Construct, id: str, *, fleet: CertificateFleet, region: str, domain: str) -> None:
        super().__init__(scope, id, fleet=fleet, region=region, domain=domain)
        name = apigwv2.DomainName(
            self, "Domain", domain_name=f"http-api.{domain}",
            certificate=fleet.certificate_for(self, Service.API_GATEWAY_V2),
            security_policy=apigwv2.SecurityPolicy.TLS_1_2,
        )
        apigwv2.HttpApi(
            self, "Api", default_integration=integrations.HttpLambdaIntegration("Hello", self.hello()),
            default_domain_mapping=apigwv2.DomainMappingOptions(domain_name=name),
        )


class RegionalAlbStack(_Base):
    """One region of the multi-region DR set: an ALB with the certificate of its own region."""

    def __init__(self, scope: Construct, id: str, *, fleet: CertificateFleet, region: str, domain: str) -> None:
        super().__init__(scope, id, fleet=fleet, region=region, domain=domain)
        self.alb(self.vpc())


class AmplifyStack(_Base):
    """An Amplify Hosting app with a custom domain on the imported certificate (us-east-1)."""

    def __init__(self, scope: Construct, id: str, *, fleet: CertificateFleet, region: str, domain: str) -> None:
        super().__init__(scope, id, fleet=fleet, region=region, domain=domain)
        app = amplify.CfnApp(self, "App", name="certfleet-reference", platform="WEB")
        branch = amplify.CfnBranch(self, "Main", app_id=app.attr_app_id, branch_name="main")
        amplify.CfnDomain(
            self, "Domain", app_id=app.attr_app_id, domain_name=domain,
            sub_domain_settings=[amplify.CfnDomain.SubDomainSettingProperty(
                branch_name=branch.branch_name, prefix="docs",
            )],
            certificate_settings=amplify.CfnDomain.CertificateSettingsProperty(
                certificate_type="CUSTOM",
                custom_certificate_arn=fleet.certificate_for(self, Service.AMPLIFY).certificate_arn,
            ),
        ).node.add_dependency(branch)


class TransferFtpsStack(_Base):
    """A Transfer Family FTPS server (VPC endpoint, Lambda identity provider) with the local certificate."""

    def __init__(self, scope: Construct, id: str, *, fleet: CertificateFleet, region: str, domain: str) -> None:
        super().__init__(scope, id, fleet=fleet, region=region, domain=domain)
        vpc = self.vpc()
        identity = self.hello()
        identity.add_permission("Transfer", principal=iam.ServicePrincipal("transfer.amazonaws.com"))
        transfer.CfnServer(
            self, "Ftps",
            protocols=["FTPS"],
            endpoint_type="VPC",
            endpoint_details=transfer.CfnServer.EndpointDetailsProperty(
                vpc_id=vpc.vpc_id, subnet_ids=[s.subnet_id for s in vpc.public_subnets],
            ),
            identity_provider_type="AWS_LAMBDA",
            identity_provider_details=transfer.CfnServer.IdentityProviderDetailsProperty(
                function=identity.function_arn,
            ),
            certificate=fleet.certificate_for(self, Service.TRANSFER_FAMILY).certificate_arn,
            security_policy_name="TransferSecurityPolicy-2024-01",
        )


class BeanstalkStack(_Base):
    """An Elastic Beanstalk environment whose ALB listens on 443 with the local certificate."""

    def __init__(self, scope: Construct, id: str, *, fleet: CertificateFleet, region: str, domain: str) -> None:
        super().__init__(scope, id, fleet=fleet, region=region, domain=domain)
        role = iam.Role(self, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
                        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                            "AWSElasticBeanstalkWebTier")])
        profile = iam.CfnInstanceProfile(self, "InstanceProfile", roles=[role.role_name])
        app = beanstalk.CfnApplication(self, "App", application_name=f"certfleet-{self.region}")
        certificate = fleet.certificate_for(self, Service.ELASTIC_BEANSTALK)

        def option(namespace: str, name: str, value: str) -> beanstalk.CfnEnvironment.OptionSettingProperty:
            return beanstalk.CfnEnvironment.OptionSettingProperty(namespace=namespace, option_name=name, value=value)

        environment = beanstalk.CfnEnvironment(
            self, "Environment",
            application_name=app.ref,
            solution_stack_name="64bit Amazon Linux 2023 v4.7.0 running Python 3.13",
            option_settings=[
                option("aws:elasticbeanstalk:environment", "EnvironmentType", "LoadBalanced"),
                option("aws:elasticbeanstalk:environment", "LoadBalancerType", "application"),
                option("aws:autoscaling:launchconfiguration", "IamInstanceProfile", profile.ref),
                option("aws:elbv2:listener:443", "ListenerEnabled", "true"),
                option("aws:elbv2:listener:443", "Protocol", "HTTPS"),
                option("aws:elbv2:listener:443", "SSLCertificateArns", certificate.certificate_arn),
                option("aws:elbv2:listener:443", "SSLPolicy", ALB_POLICY.value),
            ],
        )
        environment.node.add_dependency(app)


ARCHITECTURES: dict[str, tuple[type[_Base], tuple[str, ...]]] = {
    "cloudfront-alb": (CloudFrontAlbStack, ("ap-northeast-1",)),
    "cloudfront-regional-api": (CloudFrontRegionalApiStack, ("eu-west-1",)),
    "edge-api": (EdgeApiStack, ("ap-northeast-1",)),
    "http-api": (HttpApiStack, ("eu-west-1",)),
    "dr": (RegionalAlbStack, ("us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1")),
    "amplify": (AmplifyStack, ("us-west-2",)),
    "transfer-ftps": (TransferFtpsStack, ("eu-west-1",)),
    "beanstalk": (BeanstalkStack, ("ap-northeast-1",)),
}
