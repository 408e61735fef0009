"""The one contract between certfleet's constructs and its custom-resource handlers (standard library only).

Shipped in the Lambda asset (imported there as ``certfleet_contract``) and imported by the constructs, the CLI,
StrictAWS and the rehearsal as ``certfleet._lambda.certfleet_contract``: each resource type, property name, tag key
and ACM key type is spelled here and nowhere else.
"""

from __future__ import annotations

from typing import Final, Generic, Literal, NotRequired, TypedDict, TypeVar

__all__ = [
    "ACME_CERTIFICATE_TYPE",
    "ACME_ISSUER_IS_COMPLETE",
    "ACME_ISSUER_ON_EVENT",
    "ACME_KEY_TYPES",
    "ACME_RENEWER",
    "ACME_SOURCE",
    "ACM_KEY_TYPES",
    "CERTIFICATE_TYPE",
    "DEFAULT_LIST_KEY_TYPES",
    "EC_CURVES",
    "EC_P256",
    "EC_P384",
    "EC_P521",
    "FLEET_TAG",
    "HANDLED_BY",
    "ID_TAG",
    "IMPORTER_IS_COMPLETE",
    "IMPORTER_ON_EVENT",
    "KEY_VERSION_TYPE",
    "KEY_WRITER_ON_EVENT",
    "MANAGED_BY",
    "MANAGED_BY_TAG",
    "OWNER_TAG",
    "RETIRED_TAG",
    "RSA_1024",
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "SEALED_KEY_TYPE",
    "SOURCE_TAG",
    "SWEEPER_TYPE",
    "AcmeCertificateProperties",
    "AcmeMaterial",
    "AcmeRenewInput",
    "CertificateProperties",
    "CustomResourceEvent",
    "HostedZone",
    "KeyVersionProperties",
    "SealedKeyProperties",
    "SweeperProperties",
    "Tag",
]

CERTIFICATE_TYPE: Final = "Custom::CertfleetCertificate"
"""An imported ACM certificate (certfleet_import)."""
SWEEPER_TYPE: Final = "Custom::CertfleetSweeper"
"""Deletes a fleet's (or a FleetGroup's) retired certificates once released (certfleet_sweeper)."""
SEALED_KEY_TYPE: Final = "Custom::CertfleetSealedKey"
"""Decrypts a sealed private key with KMS into Secrets Manager (certfleet_keywriter)."""
KEY_VERSION_TYPE: Final = "Custom::CertfleetKeyVersion"
"""Pins the AWSCURRENT version of a user's key secret (certfleet_keyversion, served by the key writer)."""
ACME_CERTIFICATE_TYPE: Final = "Custom::CertfleetAcmeCertificate"
"""Orders a certificate over ACME into the fleet's material secret (lambda_acme/certfleet_acme_handler, the issuer)."""

IMPORTER_ON_EVENT: Final = "certfleet_import.on_event"
"""Lambda handler of the importer's onEvent: CERTIFICATE_TYPE, and SWEEPER_TYPE (handed to certfleet_sweeper)."""
IMPORTER_IS_COMPLETE: Final = "certfleet_import.is_complete"
KEY_WRITER_ON_EVENT: Final = "certfleet_keywriter.on_event"
"""Lambda handler of the key writer: SEALED_KEY_TYPE, and KEY_VERSION_TYPE (handed to certfleet_keyversion)."""
ACME_ISSUER_ON_EVENT: Final = "certfleet_acme_handler.on_event"
"""Lambda handler of the ACME issuer's onEvent (ACME_CERTIFICATE_TYPE; the ACME asset, not the import asset)."""
ACME_ISSUER_IS_COMPLETE: Final = "certfleet_acme_handler.is_complete"
ACME_RENEWER: Final = "certfleet_acme_handler.renew"
"""Lambda handler of the scheduled ACME renewer (its input: AcmeRenewInput)."""
HANDLED_BY: Final[dict[str, str]] = {
    CERTIFICATE_TYPE: IMPORTER_ON_EVENT, SWEEPER_TYPE: IMPORTER_ON_EVENT,
    SEALED_KEY_TYPE: KEY_WRITER_ON_EVENT, KEY_VERSION_TYPE: KEY_WRITER_ON_EVENT,
}
"""The onEvent handler of each resource type's provider."""

MANAGED_BY_TAG: Final = "certfleet:managed-by"
MANAGED_BY: Final = "certfleet"
"""The value of MANAGED_BY_TAG on every certificate certfleet imports."""
FLEET_TAG: Final = "certfleet:fleet"
ID_TAG: Final = "certfleet:id"
RETIRED_TAG: Final = "certfleet:retired"
"""Set (to a UTC timestamp) on a certificate whose resource was deleted while it was still in use."""
SOURCE_TAG: Final = "certfleet:source"
"""Set to ACME_SOURCE on a certificate ordered over ACME (absent: imported from files)."""
ACME_SOURCE: Final = "acme"
OWNER_TAG: Final = "certfleet:stack"
"""Set by the importer on a certificate it adopts: ``<StackId>/<LogicalResourceId>`` of the adopting resource."""

RSA_1024: Final = "RSA_1024"
RSA_2048: Final = "RSA_2048"
RSA_3072: Final = "RSA_3072"
RSA_4096: Final = "RSA_4096"
EC_P256: Final = "EC_prime256v1"
EC_P384: Final = "EC_secp384r1"
EC_P521: Final = "EC_secp521r1"
ACM_KEY_TYPES: Final = (RSA_1024, RSA_2048, RSA_3072, RSA_4096, EC_P256, EC_P384, EC_P521)
"""Every key type ACM imports; ListCertificates must be asked for each."""
EC_CURVES: Final[dict[str, str]] = {"secp256r1": EC_P256, "secp384r1": EC_P384, "secp521r1": EC_P521}
"""ACM's key type of each elliptic curve it imports, by the curve's name in X.509 (and pyca/cryptography)."""
DEFAULT_LIST_KEY_TYPES: Final = (RSA_1024, RSA_2048)
"""What ListCertificates returns when not asked for key types."""
ACME_KEY_TYPES: Final[dict[str, str]] = {
    "ec-p256": EC_P256, "ec-p384": EC_P384, "rsa-2048": RSA_2048, "rsa-3072": RSA_3072, "rsa-4096": RSA_4096,
}
"""ACM's key type of each key type an ACME source may order (certfleet keygen's names)."""


class Tag(TypedDict):
    """One tag as CloudFormation and ACM spell it."""

    Key: str
    Value: str


class CertificateProperties(TypedDict):
    """ResourceProperties of CERTIFICATE_TYPE (all strings: CloudFormation passes strings). The certificate's source
    fills the material and the key's secret, ImportedCertificate the rest. Without ``Certificate`` (an ACME source),
    the key's secret holds AcmeMaterial: certificate, chain and key are read from it, and ``Fingerprint`` is the
    material's."""

    ServiceToken: NotRequired[str]
    Certificate: NotRequired[str]
    CertificateChain: NotRequired[str]
    KeyAlgorithm: str
    Fingerprint: NotRequired[str]
    KeySecretId: str
    KeySecretVersionId: NotRequired[str]
    Tags: NotRequired[list[Tag]]
    RemovalPolicy: NotRequired[Literal["retain", "destroy"]]
    DeleteTimeoutSeconds: NotRequired[str]
    Group: NotRequired[str]
    Names: NotRequired[list[str]]


class SweeperProperties(TypedDict):
    """ResourceProperties of SWEEPER_TYPE: one fleet (Fleet) or every fleet named FleetPrefix... (a FleetGroup)."""

    ServiceToken: NotRequired[str]
    Fleet: NotRequired[str]
    FleetPrefix: NotRequired[str]
    Regions: list[str]
    Generation: NotRequired[str]
    WaitSeconds: NotRequired[str]


class SealedKeyProperties(TypedDict):
    """ResourceProperties of SEALED_KEY_TYPE."""

    ServiceToken: NotRequired[str]
    SecretId: str
    Ciphertext: str
    KmsKeyId: str
    EncryptionContext: NotRequired[dict[str, str]]
    SpkiSha256: NotRequired[str]


class KeyVersionProperties(TypedDict):
    """ResourceProperties of KEY_VERSION_TYPE."""

    ServiceToken: NotRequired[str]
    SecretId: str
    Fingerprints: NotRequired[list[str]]


class HostedZone(TypedDict):
    """A Route 53 hosted zone that the dns-01 challenge records of some domains go into."""

    Id: str
    Name: str


class AcmeCertificateProperties(TypedDict):
    """ResourceProperties of ACME_CERTIFICATE_TYPE (strings and lists: CloudFormation passes strings)."""

    ServiceToken: NotRequired[str]
    DirectoryUrl: str
    Domains: list[str]
    KeyType: str
    HostedZones: list[HostedZone]
    MaterialSecretId: str
    AccountSecretId: str
    Fleet: str
    Contact: NotRequired[str]
    EabKeyId: NotRequired[str]
    EabHmacSecretId: NotRequired[str]


class AcmeRenewInput(AcmeCertificateProperties):
    """The renewer's schedule input: the issuer's properties, the fleet's regions and the certificate's ID_TAG."""

    Regions: list[str]
    CertificateId: str


class AcmeMaterial(TypedDict):
    """One version of an ACME source's material secret (JSON): one issuance, never split across versions. ``names``
    (the certificate's DNS names, lower case, as ordered) and ``fleet`` (the FLEET_TAG value of the fleet that
    ordered it) let readers that cannot parse X.509 or trust their input check what they were given."""

    certificate: str
    chain: str
    private_key: str
    key_type: str
    not_after: str
    names: NotRequired[list[str]]
    fleet: NotRequired[str]


P = TypeVar("P")


class CustomResourceEvent(TypedDict, Generic[P]):
    """What the Provider framework hands a handler (powertools' CloudFormationCustomResourceEvent, as a TypedDict),
    ``P`` being the resource's properties."""

    RequestType: Literal["Create", "Update", "Delete"]
    ResourceType: NotRequired[str]
    ResourceProperties: P
    OldResourceProperties: NotRequired[P]
    PhysicalResourceId: NotRequired[str]
    StackId: NotRequired[str]
    RequestId: NotRequired[str]
    LogicalResourceId: NotRequired[str]
    ServiceToken: NotRequired[str]
    Data: NotRequired[dict[str, str]]
