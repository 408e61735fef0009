"""Helpers shared by certfleet's custom-resource handlers: standard library and boto3 only."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import random
import re
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, NotRequired, TypedDict, TypeVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:  # checked as part of the certfleet package
    from mypy_boto3_acm import ACMClient

    from certfleet._lambda.certfleet_contract import ACM_KEY_TYPES, EC_P256, EC_P384, EC_P521, AcmeMaterial
else:  # the Lambda asset's top level, as /var/task is
    from certfleet_contract import ACM_KEY_TYPES, EC_P256, EC_P384, EC_P521, AcmeMaterial

T = TypeVar("T")
LOG = logging.getLogger("certfleet")
LOG.setLevel(logging.INFO)
for _chatty in ("boto3", "botocore", "urllib3"):  # their DEBUG lines print request and response bodies: keys
    logging.getLogger(_chatty).setLevel(logging.WARNING)
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.+?)-----END \1-----", re.S)
_CLIENTS: dict[tuple[str, str, bool, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()
_POOL = 256
"""Connections a shared client keeps: one Lambda invocation uses one, but tests and benches run many handlers as
threads of one process, and a smaller pool would open (and drop) a connection per request."""


class OnEventResponse(TypedDict):
    """What an onEvent handler returns to the Provider framework."""

    PhysicalResourceId: str
    Data: NotRequired[dict[str, str]]


class IsCompleteResponse(TypedDict):
    """What an isComplete handler returns to the Provider framework."""

    IsComplete: bool


def region() -> str:
    """The function's own region (Lambda sets AWS_REGION)."""
    return os.environ.get("AWS_REGION") or os.environ["AWS_DEFAULT_REGION"]


def client(service: str, region_name: str | None = None, *, retry: bool = True) -> Any:
    """A boto3 client, made once per service, region, retry mode and endpoint (boto3 clients are thread-safe, making
    one is not); ``retry=False`` leaves every retry to the caller's own loop."""
    place = region_name or region()
    key = (service, place, retry, os.environ.get("AWS_ENDPOINT_URL", ""))
    with _CLIENTS_LOCK:
        made = _CLIENTS.get(key)
        if made is None:
            retries: Any = {"mode": "standard", "max_attempts": 5} if retry else {"total_max_attempts": 1}
            make: Callable[..., Any] = boto3.client
            config = Config(retries=retries, max_pool_connections=_POOL)
            made = _CLIENTS[key] = make(service, region_name=place, config=config)
    return made


def code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def describe(exc: ClientError) -> str:
    """'Code: message' of a ClientError (AWS messages never echo request values such as keys)."""
    return f"{code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"


