"""The sealed-key file: a KMS ciphertext of the private key, safe to commit (like a SOPS file).

Format version 1, JSON::

    {"format": "certfleet-sealed-key/1", "kms_key_arn": ..., "region": ...,
     "encryption_context": {"certfleet:certificate": NAME}, "spki_sha256": ..., "key_algorithm": ...,
     "ciphertext": BASE64}

The SPKI hash lets synth prove that the sealed key belongs to the certificate without decrypting it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from certfleet.material.findings import MaterialError, error

SEALED_FILE_LIMIT = 64 * 1024
"""A sealed file is a few KB of JSON (the largest ACM key sealed is under 8 KB): anything larger is another file."""

FORMAT = "certfleet-sealed-key/1"
CONTEXT_KEY = "certfleet:certificate"
_KMS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):key/[A-Za-z0-9-]+$")
_NAME = re.compile(r"(?=.{1,128}\Z)(\*\.)?[A-Za-z0-9._:/@+=-]+\Z")


def encryption_context(name: str) -> dict[str, str]:
    """The KMS encryption context that binds a sealed key to one certificate name (a wildcard name included: it is
    compared with ``StringEquals``, never read as a pattern, and encoded wherever it becomes part of a name)."""
    if not _NAME.match(name):
        raise ValueError(
            f"certificate name {name!r} must be 1-128 characters of letters, digits and ._:/@+=- "
            "(a wildcard name may start with '*.')",
        )
    return {CONTEXT_KEY: name}


@dataclass(frozen=True)
class SealedKey:
    """A parsed sealed-key file. ``ciphertext`` is KMS output: useless without kms:Decrypt."""

    kms_key_arn: str
    region: str
    encryption_context: dict[str, str]
    spki_sha256: str
    key_algorithm: str
    ciphertext: bytes

    @property
    def name(self) -> str:
        return self.encryption_context.get(CONTEXT_KEY, "")

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT,
            "kms_key_arn": self.kms_key_arn,
            "region": self.region,
            "encryption_context": self.encryption_context,
            "spki_sha256": self.spki_sha256,
            "key_algorithm": self.key_algorithm,
            "ciphertext": base64.b64encode(self.ciphertext).decode("ascii"),
        }, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "<sealed key>") -> SealedKey:
        def bad(why: str) -> MaterialError:
            return MaterialError(error(
                "sealed-file-invalid", f"not a valid certfleet sealed-key file: {why}",
                "re-create it with `certfleet seal`", source,
            ))
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError:
            raise bad("it is not JSON") from None
        if not isinstance(data, dict):
            raise bad("it is not a JSON object")
        if data.get("format") != FORMAT:
            raise bad(f"format is {data.get('format')!r}, expected {FORMAT!r}")
        missing = [k for k in ("kms_key_arn", "region", "encryption_context", "spki_sha256", "key_algorithm",
                               "ciphertext") if not data.get(k)]
        if missing:
            raise bad(f"missing {', '.join(missing)}")
        context = data["encryption_context"]
        if not isinstance(context, dict) or not all(isinstance(v, str) for v in context.values()):
            raise bad("encryption_context must map strings to strings")
        match = _KMS_ARN.match(str(data["kms_key_arn"]))
        if not match:
            raise bad("kms_key_arn is not a KMS key ARN")
        if match.group(1) != data["region"]:
            raise bad(f"region {data['region']} does not match the KMS key's region {match.group(1)}")
        try:
            ciphertext = base64.b64decode(str(data["ciphertext"]), validate=True)
        except (binascii.Error, ValueError):
            raise bad("ciphertext is not base64") from None
        return cls(
            kms_key_arn=str(data["kms_key_arn"]), region=str(data["region"]), encryption_context=dict(context),
            spki_sha256=str(data["spki_sha256"]), key_algorithm=str(data["key_algorithm"]), ciphertext=ciphertext,
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SealedKey:
        from certfleet.material.loader import read_regular_file

        data = read_regular_file(path, limit=SEALED_FILE_LIMIT, what="sealed key file")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MaterialError(error(
                "sealed-file-invalid", "the sealed key file is not UTF-8 text (a sealed file is JSON)",
                "point at the .sealed file `certfleet seal` wrote", str(path),
            )) from None
        return cls.from_json(text, str(path))
