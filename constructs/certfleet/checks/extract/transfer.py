"""Transfer Family servers: the FTPS certificate."""

from __future__ import annotations

from certfleet.checks.extract.base import CertificateUse, Extracted, Resource
from certfleet.rules import Service


def server(resource: Resource) -> Extracted:
    if "Certificate" not in resource.props:
        return Extracted()
    use = CertificateUse(Service.TRANSFER_FAMILY, resource.props["Certificate"], "Properties/Certificate")
    return Extracted((use,))


EXTRACTORS = {"AWS::Transfer::Server": server}
