"""CloudFront distributions: the viewer certificate and MinimumProtocolVersion."""

from __future__ import annotations

from certfleet.checks.extract.base import CertificateUse, Extracted, Resource, tls_setting
from certfleet.checks.template import as_dict, as_list, literal_names
from certfleet.rules import Service

_BASE = "Properties/DistributionConfig/ViewerCertificate"


def distribution(resource: Resource) -> Extracted:
    config = as_dict(resource.props.get("DistributionConfig"))
    viewer = as_dict(config.get("ViewerCertificate"))
    if "AcmCertificateArn" not in viewer:
        return Extracted()
    use = CertificateUse(Service.CLOUDFRONT, viewer["AcmCertificateArn"], f"{_BASE}/AcmCertificateArn", "",
                         literal_names(*as_list(config.get("Aliases"))), "the distribution's domain names (Aliases)")
    return Extracted((use,), tls_setting(Service.CLOUDFRONT, viewer.get("MinimumProtocolVersion"),
                                         f"{_BASE}/MinimumProtocolVersion"))


EXTRACTORS = {"AWS::CloudFront::Distribution": distribution}
