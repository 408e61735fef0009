"""The checks StrictAWS makes as ACM, Secrets Manager and KMS make them: pure functions over a request's values that
raise :class:`AWSRefusal` with the error AWS answers."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from certfleet._lambda.certfleet_contract import ACM_KEY_TYPES, EC_CURVES

#: Every key algorithm ACM can import, by ACM's names.
#: What ListCertificates returns when the request names no key types.
MAX_CERTIFICATE_BYTES = 32_768
MAX_PRIVATE_KEY_BYTES = 5_120
MAX_CHAIN_BYTES = 2_097_152
MAX_TAGS = 50
ACM_TAG_KEY_MAX, ACM_TAG_VALUE_MAX = 128, 256
SECRET_TAG_KEY_MAX, SECRET_TAG_VALUE_MAX = 127, 255
SECRET_NAME_MAX = 512
MAX_SECRET_STRING_BYTES = 65_536
MAX_ENCRYPTION_CONTEXT_BYTES = 8_192
SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]+")
_TAG_PUNCTUATION = frozenset("_.:/=+-@")


class AWSRefusal(Exception):
    """An error answered to the client in the JSON shape botocore parses: ``{"__type", "message"}``.

    Args:
        code: The AWS error code, sent as ``__type`` (``ValidationException``...).
        message: The error message, as AWS words it.
        status: The HTTP status of the answer. Default: 400.
    """

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


# ------------------------------------------------------------------------------ tags, secrets, KMS context
def _tag_characters_ok(text: str, *, spaces_only: bool = False) -> bool:
    """ACM's ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*``; Secrets Manager's "letters, spaces, numbers and _.:/=+-@"."""
    return all(
        char in _TAG_PUNCTUATION or unicodedata.category(char)[0] in "LN"
        or (char == " " if spaces_only else unicodedata.category(char)[0] == "Z")
        for char in text
    )


def _tag_pairs(tags: Any, operation: str) -> list[tuple[str, str]]:
    if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
        raise AWSRefusal("ValidationException", f"{operation}: Tags must be a list of {{Key, Value}} objects.")
    return [(str(t.get("Key", "")), str(t.get("Value", ""))) for t in tags]


def _check_acm_tags(tags: Any) -> None:
    pairs = _tag_pairs(tags, "ACM")
    if len(pairs) > MAX_TAGS:
        raise AWSRefusal("TooManyTagsException", f"{len(pairs)} tags in one request: at most {MAX_TAGS}.")
    for index, (key, value) in enumerate(pairs, 1):
        for what, text, low, high in (("key", key, 1, ACM_TAG_KEY_MAX), ("value", value, 0, ACM_TAG_VALUE_MAX)):
            if not low <= len(text) <= high:
                raise AWSRefusal("ValidationException", f"1 validation error detected: Value at 'tags.{index}.member."
                                 f"{what}' failed to satisfy constraint: Member must have length between {low} and "
                                 f"{high}")
            if not _tag_characters_ok(text):
                raise AWSRefusal("ValidationException", f"1 validation error detected: Value {text[:80]!r} at "
                                 f"'tags.{index}.member.{what}' failed to satisfy constraint: Member must satisfy "
                                 r"regular expression pattern: [\p{L}\p{Z}\p{N}_.:\/=+\-@]*")
        if key.lower().startswith("aws:"):
            raise AWSRefusal("InvalidTagException", f"Tag key {key!r} uses the reserved prefix aws:")


def _check_secret_tags(tags: Any, existing: set[str]) -> None:
    pairs = _tag_pairs(tags, "Secrets Manager")
    for key, value in pairs:
        if not 1 <= len(key) <= SECRET_TAG_KEY_MAX or len(value) > SECRET_TAG_VALUE_MAX:
            raise AWSRefusal("ValidationException", f"Tag {key[:80]!r}: a key is 1 to {SECRET_TAG_KEY_MAX} characters "
                             f"and a value at most {SECRET_TAG_VALUE_MAX}.")
        if key.lower().startswith("aws:"):
            raise AWSRefusal("ValidationException", f"Tag key {key!r} uses the prefix aws:, reserved for AWS use.")
        for text in (key, value):
            if not _tag_characters_ok(text, spaces_only=True):
                raise AWSRefusal("ValidationException", f"Tag {key[:80]!r} holds a character Secrets Manager does "
                                 "not allow in tags: use letters, spaces, numbers and _.:/=+-@")
    keys = {k for k in existing | {k for k, _ in pairs} if not k.lower().startswith("aws:")}
    if len(keys) > MAX_TAGS:
        raise AWSRefusal("ValidationException", f"The secret would have {len(keys)} tags: at most {MAX_TAGS}.")


def _check_secret_string(params: dict[str, Any]) -> None:
    text = params.get("SecretString")
    if isinstance(text, str) and len(text.encode()) > MAX_SECRET_STRING_BYTES:
        raise AWSRefusal("ValidationException", "1 validation error detected: Value at 'secretString' failed to "
                         f"satisfy constraint: Member must have length less than or equal to {MAX_SECRET_STRING_BYTES}")


def _check_encryption_context(name: str, context: Any) -> None:
    if not isinstance(context, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in context.items()):
        raise AWSRefusal("ValidationException", f"{name} must be a map of strings to strings.")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in context.items())
    if size > MAX_ENCRYPTION_CONTEXT_BYTES:
        raise AWSRefusal("ValidationException", f"{name} is {size} bytes: StrictAWS allows at most "
                         f"{MAX_ENCRYPTION_CONTEXT_BYTES} (an unverified, conservative limit).")


# --------------------------------------------------------------------------------------- certificate checks
def _blob(params: dict[str, Any], name: str, field_name: str, limit: int) -> bytes:
    try:
        data = base64.b64decode(str(params.get(name) or ""), validate=True)
    except (ValueError, binascii.Error):
        raise AWSRefusal("ValidationException", f"The {field_name} is not valid base64.") from None
    if not data:
        raise AWSRefusal("ValidationException", f"1 validation error detected: Value at '{field_name}' "
                         "failed to satisfy constraint: Member must have length greater than or equal to 1")
    if len(data) > limit:
        raise AWSRefusal("ValidationException", f"1 validation error detected: Value at '{field_name}' "
                         f"failed to satisfy constraint: Member must have length less than or equal to {limit}")
    return data


def _pem_certificates(data: bytes, what: str, hint: str = "") -> list[x509.Certificate]:
    """The PEM certificates of ``data`` (``what``: the field, for the refusal); ACM refuses DER or garbage."""
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise AWSRefusal("ValidationException", f"The {what} is not PEM-encoded.{hint}")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise AWSRefusal("ValidationException", f"The {what} is not valid.") from None


def _load_leaf(data: bytes) -> x509.Certificate:
    certificates = _pem_certificates(data, "certificate", " Upload a PEM-encoded certificate.")
    if len(certificates) != 1:
        raise AWSRefusal(
            "ValidationException",
            "The certificate field contains more than one certificate. "
            "You can specify only one certificate in this field.",
        )
    certificate = certificates[0]
    if certificate.version is not x509.Version.v3:
        raise AWSRefusal("ValidationException", "The certificate must be an X.509 version 3 certificate.")
    return certificate


def _load_private_key(data: bytes) -> PrivateKeyTypes:
    if b"-----BEGIN" not in data:
        raise AWSRefusal("ValidationException", "The private key is not PEM-encoded.")
    if b"ENCRYPTED" in data.split(b"\n", 2)[0] or b"Proc-Type: 4,ENCRYPTED" in data:
        raise AWSRefusal("ValidationException", "The private key is encrypted: ACM imports only unencrypted keys.")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise AWSRefusal("ValidationException", "The private key is encrypted: ACM imports only unencrypted keys.") \
            from None
    except (ValueError, UnsupportedAlgorithm):
        raise AWSRefusal("ValidationException", "The private key is not supported.") from None


def _acm_algorithm(public_key: PublicKeyTypes, what: str) -> str:
    name = ""
    if isinstance(public_key, rsa.RSAPublicKey):
        name = f"RSA_{public_key.key_size}"
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        name = EC_CURVES.get(public_key.curve.name, "")
    if name not in ACM_KEY_TYPES:
        raise AWSRefusal(
            "ValidationException",
            f"The {what} uses an algorithm ACM cannot import ({type(public_key).__name__}"
            f"{f' {name}' if name else ''}); supported: {', '.join(ACM_KEY_TYPES)}.",
        )
    return name


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_chain(leaf: x509.Certificate, data: bytes) -> None:
    chain = _pem_certificates(data, "certificate chain")
    for member in chain:
        if member == leaf:
            raise AWSRefusal(
                "ValidationException", "The certificate chain must not contain the end-entity certificate.",
            )
    for position, (child, parent) in enumerate(_links(leaf, chain)):
        try:
            child.verify_directly_issued_by(parent)
        except Exception:  # ValueError (names), InvalidSignature, TypeError (algorithm): all "does not certify"
            what = "the certificate" if position == 0 else f"chain certificate {position}"
            raise AWSRefusal(
                "ValidationException",
                f"The certificate chain is not valid: chain certificate {position + 1} "
                f"({parent.subject.rfc4514_string()}) does not directly certify {what} "
                f"({child.subject.rfc4514_string()}).",
            ) from None


def _links(
    leaf: x509.Certificate, chain: list[x509.Certificate],
) -> Iterable[tuple[x509.Certificate, x509.Certificate]]:
    previous = leaf
    for parent in chain:
        yield previous, parent
        previous = parent
