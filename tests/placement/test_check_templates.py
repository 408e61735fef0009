"""check_templates on hand-written templates: every consumer type, every way a certificate value is written."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from placement_support import ACCOUNT, arn

from certfleet import CertificateBundle
from certfleet.checks.assembly import StackTemplate
from certfleet.checks.finding import Finding
from certfleet.checks.graph import check_templates

CF_FLOOR = "TLSv1.2_2021"


def cert_resource(bundle: CertificateBundle, *, fleet: str = "Certs", ident: str = "Certs/us-east-1/Certificate",
                  ) -> dict[str, Any]:
    """A Custom::CertfleetCertificate as ImportedCertificate synthesizes it (the properties the checks read)."""
    return {
        "Type": "Custom::CertfleetCertificate",
        "Properties": {
            "ServiceToken": {"Fn::GetAtt": ["Provider", "Arn"]},
            "Certificate": bundle.certificate_pem,
            "CertificateChain": bundle.chain_pem,
            "KeyAlgorithm": bundle.key_algorithm,
            "Tags": [
                {"Key": "certfleet:managed-by", "Value": "certfleet"},
                {"Key": "certfleet:fleet", "Value": fleet},
                {"Key": "certfleet:id", "Value": ident},
            ],
        },
    }


def st(name: str, region: str | None, resources: dict[str, Any], **sections: Any) -> StackTemplate:
    template = {"Resources": resources, **sections}
    return StackTemplate(name, name, ACCOUNT, region, template, f"/out/{name}.template.json")


def producer(bundle: CertificateBundle, region: str, *, name: str | None = None, export: str | None = None,
             ) -> StackTemplate:
    """A fleet stack: the certificate and an output (with an export when ``export`` is given)."""
    output: dict[str, Any] = {"Value": {"Ref": "Certificate"}}
    if export:
        output["Export"] = {"Name": export}
    return st(name or f"Certs-{region}", region,
              {"Certificate": cert_resource(bundle, ident=f"Certs/{region}/Certificate")},
              Outputs={"CertificateArn": output})


def weak(region: str) -> dict[str, Any]:
    return {"Fn::GetStackOutput": {"StackName": f"Certs-{region}", "OutputName": "CertificateArn", "Region": region}}


def distribution(cert: Any, *, aliases: tuple[str, ...] = ("www.example.com",), policy: str | None = CF_FLOOR,
                 ) -> dict[str, Any]:
    viewer: dict[str, Any] = {"AcmCertificateArn": cert, "SslSupportMethod": "sni-only"}
    if policy is not None:
        viewer["MinimumProtocolVersion"] = policy
    return {"Type": "AWS::CloudFront::Distribution",
            "Properties": {"DistributionConfig": {"Aliases": list(aliases), "ViewerCertificate": viewer}}}


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def only(findings: list[Finding], code: str) -> Finding:
    found = [f for f in findings if f.code == code]
    assert len(found) == 1, findings
    return found[0]


# ---- CloudFront ---------------------------------------------------------------------------------------------------


def test_cloudfront_literal_arn_outside_us_east_1_is_wrong_region() -> None:
    findings = check_templates([st("Web", "eu-west-1", {"Dist": distribution(arn("eu-west-1"))})])
    finding = only(findings, "wrong-region")
    assert finding.severity == "error"
    assert finding.site.location == "Properties/DistributionConfig/ViewerCertificate/AcmCertificateArn"
    assert finding.site.logical_id == "Dist"
    assert finding.site.stack == "Web"
    assert finding.site.template_path == "/out/Web.template.json"
    assert "CloudFront distribution" in finding.message
    assert "eu-west-1" in finding.message
    assert "must be in us-east-1" in finding.message
    assert "edge_certificate_for" in finding.fix


def test_cloudfront_us_east_1_arn_with_tls_floor_is_clean() -> None:
    assert check_templates([st("Web", "eu-west-1", {"Dist": distribution(arn("us-east-1"))})]) == []


@pytest.mark.parametrize("policy", [None, "TLSv1", "TLSv1_2016", "TLSv1.1_2016", "TLSv1.2_2019"])
def test_cloudfront_below_tls_floor_warns(policy: str | None) -> None:
    findings = check_templates([st("Web", "us-east-1", {"Dist": distribution(arn("us-east-1"), policy=policy)})])
    finding = only(findings, "tls-below-floor")
    assert finding.severity == "warning"
    assert finding.site.location == "Properties/DistributionConfig/ViewerCertificate/MinimumProtocolVersion"
    assert CF_FLOOR in finding.message


@pytest.mark.parametrize("policy", ["TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025"])
def test_cloudfront_at_or_above_floor_is_quiet(policy: str) -> None:
    assert check_templates([st("Web", "us-east-1", {"Dist": distribution(arn("us-east-1"), policy=policy)})]) == []


def test_cloudfront_default_certificate_is_not_a_consumer() -> None:
    dist = {"Type": "AWS::CloudFront::Distribution", "Properties": {"DistributionConfig": {
        "ViewerCertificate": {"CloudFrontDefaultCertificate": True}}}}
    assert check_templates([st("Web", "us-east-1", {"Dist": dist})]) == []


def test_cloudfront_p384_certfleet_certificate_is_refused(p384_bundle: CertificateBundle) -> None:
    stack = st("Web", "us-east-1", {"Cert": cert_resource(p384_bundle), "Dist": distribution({"Ref": "Cert"})})
    finding = only(check_templates([stack]), "key-refused")
    assert finding.severity == "error"
    assert "EC_secp384r1" in finding.message
    assert "CloudFront" in finding.message
    assert "EC_prime256v1" in finding.message  # what it does accept


def test_cloudfront_alias_not_covered(rsa_bundle: CertificateBundle) -> None:
    dist = distribution({"Ref": "Cert"}, aliases=("www.example.com", "shop.example.com", "example.com"))
    findings = check_templates([st("Web", "us-east-1", {"Cert": cert_resource(rsa_bundle), "Dist": dist})])
    finding = only(findings, "domain-not-covered")
    assert "shop.example.com" in finding.message
    assert "www.example.com, example.com" in finding.message  # what the certificate covers
    assert "Aliases" in finding.fix


def test_cloudfront_wildcard_covers_one_label_only(wildcard_bundle: CertificateBundle) -> None:
    dist = distribution({"Ref": "Cert"}, aliases=("a.example.com", "example.com", "a.b.example.com"))
    findings = check_templates([st("Web", "us-east-1", {"Cert": cert_resource(wildcard_bundle), "Dist": dist})])
    assert [f.message.split(" serves ")[1].split(",")[0] for f in findings] == ["a.b.example.com"]


def test_cloudfront_token_aliases_are_skipped(rsa_bundle: CertificateBundle) -> None:
    dist = distribution({"Ref": "Cert"}, aliases=())
    dist["Properties"]["DistributionConfig"]["Aliases"] = [{"Ref": "DomainParam"}, "${Token[TOKEN.1]}"]
    assert check_templates([st("Web", "us-east-1", {"Cert": cert_resource(rsa_bundle), "Dist": dist})]) == []


# ---- API Gateway --------------------------------------------------------------------------------------------------


def test_edge_api_domain_with_eu_west_1_certificate_shows_both_options() -> None:
    domain = {"Type": "AWS::ApiGateway::DomainName", "Properties": {
        "DomainName": "api.example.com", "CertificateArn": arn("eu-west-1"),
        "EndpointConfiguration": {"Types": ["EDGE"]}}}
    finding = only(check_templates([st("Api", "eu-west-1", {"Domain": domain})]), "wrong-region")
    assert finding.site.location == "Properties/CertificateArn"
    assert "edge-optimized" in finding.message
    assert "api.example.com" in finding.message
    assert "must be in us-east-1 Region" in finding.message
    assert "Option 1" in finding.fix
    assert "REGIONAL" in finding.fix
    assert "RegionalCertificateArn" in finding.fix
    assert "Option 2" in finding.fix
    assert "us-east-1" in finding.fix


def test_regional_api_domain_needs_its_own_region() -> None:
    domain = {"Type": "AWS::ApiGateway::DomainName", "Properties": {
        "DomainName": "api.example.com", "RegionalCertificateArn": arn("us-east-1"),
        "EndpointConfiguration": {"Types": ["REGIONAL"]}}}
    finding = only(check_templates([st("Api", "eu-west-1", {"Domain": domain})]), "wrong-region")
    assert finding.site.location == "Properties/RegionalCertificateArn"
    # API Gateway's own answer, so that a user who met it at deploy time finds it here
    assert f"Invalid certificate ARN: {arn('us-east-1')}. Certificate must be in 'eu-west-1'." in finding.message
    assert "'eu-west-1'" in finding.fix
    assert "regions=[...]" in finding.fix


def test_regional_and_edge_api_domains_in_the_right_regions_are_clean() -> None:
    resources = {
        "Edge": {"Type": "AWS::ApiGateway::DomainName", "Properties": {
            "DomainName": "a.example.com", "CertificateArn": arn("us-east-1"), "SecurityPolicy": "TLS_1_2"}},
        "Regional": {"Type": "AWS::ApiGateway::DomainName", "Properties": {
            "DomainName": "b.example.com", "RegionalCertificateArn": arn("ap-northeast-1")}},
    }
    assert check_templates([st("Api", "ap-northeast-1", resources)]) == []


def test_api_security_policy_tls_1_0_warns() -> None:
    domain = {"Type": "AWS::ApiGateway::DomainName", "Properties": {
        "DomainName": "api.example.com", "RegionalCertificateArn": arn("eu-west-1"), "SecurityPolicy": "TLS_1_0"}}
    finding = only(check_templates([st("Api", "eu-west-1", {"Domain": domain})]), "tls-below-floor")
    assert finding.severity == "warning"
    assert finding.site.location == "Properties/SecurityPolicy"
    assert "TLS_1_2" in finding.fix


def regional_domains(cert: Any) -> dict[str, Any]:
    """A regional REST API domain and an HTTP API domain, both given ``cert``."""
    return {
        "Rest": {"Type": "AWS::ApiGateway::DomainName", "Properties": {
            "DomainName": "www.example.com", "RegionalCertificateArn": cert}},
        "Http": {"Type": "AWS::ApiGatewayV2::DomainName", "Properties": {
            "DomainName": "www.example.com", "DomainNameConfigurations": [{"CertificateArn": cert}]}},
    }


@pytest.mark.parametrize(("bundle_name", "algorithm"), [("rsa3072_bundle", "RSA_3072"),
                                                         ("rsa4096_bundle", "RSA_4096")])
def test_regional_api_domains_refuse_rsa_above_2048(bundle_name: str, algorithm: str,
                                                    request: pytest.FixtureRequest) -> None:
    """AWS: "If you create a Regional custom domain name, the maximum size of the public key is 2048." """
    bundle: CertificateBundle = request.getfixturevalue(bundle_name)
    resources = {"Cert": cert_resource(bundle), **regional_domains({"Ref": "Cert"})}
    findings = check_templates([st("Api", "eu-west-1", resources)])
    assert [(f.code, f.severity, f.site.logical_id) for f in findings] == [
        ("key-refused", "error", "Http"), ("key-refused", "error", "Rest")]
    assert all(algorithm in f.message for f in findings)
    assert all("RSA_1024, RSA_2048" in f.message for f in findings)  # what they do accept
    assert all("certfleet keygen --type rsa-2048" in f.fix for f in findings)


def test_regional_api_domains_take_rsa_2048(rsa_bundle: CertificateBundle) -> None:
    resources = {"Cert": cert_resource(rsa_bundle), **regional_domains({"Ref": "Cert"})}
    assert check_templates([st("Api", "eu-west-1", resources)]) == []


def test_regional_api_domains_with_ecdsa_stay_unverified(p256_bundle: CertificateBundle) -> None:
    resources = {"Cert": cert_resource(p256_bundle), **regional_domains({"Ref": "Cert"})}
    findings = check_templates([st("Api", "eu-west-1", resources)])
    assert [(f.code, f.severity) for f in findings] == [("key-unverified", "warning")] * 2
    assert all("EC_prime256v1 is unverified" in f.message for f in findings)


def test_http_api_domain_configuration() -> None:
    domain = {"Type": "AWS::ApiGatewayV2::DomainName", "Properties": {
        "DomainName": "api.example.com",
        "DomainNameConfigurations": [{"CertificateArn": arn("us-east-1"), "EndpointType": "REGIONAL",
                                      "SecurityPolicy": "TLS_1_0"}]}}
    findings = check_templates([st("Http", "us-west-2", {"Domain": domain})])
    assert sorted(codes(findings)) == ["tls-below-floor", "wrong-region"]
    wrong = only(findings, "wrong-region")
    assert wrong.site.location == "Properties/DomainNameConfigurations/0/CertificateArn"
    assert "HTTP/WebSocket" in wrong.message
    assert "'us-west-2'" in wrong.fix


def test_http_api_domain_not_covered(rsa_bundle: CertificateBundle) -> None:
    domain = {"Type": "AWS::ApiGatewayV2::DomainName", "Properties": {
        "DomainName": "api.example.com", "DomainNameConfigurations": [{"CertificateArn": {"Ref": "Cert"}}]}}
    findings = check_templates([st("Http", "us-west-2", {"Cert": cert_resource(rsa_bundle), "Domain": domain})])
    assert codes(findings) == ["domain-not-covered"]


# ---- Load balancers -----------------------------------------------------------------------------------------------


def listener(protocol: str, cert: Any, policy: str | None = "ELBSecurityPolicy-TLS13-1-2-2021-06") -> dict[str, Any]:
    props: dict[str, Any] = {"Protocol": protocol, "Port": 443, "Certificates": [{"CertificateArn": cert}]}
    if policy:
        props["SslPolicy"] = policy
    return {"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": props}


def test_alb_in_tokyo_with_us_east_1_certificate_names_the_missing_region() -> None:
    finding = only(check_templates([st("Web", "ap-northeast-1", {"L": listener("HTTPS", arn("us-east-1"))})]),
                   "wrong-region")
    assert finding.site.location == "Properties/Certificates/0/CertificateArn"
    assert "Application Load Balancer" in finding.message
    assert "ap-northeast-1" in finding.message
    assert "us-east-1" in finding.message
    assert "add 'ap-northeast-1' to regions=[...] of the CertificateFleet" in finding.fix
    assert "fleet.certificate_for(stack)" in finding.fix


@pytest.mark.parametrize(("policy", "warns"), [
    (None, True), ("ELBSecurityPolicy-2016-08", True), ("ELBSecurityPolicy-TLS-1-2-2017-01", True),
    ("ELBSecurityPolicy-TLS13-1-2-2021-06", False), ("ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09", False),
])
def test_elbv2_listener_policy_without_tls13_warns(policy: str | None, warns: bool) -> None:
    findings = check_templates([st("Web", "eu-west-1", {"L": listener("HTTPS", arn("eu-west-1"), policy)})])
    assert codes(findings) == (["tls-below-floor"] if warns else [])
    if warns:
        assert findings[0].site.location == "Properties/SslPolicy"


def test_nlb_tls_listener_refuses_rsa_4096(rsa4096_bundle: CertificateBundle) -> None:
    resources = {"Cert": cert_resource(rsa4096_bundle), "L": listener("TLS", {"Ref": "Cert"})}
    finding = only(check_templates([st("Net", "us-east-1", resources)]), "key-refused")
    assert "Network Load Balancer" in finding.message
    assert "RSA_4096" in finding.message


def test_alb_accepts_rsa_4096(rsa4096_bundle: CertificateBundle) -> None:
    resources = {"Cert": cert_resource(rsa4096_bundle), "L": listener("HTTPS", {"Ref": "Cert"})}
    assert check_templates([st("Web", "us-east-1", resources)]) == []


def test_http_listener_is_not_a_consumer() -> None:
    plain = {"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {"Protocol": "HTTP", "Port": 80}}
    assert check_templates([st("Web", "us-east-1", {"L": plain})]) == []


def test_listener_certificate_follows_its_listener_to_nlb_rules(rsa4096_bundle: CertificateBundle) -> None:
    extra = {"Type": "AWS::ElasticLoadBalancingV2::ListenerCertificate", "Properties": {
        "ListenerArn": {"Ref": "L"}, "Certificates": [{"CertificateArn": {"Ref": "Cert"}}]}}
    resources = {"Cert": cert_resource(rsa4096_bundle), "L": listener("TLS", arn("us-east-1")), "Extra": extra}
    finding = only(check_templates([st("Net", "us-east-1", resources)]), "key-refused")
    assert finding.site.logical_id == "Extra"


def test_listener_certificate_of_unknown_listener_uses_alb_rules(rsa4096_bundle: CertificateBundle) -> None:
    extra = {"Type": "AWS::ElasticLoadBalancingV2::ListenerCertificate", "Properties": {
        "ListenerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/x/y/z",
        "Certificates": [{"CertificateArn": {"Ref": "Cert"}}, {"CertificateArn": arn("eu-west-1")}]}}
    findings = check_templates([st("Web", "us-east-1", {"Cert": cert_resource(rsa4096_bundle), "Extra": extra})])
    assert codes(findings) == ["wrong-region"]
    assert findings[0].site.location == "Properties/Certificates/1/CertificateArn"


def test_classic_load_balancer(p256_bundle: CertificateBundle) -> None:
    clb = {"Type": "AWS::ElasticLoadBalancing::LoadBalancer", "Properties": {"Listeners": [
        {"LoadBalancerPort": "443", "Protocol": "HTTPS", "SSLCertificateId": {"Ref": "Cert"}},
        {"LoadBalancerPort": "8443", "Protocol": "HTTPS", "SSLCertificateId": arn("us-east-1")},
    ]}}
    findings = check_templates([st("Legacy", "eu-west-1", {"Cert": cert_resource(p256_bundle), "Clb": clb})])
    assert sorted(codes(findings)) == ["key-unverified", "wrong-region"]
    assert only(findings, "key-unverified").site.location == "Properties/Listeners/0/SSLCertificateId"
    assert "Classic Load Balancer" in only(findings, "wrong-region").message


# ---- Elastic Beanstalk --------------------------------------------------------------------------------------------


def option(namespace: str, name: str, value: Any) -> dict[str, Any]:
    return {"Namespace": namespace, "OptionName": name, "Value": value}


def test_beanstalk_environment_alb_option() -> None:
    env = {"Type": "AWS::ElasticBeanstalk::Environment", "Properties": {"OptionSettings": [
        option("aws:elasticbeanstalk:environment", "LoadBalancerType", "application"),
        option("aws:elbv2:listener:443", "SSLCertificateArns", arn("us-east-1")),
    ]}}
    finding = only(check_templates([st("Eb", "eu-west-1", {"Env": env})]), "wrong-region")
    assert finding.site.location == "Properties/OptionSettings/1/Value"
    assert "Elastic Beanstalk" in finding.message
    assert check_templates([st("Eb", "us-east-1", {"Env": env})]) == []


def test_beanstalk_configuration_template_classic_option(p384_bundle: CertificateBundle) -> None:
    template = {"Type": "AWS::ElasticBeanstalk::ConfigurationTemplate", "Properties": {"OptionSettings": [
        option("aws:elb:listener:443", "SSLCertificateId", {"Ref": "Cert"}),
    ]}}
    findings = check_templates([st("Eb", "eu-west-1", {"Cert": cert_resource(p384_bundle), "Tpl": template})])
    assert codes(findings) == ["key-unverified"]
    assert "Classic Load Balancer" in findings[0].message


def test_beanstalk_network_load_balancer_uses_nlb_rules(rsa4096_bundle: CertificateBundle) -> None:
    env = {"Type": "AWS::ElasticBeanstalk::Environment", "Properties": {"OptionSettings": [
        option("aws:elasticbeanstalk:environment", "LoadBalancerType", "network"),
        option("aws:elbv2:listener:443", "SSLCertificateArns", {"Ref": "Cert"}),
    ]}}
    findings = check_templates([st("Eb", "eu-west-1", {"Cert": cert_resource(rsa4096_bundle), "Env": env})])
    assert codes(findings) == ["key-refused"]


# ---- Amplify, Transfer, Cognito, AppSync, App Runner --------------------------------------------------------------


def amplify(cert: Any, prefixes: tuple[str, ...] = ("", "www")) -> dict[str, Any]:
    return {"Type": "AWS::Amplify::Domain", "Properties": {
        "AppId": "d123", "DomainName": "example.com",
        "SubDomainSettings": [{"BranchName": "main", "Prefix": p} for p in prefixes],
        "CertificateSettings": {"CertificateType": "CUSTOM", "CustomCertificateArn": cert}}}


def test_amplify_domain_needs_us_east_1() -> None:
    finding = only(check_templates([st("Site", "eu-west-1", {"Dom": amplify(arn("eu-west-1"))})]), "wrong-region")
    assert finding.site.location == "Properties/CertificateSettings/CustomCertificateArn"
    assert "Amplify" in finding.message
    assert "us-east-1" in finding.fix


def test_amplify_subdomains_must_be_covered(rsa_bundle: CertificateBundle) -> None:
    dom = amplify({"Ref": "Cert"}, prefixes=("", "www", "beta"))
    findings = check_templates([st("Site", "us-east-1", {"Cert": cert_resource(rsa_bundle), "Dom": dom})])
    finding = only(findings, "domain-not-covered")
    assert "beta.example.com" in finding.message


def ftps_server(cert: Any) -> dict[str, Any]:
    return {"Type": "AWS::Transfer::Server", "Properties": {
        "Protocols": ["FTPS"], "EndpointType": "VPC", "Certificate": cert}}


def test_transfer_server_region_is_unverified_so_a_warning() -> None:
    finding = only(check_templates([st("Ftp", "eu-west-1", {"Server": ftps_server(arn("us-east-1"))})]),
                   "wrong-region")
    assert finding.severity == "warning", "no AWS text gives Transfer Family's certificate region"
    assert finding.site.location == "Properties/Certificate"
    assert "Transfer Family" in finding.message
    assert "AWS does not document this region requirement" in finding.message
    assert check_templates([st("Ftp", "us-east-1", {"Server": ftps_server(arn("us-east-1"))})]) == []


def test_transfer_server_refuses_rsa_3072(rsa3072_bundle: CertificateBundle) -> None:
    """Transfer Family's CreateServer lists RSA 2048/4096 and the three ECDSA curves: nothing else."""
    resources = {"Cert": cert_resource(rsa3072_bundle), "Server": ftps_server({"Ref": "Cert"})}
    finding = only(check_templates([st("Ftp", "us-east-1", resources)]), "key-refused")
    assert finding.severity == "error"
    assert "RSA_3072" in finding.message


def test_transfer_server_takes_rsa_4096(rsa4096_bundle: CertificateBundle) -> None:
    resources = {"Cert": cert_resource(rsa4096_bundle), "Server": ftps_server({"Ref": "Cert"})}
    assert check_templates([st("Ftp", "us-east-1", resources)]) == []


def test_cognito_domain(rsa_bundle: CertificateBundle) -> None:
    domain: dict[str, Any] = {"Type": "AWS::Cognito::UserPoolDomain", "Properties": {
        "UserPoolId": {"Ref": "Pool"}, "Domain": "auth.example.com",
        "CustomDomainConfig": {"CertificateArn": arn("eu-west-1")}}}
    finding = only(check_templates([st("Auth", "eu-west-1", {"Dom": domain})]), "wrong-region")
    assert finding.site.location == "Properties/CustomDomainConfig/CertificateArn"
    assert "Cognito" in finding.message
    domain["Properties"]["CustomDomainConfig"]["CertificateArn"] = {"Ref": "Cert"}
    findings = check_templates([st("Auth", "us-east-1", {"Cert": cert_resource(rsa_bundle), "Dom": domain})])
    assert codes(findings) == ["domain-not-covered"]
    assert "auth.example.com" in findings[0].message


def test_cognito_domain_refuses_p384_as_cloudfront_does(p384_bundle: CertificateBundle) -> None:
    domain = {"Type": "AWS::Cognito::UserPoolDomain", "Properties": {
        "UserPoolId": {"Ref": "Pool"}, "Domain": "www.example.com",
        "CustomDomainConfig": {"CertificateArn": {"Ref": "Cert"}}}}
    finding = only(check_templates([st("Auth", "us-east-1", {"Cert": cert_resource(p384_bundle), "Dom": domain})]),
                   "key-refused")
    assert finding.severity == "error"
    assert "Cognito" in finding.message
    assert "EC_secp384r1" in finding.message


