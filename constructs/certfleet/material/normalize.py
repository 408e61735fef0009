"""The exact PEM that ACM takes: the certificate, the chain ordered leaf → root, the key as PKCS#8."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from certfleet.material.bundle import Material


@dataclass(frozen=True)
class Normalized:
    """PEM text for ACM's three fields. ``private_key`` is None when no key was given."""

    certificate: str
    chain: str
    private_key: str | None

    def __repr__(self) -> str:  # never let a stray print or log show the key
        key = "<redacted>" if self.private_key else None
        return (
            f"Normalized(certificate={len(self.certificate)} chars, chain={len(self.chain)} chars, key={key})"
        )


def normalize(material: Material) -> Normalized:
    """Render ``material`` as canonical PEM: LF line ends, 64-column base64, nothing outside the armor."""
    enc = serialization.Encoding.PEM
    key = None
    if material.key is not None:
        key = material.key.private_bytes(
            enc, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
        ).decode("ascii")
    return Normalized(
        certificate=material.leaf.public_bytes(enc).decode("ascii"),
        chain="".join(c.public_bytes(enc).decode("ascii") for c in material.chain),
        private_key=key,
    )
