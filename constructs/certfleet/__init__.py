"""certfleet: put a third-party TLS certificate everywhere AWS needs it, checked at synth.

The construct classes load aws_cdk on first use only, so that ``certfleet.material``,
``certfleet.rules`` and the CLI never pay for (or depend on) the CDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from certfleet.rules import Service

__all__ = [
    "AcmeAccount",
    "AcmeSource",
    "CertificateBundle",
    "CertificateBundleError",
    "CertificateFleet",
    "CertificateSource",
    "FleetGroup",
    "ImportedCertificate",
    "KeySource",
    "PlacementChecks",
    "SealingKey",
    "Service",
]

_LAZY: dict[str, str] = {
    "AcmeAccount": "certfleet.acme_order",
    "AcmeSource": "certfleet.source",
    "CertificateBundle": "certfleet.certificate_bundle",
    "CertificateBundleError": "certfleet.certificate_bundle",
    "KeySource": "certfleet.key_source",
    "ImportedCertificate": "certfleet.imported_certificate",
    "SealingKey": "certfleet.sealing",
    "CertificateFleet": "certfleet.fleet",
    "CertificateSource": "certfleet.source",
    "FleetGroup": "certfleet.group",
    "PlacementChecks": "certfleet.placement_plugin",
}

if TYPE_CHECKING:  # pragma: no cover
    from certfleet.acme_order import AcmeAccount
    from certfleet.certificate_bundle import CertificateBundle, CertificateBundleError
    from certfleet.fleet import CertificateFleet
    from certfleet.group import FleetGroup
    from certfleet.imported_certificate import ImportedCertificate
    from certfleet.key_source import KeySource
    from certfleet.placement_plugin import PlacementChecks
    from certfleet.sealing import SealingKey
    from certfleet.source import AcmeSource, CertificateSource


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'certfleet' has no attribute {name!r}")
    return getattr(import_module(module), name)