#: AWS::AppSync::DomainNameApiAssociation's API resource type -> how the finding names it
APPSYNC_APIS = {"AWS::AppSync::GraphQLApi": "GraphQL API 'orders'", "AWS::AppSync::Api": "Event API 'orders'"}


def appsync(cert: Any, api_type: str | None, *, link: Any = "api.example.com") -> dict[str, Any]:
    """An AppSync custom domain as GraphqlApi / EventApi synthesize it: the domain, the association, the API."""
    resources: dict[str, Any] = {"Dom": {"Type": "AWS::AppSync::DomainName", "Properties": {
        "DomainName": "api.example.com", "CertificateArn": cert}}}
    if api_type is not None:
        resources["Api"] = {"Type": api_type, "Properties": {"Name": "orders"}}
        resources["Assoc"] = {"Type": "AWS::AppSync::DomainNameApiAssociation", "Properties": {
            "ApiId": {"Fn::GetAtt": ["Api", "ApiId"]}, "DomainName": link}}
    return resources


@pytest.mark.parametrize("api_type", [*APPSYNC_APIS, None])
def test_appsync_domain_outside_us_east_1_is_an_error(api_type: str | None) -> None:
    finding = only(check_templates([st("Gql", "eu-west-1", appsync(arn("eu-west-1"), api_type))]), "wrong-region")
    assert finding.severity == "error"
    assert finding.site.logical_id == "Dom"
    assert finding.site.location == "Properties/CertificateArn"
    assert finding.site.service == "appsync"
    assert "AppSync custom domain api.example.com" in finding.message
    if api_type is not None:
        assert f"api.example.com for {APPSYNC_APIS[api_type]}" in finding.message
    assert "must be in us-east-1 Region" in finding.message
    assert '"Invalid request provided: Certificate must be in us-east-1."' in finding.message
    assert "fleet.certificate_for(stack, Service.APPSYNC)" in finding.fix