def seconds(name: str, default: float) -> float:
    """A time budget from the environment (tests shorten them), else ``default``."""
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def deadline(context: object, fallback: str, default: float) -> float:
    """When this invocation must stop retrying (``time.monotonic()``): Lambda's remaining time less a margin for the
    work after the last retry (CERTFLEET_LAMBDA_MARGIN_SECONDS, default 15); without a Lambda context (tests, the
    rehearsal), the budget in environment variable ``fallback``, else ``default`` seconds."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        return time.monotonic() + float(remaining()) / 1000 - seconds("CERTFLEET_LAMBDA_MARGIN_SECONDS", 15)
    return time.monotonic() + seconds(fallback, default)


def backoff(
    action: Callable[[], T], retry_if: Callable[[ClientError], bool], until: float, what: str,
    *, base: float = 0.5, cap: float = 8.0,
) -> T:
    """Run ``action``; while ``retry_if``, retry it after a full-jitter delay (``base`` doubling per attempt, at most
    ``cap``) until ``until`` (``time.monotonic()``): the last attempt is made at the deadline, not skipped."""
    attempt = 0
    while True:
        try:
            return action()
        except ClientError as exc:
            left = until - time.monotonic()
            if not retry_if(exc) or left <= 0:
                raise
            delay = min(left, random.uniform(0, min(cap, base * 2**attempt)))  # noqa: S311 - jitter, not crypto
            if attempt % 10 == 0:
                LOG.info("%s: %s; retrying (attempt %d, %.0f s left)", what, code(exc), attempt + 1, left)
            time.sleep(delay)
            attempt += 1


def secret_text(secret_id: str, version: str, until: float, what: str, *, wait: bool = True) -> tuple[str, str]:
    """The text of secret ``secret_id`` (holding ``what``) at ``version`` (``""``: AWSCURRENT) and the version read,
    waiting out replica lag until ``until`` (``wait``; else one read); never logs or quotes the value. A missing one
    raises ClientError when not ``wait``."""
    args = {"SecretId": secret_id, **({"VersionId": version} if version else {"VersionStage": "AWSCURRENT"})}
    home = secret_id.split(":")[3] if secret_id.startswith("arn:") else region()  # another account: the primary
    secrets = client("secretsmanager", home)
    budget = seconds("CERTFLEET_SECRET_WAIT_SECONDS", 120)
    try:
        answer = backoff(lambda: secrets.get_secret_value(**args), lambda e: code(e) == "ResourceNotFoundException",
                         min(until, time.monotonic() + budget) if wait else 0.0,
                         f"GetSecretValue {secret_id} {version or 'AWSCURRENT'}")
    except ClientError as exc:
        if not wait and code(exc) == "ResourceNotFoundException":
            raise
        raise RuntimeError(
            f"cannot read {what} from secret {secret_id} version {version or 'AWSCURRENT'} in {home} "
            f"within {budget:.0f} s: {describe(exc)} (a replica may still be catching up; check its replication "
            "status and that this function may read the secret)",
        ) from None
    text = answer.get("SecretString") or bytes(answer.get("SecretBinary") or b"").decode("utf-8", "replace")
    return text, str(answer.get("VersionId", version))


def pem_der(pem: str) -> bytes:
    """The DER of the first PEM block in ``pem``."""
    match = _PEM.search(pem)
    if match is None:
        raise ValueError("no PEM block found")
    return base64.b64decode("".join(match.group(2).split()))


def der_pem(der: bytes, label: str) -> str:
    """PEM text for ``der`` under ``label``, 64-column lines, as OpenSSL writes it."""
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def key_in(text: str, where: str) -> str:
    """The PEM private key a key secret's value holds: plain PEM, or JSON with a "private_key" field; ValueError naming
    ``where`` (the secret and version) and what is wrong, never the value."""
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise ValueError(f"{where} starts like JSON but is not valid JSON") from None
        key = data.get("private_key") if isinstance(data, dict) else None
        if not isinstance(key, str):
            raise ValueError(f'{where} is JSON without a "private_key" string field')
        text = key
    if "-----BEGIN" not in text:
        raise ValueError(f'{where} holds neither a PEM private key nor JSON {{"private_key": PEM}}')
    return text


def material_in(text: str, where: str) -> tuple[str, str, str]:
    """Certificate, chain and private key (PEM) of one version of an ACME source's material secret (AcmeMaterial
    JSON); ValueError naming ``where`` and what is missing, never a value."""
    try:
        value = json.loads(text) if text.lstrip().startswith("{") else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ValueError(f"{where} is not certificate material (JSON with certificate, chain and private_key): a "
                         "resource without a Certificate property reads its certificate from its key's secret, as an "
                         "ACME source's issuer writes it; give the certificate, or the ACME source's material secret")
    material = cast("AcmeMaterial", value)
    certificate, chain, key = material.get("certificate"), material.get("chain", ""), material.get("private_key")
    problems = [f'no "{name}" {kind}' for name, kind, good in (
        ("certificate", "PEM certificate", isinstance(certificate, str) and "-----BEGIN CERTIFICATE" in certificate),
        ("private_key", "PEM private key", isinstance(key, str) and "-----BEGIN" in key),
        ("chain", "string", isinstance(chain, str))) if not good]
    if problems:
        raise ValueError(f"{where} holds JSON with {', '.join(problems)}: it must be certificate material "
                         "(certificate, chain, private_key as the ACME issuer writes them)")
    return certificate, chain, key


def dns_names(names: Iterable[object]) -> frozenset[str]:
    """DNS names to compare as a set: lower case, without blanks or a trailing dot, as ACME orders name them; a
    wildcard ``*.x`` is a name of its own (it does not stand for ``www.x``)."""
    return frozenset(str(name).strip().lower().rstrip(".") for name in names)


def material_names(text: str) -> frozenset[str] | None:
    """The names one version of an ACME source's material says it certifies (AcmeMaterial ``names``, as dns_names);
    None when it names none (written before materials named theirs, or not material)."""
    try:
        value = json.loads(text) if text.lstrip().startswith("{") else None
    except ValueError:
        return None
    names = value.get("names") if isinstance(value, dict) else None
    return dns_names(names) if isinstance(names, list) else None


class LeafFacts(NamedTuple):
    """What the importer needs to know of a certificate, read from its DER without a crypto library."""

    not_before: dt.datetime
    not_after: dt.datetime
    key_type: str
    """ACM's name of the key type (``RSA_2048``, ``EC_prime256v1``...); ``""`` for a key ACM does not import."""


