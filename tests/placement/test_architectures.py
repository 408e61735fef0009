"""The seed's architectures wired with a fleet: right certificates synthesize clean, swapped ones fail everywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from aws_cdk import Stack
from aws_cdk import aws_amplify as amplify
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_appsync as appsync
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticbeanstalk as beanstalk
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_transfer as transfer
from placement_support import fleet, new_app, stack, synth

from certfleet import CertificateBundle

Pick = Callable[[Stack], acm.ICertificate]

#: construct path -> property path of every certificate consumer below
CONSUMERS = {
    ("Web/Site/Resource", "Properties/DistributionConfig/ViewerCertificate/AcmCertificateArn"),
    ("Web/Alb/Https/Resource", "Properties/Certificates/0/CertificateArn"),
    ("Web/RegionalApi/Resource", "Properties/RegionalCertificateArn"),
    ("Web/Amplify", "Properties/CertificateSettings/CustomCertificateArn"),
    ("Web/Ftps", "Properties/Certificate"),
    ("Web/Beanstalk", "Properties/OptionSettings/1/Value"),
    ("Web/Pool/Domain/Resource", "Properties/CustomDomainConfig/CertificateArn"),
    ("Web/GraphQl", "Properties/CertificateArn"),
    ("Tokyo/EdgeApi/Resource", "Properties/CertificateArn"),
    ("Tokyo/HttpApi/Resource", "Properties/DomainNameConfigurations/0/CertificateArn"),
    ("Tokyo/Nlb/Tls/Resource", "Properties/Certificates/0/CertificateArn"),
}


def _vpc(scope: Stack) -> ec2.Vpc:
    return ec2.Vpc(scope, "Vpc", max_azs=2, nat_gateways=0, subnet_configuration=[
        ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)])


def _web(web: Stack, edge: Pick, local: Pick) -> None:
    """eu-west-1: CloudFront + ALB, a regional REST API, Amplify, FTPS, Beanstalk, Cognito, AppSync."""
    cloudfront.Distribution(
        web, "Site", default_behavior=cloudfront.BehaviorOptions(origin=origins.HttpOrigin("origin.example.com")),
        domain_names=["www.example.com"], certificate=edge(web),
    )
    alb = elbv2.ApplicationLoadBalancer(web, "Alb", vpc=_vpc(web), internet_facing=True)
    alb.add_listener("Https", port=443, certificates=[local(web)], ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                     default_action=elbv2.ListenerAction.fixed_response(200))
    apigateway.DomainName(web, "RegionalApi", domain_name="example.com", certificate=local(web),
                          endpoint_type=apigateway.EndpointType.REGIONAL,
                          security_policy=apigateway.SecurityPolicy.TLS_1_2)
    amplify.CfnDomain(
        web, "Amplify", app_id="d1234567890", domain_name="example.com",
        sub_domain_settings=[amplify.CfnDomain.SubDomainSettingProperty(branch_name="main", prefix=p)
                             for p in ("", "www")],
        certificate_settings=amplify.CfnDomain.CertificateSettingsProperty(
            certificate_type="CUSTOM", custom_certificate_arn=edge(web).certificate_arn),
    )
    transfer.CfnServer(web, "Ftps", protocols=["FTPS"], endpoint_type="VPC", identity_provider_type="API_GATEWAY",
                       certificate=local(web).certificate_arn)
    beanstalk.CfnEnvironment(web, "Beanstalk", application_name="shop", option_settings=[
        beanstalk.CfnEnvironment.OptionSettingProperty(
            namespace="aws:elasticbeanstalk:environment", option_name="LoadBalancerType", value="application"),
        beanstalk.CfnEnvironment.OptionSettingProperty(
            namespace="aws:elbv2:listener:443", option_name="SSLCertificateArns", value=local(web).certificate_arn),
    ])
    cognito.UserPool(web, "Pool").add_domain("Domain", custom_domain=cognito.CustomDomainOptions(
        domain_name="www.example.com", certificate=edge(web)))
    appsync.CfnDomainName(web, "GraphQl", domain_name="www.example.com", certificate_arn=edge(web).certificate_arn)


def _tokyo(tokyo: Stack, edge: Pick, local: Pick) -> None:
    """ap-northeast-1: an edge-optimized REST API created there, an HTTP API, an NLB TLS listener."""
    apigateway.DomainName(tokyo, "EdgeApi", domain_name="www.example.com", certificate=edge(tokyo),
                          endpoint_type=apigateway.EndpointType.EDGE,
                          security_policy=apigateway.SecurityPolicy.TLS_1_2)
    apigwv2.DomainName(tokyo, "HttpApi", domain_name="example.com", certificate=local(tokyo))
    nlb = elbv2.NetworkLoadBalancer(tokyo, "Nlb", vpc=_vpc(tokyo))
    nlb.add_listener("Tls", port=443, certificates=[local(tokyo)], ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                     default_action=elbv2.NetworkListenerAction.forward(
                         [elbv2.NetworkTargetGroup(tokyo, "Targets", port=443, vpc=nlb.vpc)]))


@pytest.mark.parametrize("swapped", [False, True], ids=["right", "swapped"])
def test_every_consumer_is_checked(tmp_path: Path, rsa_bundle: CertificateBundle, swapped: bool) -> None:
    app = new_app(tmp_path)
    certs = fleet(app, rsa_bundle, regions=("eu-west-1", "ap-northeast-1"))

    def edge(scope: Stack) -> acm.ICertificate:
        return certs.certificate_for(scope) if swapped else certs.edge_certificate_for(scope)

    def local(scope: Stack) -> acm.ICertificate:
        return certs.edge_certificate_for(scope) if swapped else certs.certificate_for(scope)

    _web(stack(app, "Web", "eu-west-1"), edge, local)
    _tokyo(stack(app, "Tokyo", "ap-northeast-1"), edge, local)
    result = synth(app)
    if not swapped:
        assert not result.failed, result.text
        assert result.violations == []
        return
    assert result.failed
    assert result.codes() == ["wrong-region"] * len(CONSUMERS)
    assert {result.location(v) for v in result.violations} == CONSUMERS
    for violation in result.violations:
        path, _ = result.location(violation)
        if path.startswith("Web/Site") or path.startswith("Tokyo/EdgeApi"):
            assert "must be in us-east-1 Region" in violation["description"]
        elif path.startswith(("Web/Alb", "Web/RegionalApi", "Web/Ftps", "Web/Beanstalk")):
            assert "fleet Certs already has a certificate in eu-west-1" in violation["suggestedFix"]
