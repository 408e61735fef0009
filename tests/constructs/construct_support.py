"""Helpers for construct tests: constants, the material files, a sealed key that needs no KMS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Stack
from aws_cdk.assertions import Template

from certfleet.material.demo import Issued
from certfleet.testing.synth import write_synth_only_sealed_key

ACCOUNT = "123456789012"
SEALING_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@dataclass
class Files:
    certificate: Path
    chain: Path
    key: Path
    combined: Path
    leaf: Issued


def write_sealed(path: Path, issued: Issued, name: str = "www.example.com") -> Path:
    """A sealed file whose ciphertext is random bytes: synth never decrypts, so no KMS is needed."""
    return write_synth_only_sealed_key(path, issued.key, name, SEALING_KEY_ARN)


def _role_statements(template: Template, handler: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the role of the function with ``handler``."""
    resources = template.to_json()["Resources"]
    role = next(r["Properties"]["Role"]["Fn::GetAtt"][0] for r in resources.values()
                if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == handler)
    return [s for r in resources.values() if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in
            r["Properties"].get("Roles", []) for s in r["Properties"]["PolicyDocument"]["Statement"]]


def sweeper_grants(stack: Stack) -> list[dict[str, Any]]:
    """The ACM statements of both sweeper functions (onEvent sweeps, isComplete sweeps again)."""
    template = Template.from_stack(stack)
    return [s for handler in ("certfleet_import.on_event", "certfleet_import.is_complete")
            for s in _role_statements(template, handler) if "acm:" in json.dumps(s["Action"])]