_RSA = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1 rsaEncryption
_EC = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1 id-ecPublicKey
_CURVES = {bytes.fromhex("2a8648ce3d030107"): EC_P256, bytes.fromhex("2b81040022"): EC_P384,
           bytes.fromhex("2b81040023"): EC_P521}  # prime256v1, secp384r1, secp521r1
_BIT_STRING, _OID, _UTC_TIME, _GENERALIZED_TIME, _VERSION = 0x03, 0x06, 0x17, 0x18, 0xA0


def _element(der: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start, end) of the DER element at ``at`` (single-byte tags: all X.509 needs here)."""
    tag, length, at = der[at], der[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        length, at = int.from_bytes(der[at:at + count], "big"), at + count
    if at + length > len(der):
        raise ValueError("truncated DER")
    return tag, at, at + length


def _elements(der: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    found = []
    while start < end:
        found.append(_element(der, start))
        start = found[-1][2]
    return found


def _time(der: bytes, element: tuple[int, int, int]) -> dt.datetime:
    tag, start, end = element
    text = der[start:end].decode("ascii")
    if tag == _UTC_TIME:  # YYMMDDHHMMSSZ, 1950-2049 (RFC 5280 4.1.2.5.1)
        text = ("19" if int(text[:2]) >= 50 else "20") + text
    elif tag != _GENERALIZED_TIME:
        raise ValueError("not a time")
    return dt.datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=dt.UTC)


def leaf_facts(der: bytes) -> LeafFacts:
    """Validity and ACM key type of an X.509 certificate (DER); ValueError when it is not one."""
    try:
        _, start, end = _element(der, 0)
        _, start, end = _element(der, start)  # tbsCertificate
        fields = _elements(der, start, end)
        fields = fields[1:] if fields[0][0] == _VERSION else fields
        validity, spki = fields[3], fields[5]  # after serialNumber, signature, issuer; then subject
        not_before, not_after = (_time(der, e) for e in _elements(der, validity[1], validity[2]))
        algorithm, key = _elements(der, spki[1], spki[2])
        oid, *parameters = _elements(der, algorithm[1], algorithm[2])
        kind = der[oid[1]:oid[2]]
        key_type = ""
        if kind == _EC and parameters and parameters[0][0] == _OID:
            key_type = _CURVES.get(der[parameters[0][1]:parameters[0][2]], "")
        elif kind == _RSA and key[0] == _BIT_STRING:
            _, start, end = _element(der, key[1] + 1)  # RSAPublicKey, after the unused-bits byte
            modulus = _elements(der, start, end)[0]
            bits = int.from_bytes(der[modulus[1]:modulus[2]], "big").bit_length()
            key_type = f"RSA_{bits}" if f"RSA_{bits}" in ACM_KEY_TYPES else ""
    except (IndexError, ValueError) as exc:
        raise ValueError(f"not an X.509 certificate ({exc})") from None
    return LeafFacts(not_before, not_after, key_type)


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def tagged(acm: ACMClient, names: frozenset[str] = frozenset()) -> Iterator[tuple[str, dict[str, str]]]:
    """Every certificate of every key type in the client's region, with its tags; with ``names``, only those whose
    listed names include one of them (a FleetGroup region holds hundreds: one ListTags each would be slow)."""
    for page in acm.get_paginator("list_certificates").paginate(Includes={"keyTypes": list(ACM_KEY_TYPES)}):
        for summary in page.get("CertificateSummaryList", []):
            listed = [n for n in [summary.get("DomainName"), *summary.get("SubjectAlternativeNameSummaries", [])] if n]
            if names and listed and names.isdisjoint(listed):
                continue
            arn = str(summary["CertificateArn"])
            tags = {t["Key"]: t.get("Value", "") for t in acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]}
            yield arn, tags


def try_delete(arn: str, acm: ACMClient | None = None) -> bool:
    """DeleteCertificate (with ``acm``, a client of the certificate's region); True when gone, False while in use."""
    acm = acm or client("acm", arn.split(":")[3])
    try:
        acm.delete_certificate(CertificateArn=arn)
    except ClientError as exc:
        if code(exc) == "ResourceInUseException":
            return False
        if code(exc) != "ResourceNotFoundException":
            raise RuntimeError(f"cannot delete ACM certificate {arn}: {describe(exc)}") from None
    LOG.info("Delete %s: deleted", arn)
    return True