@pytest.mark.parametrize("link", [{"Ref": "Dom"}, {"Fn::GetAtt": ["Dom", "DomainName"]}])
def test_appsync_association_by_reference_names_the_api(link: Any) -> None:
    stack = st("Gql", "eu-west-1", appsync(arn("eu-west-1"), "AWS::AppSync::Api", link=link))
    assert "for Event API 'orders'" in only(check_templates([stack]), "wrong-region").message


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
@pytest.mark.parametrize("api_type", [*APPSYNC_APIS, None])
def test_appsync_domain_with_a_us_east_1_certificate_passes(api_type: str | None, region: str) -> None:
    assert check_templates([st("Gql", region, appsync(arn("us-east-1"), api_type))]) == []


@pytest.mark.parametrize("api_type", list(APPSYNC_APIS))
def test_appsync_domain_refuses_p384_as_cloudfront_does(api_type: str, p384_bundle: CertificateBundle) -> None:
    resources = {"Cert": cert_resource(p384_bundle), **appsync({"Ref": "Cert"}, api_type)}
    finding = only(check_templates([st("Gql", "us-east-1", resources)]), "key-refused")
    assert finding.severity == "error"
    assert "EC_secp384r1" in finding.message
    assert APPSYNC_APIS[api_type] in finding.message


