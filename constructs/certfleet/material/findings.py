"""Findings of the material checks: the one ``Finding`` shape (``certfleet.checks.finding``) and ``MaterialError``."""

from __future__ import annotations

from certfleet.checks.finding import Finding, Severity, error, warning

__all__ = ["Finding", "MaterialError", "Severity", "error", "warning"]


class MaterialError(Exception):
    """Input that cannot be used at all (unreadable file, wrong password). Its text never holds key bytes."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding
