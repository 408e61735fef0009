"""Findings: one problem or risk in the material, with a stable code, a message and a fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Severity(StrEnum):
    """An error stops an import or deploy; a warning is worth reading but does not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """A single result of a check. ``code`` is stable: scripts and tests may match on it."""

    code: str
    severity: Severity
    message: str
    fix: str = ""
    subject: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def to_dict(self) -> dict[str, str]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data

    def __str__(self) -> str:
        where = f"{self.subject}: " if self.subject else ""
        text = f"{self.severity.value} [{self.code}] {where}{self.message}"
        return f"{text}\n    fix: {self.fix}" if self.fix else text


def error(code: str, message: str, fix: str = "", subject: str = "") -> Finding:
    return Finding(code, Severity.ERROR, message, fix, subject)


def warning(code: str, message: str, fix: str = "", subject: str = "") -> Finding:
    return Finding(code, Severity.WARNING, message, fix, subject)


class MaterialError(Exception):
    """Input that cannot be used at all (unreadable file, wrong password). Its text never holds key bytes."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding
