"""The seed article's architectures as CDK stacks, each handed its certificate by a CertificateFleet.

Every stack pins its account and region (no context lookups: availability zones are given), so the whole
reference app synthesizes offline.

They pass cdk-nag's ``AwsSolutionsChecks`` and checkov (tests/quality): access logs, flow logs, log retention,
API tracing, HTTPS redirects and invalid-header dropping are on; what a reference app leaves to the production app
(a WAF, an authorizer, geo restriction, customer keys for demo logs) is acknowledged (cdk-nag) or skipped (checkov)
where the resource is made, with the reason.
"""

from __future__ import annotations

from aws_cdk import Duration, Environment, RemovalPolicy, Stack
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
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_transfer as transfer
from constructs import Construct

from certfleet.fleet import CertificateFleet
from certfleet.gates import acknowledge, skip_checkov
from certfleet.rules import Service

ALB_POLICY = elbv2.SslPolicy.RECOMMENDED_TLS
CLOUDFRONT_TLS = cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021
_HELLO = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'hello from certfleet'}\n"
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
ACCESS_LOG_DAYS = 90
NO_WAF = "the reference app shows certificate wiring; production apps attach their own WAF web ACL"
HTTP_API_ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","requestTime":"$context.requestTime",'
    '"httpMethod":"$context.httpMethod","routeKey":"$context.routeKey","status":"$context.status",'
    '"protocol":"$context.protocol","responseLength":"$context.responseLength","domainName":"$context.domainName"}'
)
NO_AUTH = "a public hello endpoint standing for the app behind the custom domain; production APIs add their authorizer"
LOGS_KEY = ("demo logs, encrypted at rest by CloudWatch Logs; a customer KMS key per log group is the production "
            "app's choice")
# checkov's checks that do not fit the reference app's hello function, each with why (CKV_AWS_115/116/117).
HELLO_SKIPS = (
    ("CKV_AWS_115", "any reservation fails to deploy where the account limit is 10 (new accounts); production apps "
                    "size it"),
    ("CKV_AWS_116", "invoked synchronously (API Gateway, Transfer Family): a dead-letter queue gets only async events"),
    ("CKV_AWS_117", "reaches no VPC resource; a VPC would add ENIs and no isolation to a stateless hello function"),
)


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

    def log_group(self, id: str) -> logs.LogGroup:
        group = logs.LogGroup(self, id, retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        skip_checkov(group, "CKV_AWS_158", LOGS_KEY)
        return group

    def vpc(self) -> ec2.Vpc:
        vpc = ec2.Vpc(
            self, "Vpc", nat_gateways=0, max_azs=2,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )
        vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(
            self.log_group("FlowLogs")))
        return vpc

    def access_logs(self) -> s3.Bucket:
        """The stack's access-log bucket (ALB and CloudFront standard logs), made on first use."""
        existing = self.node.try_find_child("AccessLogs")
        if isinstance(existing, s3.Bucket):
            return existing
        bucket = s3.Bucket(
            self, "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # ALB log delivery writes SSE-S3 only
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,  # CloudFront standard logging writes with ACLs
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(ACCESS_LOG_DAYS),
                                              noncurrent_version_expiration=Duration.days(1))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(bucket, "AwsSolutions-S1",
                    "this bucket is the access-log destination itself; logging its own access would loop")
        skip_checkov(bucket, "CKV_AWS_18", "the access-log destination itself; logging its own access would loop")
        return bucket

    def alb(self, vpc: ec2.Vpc) -> elbv2.ApplicationLoadBalancer:
        """An internet-facing ALB with an HTTPS listener on the fleet certificate of this region."""
        alb = elbv2.ApplicationLoadBalancer(self, "Alb", vpc=vpc, internet_facing=True,
                                            drop_invalid_header_fields=True)
        acknowledge(alb, "AwsSolutions-EC23",
                    "an internet-facing HTTPS listener is what this architecture demonstrates (origin or DR endpoint)")
        alb.log_access_logs(self.access_logs(), prefix="alb")
        alb.add_listener(
            "Https", port=443, ssl_policy=ALB_POLICY,
            certificates=[self.fleet.certificate_for(self, Service.ALB)],
            default_action=elbv2.ListenerAction.fixed_response(200, content_type="text/plain", message_body="ok"),
        )
        return alb

    def distribution(self, origin: cloudfront.IOrigin, name: str) -> cloudfront.Distribution:
        """A CloudFront distribution on the us-east-1 certificate, access-logged to the stack's bucket."""
        cdn = cloudfront.Distribution(
            self, "Cdn",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin, viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS),
            domain_names=[f"{name}.{self.domain}"],
            certificate=self.fleet.certificate_for(self, Service.CLOUDFRONT),
            minimum_protocol_version=CLOUDFRONT_TLS,
            enable_logging=True, log_bucket=self.access_logs(), log_file_prefix="cloudfront/",
        )
        acknowledge(cdn, "AwsSolutions-CFR1", "the reference app serves every country; geo restriction is a "
                    "business decision of the production app")
        acknowledge(cdn, "AwsSolutions-CFR2", NO_WAF)
        skip_checkov(cdn, "CKV_AWS_68", NO_WAF)
        return cdn

    def hello(self) -> lambda_.Function:
        log_group = self.log_group("HelloLogs")
        role = iam.Role(self, "HelloRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        log_group.grant_write(role)  # its own log group only, instead of AWSLambdaBasicExecutionRole
        function = lambda_.Function(self, "Hello", runtime=lambda_.Runtime.PYTHON_3_14, handler="index.handler",
                                    code=lambda_.Code.from_inline(_HELLO), role=role, log_group=log_group)
        for check, reason in HELLO_SKIPS:
            skip_checkov(function, check, reason)
        return function

    def rest_api(
        self, endpoint: apigateway.EndpointType, name: str, service: Service,
    ) -> apigateway.LambdaRestApi:
        """A REST API proxying to the hello function, on a custom domain with the fleet's certificate."""
        api = apigateway.LambdaRestApi(
            self, "Api", handler=self.hello(), endpoint_types=[endpoint],
            domain_name=apigateway.DomainNameOptions(
                domain_name=f"{name}.{self.domain}", endpoint_type=endpoint,
                certificate=self.fleet.certificate_for(self, service),
                security_policy=apigateway.SecurityPolicy.TLS_1_2,
            ),
            deploy_options=apigateway.StageOptions(
                access_log_destination=apigateway.LogGroupLogDestination(self.log_group("ApiAccessLogs")),
                access_log_format=apigateway.AccessLogFormat.clf(),
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                tracing_enabled=True,
            ),
        )
        skip_checkov(api.deployment_stage, "CKV_AWS_120", "a cache cluster is billed by the hour and a Lambda proxy's "
                     "answers are per request; production APIs size their own cache")
        for method in api.methods:
            skip_checkov(method, "CKV_AWS_59", NO_AUTH)
        acknowledge(api, "AwsSolutions-APIG2", "a Lambda proxy with no request model: there is nothing to validate")
        acknowledge(api, "AwsSolutions-APIG3", NO_WAF)
        acknowledge(api, "AwsSolutions-APIG4", NO_AUTH)
        acknowledge(api, "AwsSolutions-COG4", NO_AUTH)
        acknowledge(api.node.find_child("CloudWatchRole"),
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AmazonAPIGatewayPushToCloudWatchLogs]",
                    "API Gateway's account-wide logging role; AWS documents this managed policy for it")
        return api


class CloudFrontAlbStack(_Base):
    """Seed architecture 1: CloudFront (certificate in us-east-1) in front of an ALB (certificate local)."""

    def __init__(self, scope: Construct, id: str, *, fleet: CertificateFleet, region: str, domain: str) -> None:
        super().__init__(scope, id, fleet=fleet, region=region, domain=domain)
        alb = self.alb(self.vpc())
        self.distribution(origins.LoadBalancerV2Origin(alb), "www")


class CloudFrontRegionalApiStack(_Base):
    """Seed architecture 2: CloudFront (us-east-1 certificate) in front of a regional REST API (local one)."""

    def __init__(self, scope: Construct, id: str, *, fleet: CertificateFleet, region: str, domain: str) -> None:
        super().__init__(scope, id, fleet=fleet, region=region, domain=domain)
        api = self.rest_api(apigateway.EndpointType.REGIONAL, "api", Service.API_GATEWAY_REGIONAL)
        self.distribution(origins.RestApiOrigin(api), "app")


class EdgeApiStack(_Base):
    """Seed architecture 3: an edge-optimized REST API created outside us-east-1 (certificate in us-east-1)."""

    def __init__(self, scope: Construct, id: str, *, fleet: CertificateFleet, region: str, domain: str) -> None:
        super().__init__(scope, id, fleet=fleet, region=region, domain=domain)
        self.rest_api(apigateway.EndpointType.EDGE, "edge-api", Service.API_GATEWAY_EDGE)


class HttpApiStack(_Base):
    """An HTTP API (API Gateway v2) custom domain: regional, certificate in the API's region."""

    def __init__(self, scope: Construct, id: str, *, fleet: CertificateFleet, region: str, domain: str) -> None:
        super().__init__(scope, id, fleet=fleet, region=region, domain=domain)
        name = apigwv2.DomainName(
            self, "Domain", domain_name=f"http-api.{domain}",
            certificate=fleet.certificate_for(self, Service.API_GATEWAY_V2),
            security_policy=apigwv2.SecurityPolicy.TLS_1_2,
        )
        api = apigwv2.HttpApi(
            self, "Api", default_integration=integrations.HttpLambdaIntegration("Hello", self.hello()),
            default_domain_mapping=apigwv2.DomainMappingOptions(domain_name=name),
        )
        stage = api.default_stage.node.default_child if api.default_stage else None
        if not isinstance(stage, apigwv2.CfnStage):
            raise TypeError(f"{api.node.path}: the HTTP API has no default stage to log")
        access_logs = self.log_group("ApiAccessLogs")
        stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(  # no L2 option for HttpApi yet
            destination_arn=access_logs.log_group_arn, format=HTTP_API_ACCESS_LOG_FORMAT,
        )
        acknowledge(api, "AwsSolutions-APIG4", NO_AUTH)


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
        server = transfer.CfnServer(
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
        identity.add_permission("Transfer", principal=iam.ServicePrincipal("transfer.amazonaws.com"),
                                source_arn=server.attr_arn)  # this server only, not any Transfer server


class BeanstalkStack(_Base):
    """An Elastic Beanstalk environment whose ALB listens on 443 with the local certificate."""

    def __init__(self, scope: Construct, id: str, *, fleet: CertificateFleet, region: str, domain: str) -> None:
        super().__init__(scope, id, fleet=fleet, region=region, domain=domain)
        vpc = self.vpc()
        role = iam.Role(self, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
                        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                            "AWSElasticBeanstalkWebTier")])
        acknowledge(role, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AWSElasticBeanstalkWebTier]",
                    "Elastic Beanstalk's documented instance-profile policy (log and bundle upload, health agent)")
        profile = iam.CfnInstanceProfile(self, "InstanceProfile", roles=[role.role_name])
        service_role = iam.Role(
            self, "ServiceRole", assumed_by=iam.ServicePrincipal("elasticbeanstalk.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(name) for name in _BEANSTALK_SERVICE],
        )
        for name in _BEANSTALK_SERVICE:
            acknowledge(service_role, f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{name}]",
                        "Elastic Beanstalk's documented service-role policies (enhanced health, managed updates)")
        public = ",".join(s.subnet_id for s in vpc.public_subnets)
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
                option("aws:elasticbeanstalk:environment", "ServiceRole", service_role.role_arn),
                option("aws:autoscaling:launchconfiguration", "IamInstanceProfile", profile.ref),
                option("aws:ec2:vpc", "VPCId", vpc.vpc_id),
                option("aws:ec2:vpc", "Subnets", public),  # no NAT in the reference VPC: instances get public IPs
                option("aws:ec2:vpc", "ELBSubnets", public),
                option("aws:ec2:vpc", "AssociatePublicIpAddress", "true"),
                option("aws:elasticbeanstalk:managedactions", "ManagedActionsEnabled", "true"),
                option("aws:elasticbeanstalk:managedactions", "PreferredStartTime", "Sun:03:00"),
                option("aws:elasticbeanstalk:managedactions:platformupdate", "UpdateLevel", "minor"),
                option("aws:elasticbeanstalk:hostmanager", "LogPublicationControl", "true"),  # rotated logs to S3
                option("aws:elasticbeanstalk:cloudwatch:logs", "StreamLogs", "true"),
                option("aws:elasticbeanstalk:cloudwatch:logs", "RetentionInDays", "30"),
                option("aws:elbv2:listener:443", "ListenerEnabled", "true"),
                option("aws:elbv2:listener:443", "Protocol", "HTTPS"),
                option("aws:elbv2:listener:443", "SSLCertificateArns", certificate.certificate_arn),
                option("aws:elbv2:listener:443", "SSLPolicy", ALB_POLICY.value),
            ],
        )
        environment.node.add_dependency(app)


class AlertsStack(Stack):
    """The environment's certificate-expiry topic, in a stack of its own (shared with a fleet stack, it can cycle).

    Encrypted with a customer-managed key (rotated): certfleet lets CloudWatch and EventBridge use it, which the
    AWS managed ``alias/aws/sns`` key cannot allow.
    """

    def __init__(self, scope: Construct, id: str, *, account: str, region: str, emails: tuple[str, ...] = ()) -> None:
        super().__init__(scope, id, env=Environment(account=account, region=region),
                         description="certfleet reference app: certificate expiry alerts")
        key = kms.Key(self, "TopicKey", enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN,
                      description="certfleet reference app: encrypts the certificate expiry topic")
        self.topic = sns.Topic(self, "CertificateExpiry", master_key=key, enforce_ssl=True,
                               display_name="certfleet certificate expiry")
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))


_BEANSTALK_SERVICE = ("service-role/AWSElasticBeanstalkEnhancedHealth",
                      "AWSElasticBeanstalkManagedUpdatesCustomerRolePolicy")

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
