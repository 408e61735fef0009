"""Elastic Beanstalk environments and configuration templates: the load balancer's certificate options."""

from __future__ import annotations

import re

from certfleet.checks.extract.base import CertificateUse, Extracted, Resource
from certfleet.checks.template import dicts
from certfleet.rules import Service

_ELBV2 = re.compile(r"^aws:elbv2:listener:(\d+|default)$")
_ELB = re.compile(r"^aws:elb:(listener:\d+|loadbalancer)$")


def environment(resource: Resource) -> Extracted:
    """SSLCertificateArns of an ALB (an NLB when LoadBalancerType is network), SSLCertificateId of a CLB."""
    settings = dicts(resource.props.get("OptionSettings"))
    network = any(
        s.get("Namespace") == "aws:elasticbeanstalk:environment" and s.get("OptionName") == "LoadBalancerType"
        and s.get("Value") == "network" for s in settings
    )
    uses: list[CertificateUse] = []
    for index, setting in enumerate(settings):
        namespace, option = str(setting.get("Namespace", "")), setting.get("OptionName")
        if "Value" not in setting:
            continue
        location = f"Properties/OptionSettings/{index}/Value"
        if _ELBV2.match(namespace) and option == "SSLCertificateArns":
            service = Service.NLB if network else Service.ELASTIC_BEANSTALK
            uses.append(CertificateUse(service, setting["Value"], location, f"option {namespace} SSLCertificateArns"))
        elif _ELB.match(namespace) and option == "SSLCertificateId":
            uses.append(CertificateUse(Service.CLB, setting["Value"], location, f"option {namespace} SSLCertificateId"))
    return Extracted(tuple(uses))


EXTRACTORS = {
    "AWS::ElasticBeanstalk::Environment": environment,
    "AWS::ElasticBeanstalk::ConfigurationTemplate": environment,
}