def test_app_runner_has_nothing_to_walk() -> None:
    service = {"Type": "AWS::AppRunner::Service", "Properties": {"SourceConfiguration": {}}}
    assert check_templates([st("Run", "eu-west-1", {"Svc": service})]) == []


# ---- How certificate values are written ---------------------------------------------------------------------------


def test_weak_reference_resolves_to_the_producer(rsa_bundle: CertificateBundle) -> None:
    stacks = [producer(rsa_bundle, "eu-west-1"), producer(rsa_bundle, "us-east-1"),
              st("Web", "eu-west-1", {"Dist": distribution(weak("eu-west-1")), "Ok": distribution(weak("us-east-1"))})]
    finding = only(check_templates(stacks), "wrong-region")
    assert finding.site.logical_id == "Dist"
    assert "certfleet certificate Certs/eu-west-1/Certificate (fleet Certs)" in finding.message


def test_fix_says_when_the_fleet_already_has_the_region(rsa_bundle: CertificateBundle) -> None:
    stacks = [producer(rsa_bundle, "us-east-1"), producer(rsa_bundle, "ap-northeast-1"),
              st("Web", "ap-northeast-1", {"L": listener("HTTPS", weak("us-east-1"))})]
    finding = only(check_templates(stacks), "wrong-region")
    assert "already has a certificate in ap-northeast-1" in finding.fix


def test_weak_reference_to_an_unknown_stack_is_skipped() -> None:
    assert check_templates([st("Web", "eu-west-1", {"Dist": distribution(weak("eu-west-1"))})]) == []


def test_import_value_is_resolved_and_flagged_strong(rsa_bundle: CertificateBundle) -> None:
    stacks = [producer(rsa_bundle, "us-east-1", export="Certs:Arn"),
              st("Web", "us-east-1", {"L": listener("HTTPS", {"Fn::ImportValue": "Certs:Arn"})})]
    finding = only(check_templates(stacks), "strong-reference")
    assert finding.severity == "warning"
    assert "Fn::ImportValue 'Certs:Arn'" in finding.message
    assert "fleet.certificate_for(scope)" in finding.fix
    assert '"@aws-cdk/core:defaultCrossStackReferences": "weak"' in finding.fix


def test_import_value_of_a_plain_arn_is_not_a_strong_reference_problem() -> None:
    stacks = [st("Arns", "us-east-1", {}, Outputs={"A": {"Value": arn("us-east-1"), "Export": {"Name": "A"}}}),
              st("Web", "us-east-1", {"L": listener("HTTPS", {"Fn::ImportValue": "A"})})]
    assert check_templates(stacks) == []


def test_cross_region_export_reader_is_resolved(rsa_bundle: CertificateBundle) -> None:
    name = "/cdk/exports/Tokyo/CertsRefCertificate"
    writer = {"Type": "Custom::CrossRegionExportWriter", "Properties": {"WriterProps": {
        "region": "ap-northeast-1", "exports": {name: {"Ref": "Certificate"}}}}}
    fleet_stack = producer(rsa_bundle, "us-east-1")
    fleet_stack.template["Resources"]["Writer"] = writer
    reader = {"Type": "Custom::CrossRegionExportReader", "Properties": {"ReaderProps": {"imports": {name: "x"}}}}
    tokyo = st("Tokyo", "ap-northeast-1", {"Reader": reader,
                                           "L": listener("HTTPS", {"Fn::GetAtt": ["Reader", name]})})
    findings = check_templates([fleet_stack, tokyo])
    assert codes(findings) == ["wrong-region", "strong-reference"]
    assert "add 'ap-northeast-1' to regions=[...] of the CertificateFleet 'Certs'" in findings[0].fix


