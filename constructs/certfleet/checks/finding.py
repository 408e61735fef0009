"""The one ``Finding`` shape: a problem or risk with a stable code, a message and a fix (standard library only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Severity(StrEnum):
    """An error stops an import, a deploy or a synth; a warning is worth reading but does not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Site:
    """Where in a synthesized template a finding is: the stack, the resource and the property path."""

    stack: str
    logical_id: str
    construct_path: str
    template_path: str
    location: str
    service: str = ""  # the certfleet.rules.Service value of the consumer, "" for limits


@dataclass(frozen=True)
class Finding:
    """A single result of a check. ``code`` is stable: scripts and tests may match on it."""

    code: str
    severity: Severity
    message: str
    fix: str = ""
    subject: str = ""
    site: Site | None = None  # set for template checks and limits

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def to_dict(self) -> dict[str, str]:
        """code, severity, message, fix, subject; and the site's fields when there is one."""
        data = {"code": self.code, "severity": self.severity.value, "message": self.message, "fix": self.fix,
                "subject": self.subject}
        if self.site is not None:
            data.update(asdict(self.site))
        return data

    def __str__(self) -> str:
        where = f"{self.subject}: " if self.subject else ""
        text = f"{self.severity.value} [{self.code}] {where}{self.message}"
        return f"{text}\n    fix: {self.fix}" if self.fix else text


def error(code: str, message: str, fix: str = "", subject: str = "", *, site: Site | None = None) -> Finding:
    return Finding(code, Severity.ERROR, message, fix, subject, site)


def warning(code: str, message: str, fix: str = "", subject: str = "", *, site: Site | None = None) -> Finding:
    return Finding(code, Severity.WARNING, message, fix, subject, site)


__all__ = ["Finding", "Severity", "Site", "error", "warning"]