def test_get_att_of_a_certfleet_certificate(p384_bundle: CertificateBundle) -> None:
    resources = {"Cert": cert_resource(p384_bundle), "Dist": distribution({"Fn::GetAtt": ["Cert", "Arn"]})}
    assert codes(check_templates([st("Web", "us-east-1", resources)])) == ["key-refused"]


def test_acm_issued_certificate_in_the_same_stack_is_judged_by_region() -> None:
    resources = {"Acm": {"Type": "AWS::CertificateManager::Certificate", "Properties": {"DomainName": "x.com"}},
                 "Dist": distribution({"Ref": "Acm"})}
    finding = only(check_templates([st("Web", "eu-west-1", resources)]), "wrong-region")
    assert "ACM certificate Web/Acm" in finding.message


@pytest.mark.parametrize("value", [
    {"Ref": "CertificateParam"},
    "{{resolve:ssm:/certs/www}}",
    "${Token[TOKEN.123]}",
    {"Fn::Join": ["", ["arn:aws:acm:", {"Ref": "RegionParam"}, ":123456789012:certificate/x"]]},
    {"Fn::Sub": "arn:aws:acm:eu-west-1:${AWS::AccountId}:certificate/x"},
    {"Fn::GetAtt": ["SomethingElse", "Arn"]},
    "not an arn",
])
def test_unresolvable_values_are_skipped(value: Any) -> None:
    stack = st("Web", "eu-west-1", {"Dist": distribution(value)}, Parameters={"CertificateParam": {"Type": "String"}})
    assert check_templates([stack]) == []


def test_join_with_a_literal_region_is_judged() -> None:
    value = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":acm:eu-west-1:", {"Ref": "AWS::AccountId"},
                               ":certificate/abc"]]}
    finding = only(check_templates([st("Web", "us-east-1", {"Dist": distribution(value)})]), "wrong-region")
    assert "eu-west-1" in finding.message


def test_join_with_the_stack_region() -> None:
    value = {"Fn::Join": [":", ["arn:aws:acm", {"Ref": "AWS::Region"}, "123456789012", "certificate/abc"]]}
    assert codes(check_templates([st("Web", "eu-west-1", {"Dist": distribution(value)})])) == ["wrong-region"]
    assert check_templates([st("Web", "us-east-1", {"Dist": distribution(value)})]) == []


def test_environment_agnostic_stack_still_gets_edge_checks() -> None:
    resources = {"Dist": distribution(arn("eu-west-1")), "L": listener("HTTPS", arn("eu-west-1"))}
    findings = check_templates([st("Agnostic", None, resources)])
    assert [(f.code, f.site.logical_id) for f in findings] == [("wrong-region", "Dist")]


def test_construct_path_comes_from_metadata() -> None:
    dist = distribution(arn("eu-west-1"))
    dist["Metadata"] = {"aws:cdk:path": "Web/Site/Distribution/Resource"}
    finding = only(check_templates([st("Web", "eu-west-1", {"Dist": dist})]), "wrong-region")
    assert finding.site.construct_path == "Web/Site/Distribution/Resource"
    assert "Web/Site/Distribution/Resource" in finding.message
    assert finding.site.service == "cloudfront"


def test_errors_come_before_warnings_and_findings_are_not_repeated() -> None:
    stack = st("Web", "eu-west-1", {"A": distribution(arn("eu-west-1"), policy="TLSv1"),
                                    "B": listener("HTTPS", arn("us-east-1"), policy=None)})
    findings = check_templates([stack, stack])
    assert [f.severity for f in findings] == ["error", "error", "warning", "warning"]
    assert str(findings[0]).startswith("error [wrong-region] ")
    assert "\n    fix: " in str(findings[0])


def test_finding_as_a_dict() -> None:
    (finding,) = check_templates([st("Web", "eu-west-1", {"Dist": distribution(arn("eu-west-1"))})])
    data = finding.to_dict()
    assert data["code"] == "wrong-region"
    assert data["severity"] == "error"
    assert data["location"] == "Properties/DistributionConfig/ViewerCertificate/AcmCertificateArn"
    assert set(data) >= {"message", "fix", "stack", "logical_id", "construct_path", "template_path"}


def test_checks_modules_import_neither_cdk_nor_boto3() -> None:
    """Every module of certfleet.checks but the plugin runs without the CDK (the CLI's `certfleet map` uses them)."""
    code = ("import pkgutil, sys, certfleet.checks as c, certfleet.checks.extract as e\n"
            "for m in pkgutil.walk_packages(c.__path__, 'certfleet.checks.'):\n"
            "    __import__(m.name) if m.name != 'certfleet.checks.plugin' else None\n"
            "print(' '.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True,
                            cwd="/").stdout.split()
    assert not {m for m in loaded if m.split(".")[0] in {"aws_cdk", "boto3", "botocore", "jsii", "constructs"}}
