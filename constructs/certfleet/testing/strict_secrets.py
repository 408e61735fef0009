"""StrictAWS's Secrets Manager rules (names, tags, sizes) and its replica lag, as a mixin of StrictAWS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from certfleet.testing.strict_checks import (
    SECRET_NAME,
    SECRET_NAME_MAX,
    AWSRefusal,
    _check_secret_string,
    _check_secret_tags,
)
from certfleet.testing.strict_http import _Request, _Response


@dataclass
class _Secret:
    primary_region: str
    created: float
    versions: dict[str, float] = field(default_factory=dict)
    current: list[tuple[float, str]] = field(default_factory=list)  # (when, version id) each time AWSCURRENT moved
    replicas: dict[str, float] = field(default_factory=dict)  # region -> when the replica was added
    reads: dict[tuple[str, str, float], int] = field(default_factory=dict)  # (region, version, when) -> reads refused


class SecretRules:
    """The Secrets Manager half of StrictAWS's rules; StrictAWS owns the state they share."""

    _lock: threading.RLock
    _secrets: dict[str, _Secret]
    replica_lag: float
    replica_lag_reads: int

    def _upstream_json(self, request: _Request, target: str, payload: dict[str, Any]) -> _Response:
        raise NotImplementedError  # StrictAWS's: a side call to moto

    # ----------------------------------------------------------------------- Secrets Manager (replica lag)
    def _secret_write(self, request: _Request) -> Callable[[_Response], _Response]:
        params = request.json()
        stages = params.get("VersionStages")
        moves_current = not stages or "AWSCURRENT" in stages
        replicas = [r.get("Region", "") for r in params.get("AddReplicaRegions") or []]
        token = params.get("ClientRequestToken")
        writes = "SecretString" in params or "SecretBinary" in params

        def record(response: _Response) -> _Response:
            data = response.json()
            name, version = str(data.get("Name", "")), data.get("VersionId")
            now = time.monotonic()
            with self._lock:
                secret = self._secrets.get(name)
                if secret is None or request.operation == "CreateSecret":
                    secret = self._secrets[name] = _Secret(request.region, now)
                for region in replicas:
                    secret.replicas.setdefault(region, now)
                if token and str(token) in secret.versions:  # Secrets Manager ignores a known token: nothing moves
                    return response
                if version and writes:
                    secret.versions[str(version)] = now
                    if moves_current:
                        secret.current.append((now, str(version)))
            return response

        return record

    def _secret_replicate(self, request: _Request) -> None:
        params = request.json()
        secret = self._find_secret(str(params.get("SecretId", "")))
        if secret is not None:
            now = time.monotonic()
            with self._lock:
                for replica in params.get("AddReplicaRegions") or []:
                    secret.replicas.setdefault(str(replica.get("Region", "")), now)

    def _secret_stage(self, request: _Request) -> Callable[[_Response], _Response] | None:
        """UpdateSecretVersionStage that moves AWSCURRENT: a move the replicas see late, as they see a write late."""
        params = request.json()
        moved = params.get("MoveToVersionId")
        if params.get("VersionStage") != "AWSCURRENT" or not moved:
            return None

        def record(response: _Response) -> _Response:
            secret = self._find_secret(str(params.get("SecretId", "")))
            with self._lock:
                if secret is not None and (not secret.current or secret.current[-1][1] != str(moved)):
                    secret.current.append((time.monotonic(), str(moved)))
            return response

        return record

    def _secret_read(self, request: _Request) -> Callable[[_Response], _Response] | None:
        """A replica's view under lag; then, for a read that names no version nor stage, AWSCURRENT's version (moto
        answers the version written last, even after UpdateSecretVersionStage moved AWSCURRENT elsewhere)."""
        self._replica_view(request)
        params = request.json()
        if params.get("VersionId") or params.get("VersionStage"):
            return None

        def current(response: _Response) -> _Response:
            if "AWSCURRENT" in (response.json().get("VersionStages") or []):
                return response
            return self._upstream_json(request, "secretsmanager.GetSecretValue",
                                       {**params, "VersionStage": "AWSCURRENT"})

        return current

    def _replica_view(self, request: _Request) -> None:
        """Refuse what ``request.region``'s replica does not have yet, or point the read at the version it has."""
        if self.replica_lag <= 0 and self.replica_lag_reads <= 0:
            return
        params = request.json()
        secret_id = str(params.get("SecretId", ""))
        secret = self._find_secret(secret_id)
        if secret is None or request.region == secret.primary_region or request.region not in secret.replicas:
            return
        now = time.monotonic()
        with self._lock:
            if not self._replicated(secret, request.region, "", secret.replicas[request.region], now):
                raise AWSRefusal("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
            version = params.get("VersionId")
            if version:
                written = secret.versions.get(str(version))
                if written is not None and not self._replicated(secret, request.region, str(version), written, now):
                    raise AWSRefusal(
                        "ResourceNotFoundException",
                        f"Secrets Manager can't find the specified secret value for VersionId: {version}",
                    )
                return
            if params.get("VersionStage", "AWSCURRENT") != "AWSCURRENT" or not secret.current:
                return
            when, latest = secret.current[-1]
            if self._replicated(secret, request.region, latest, when, now):
                return
            seen = [v for w, v in secret.current[:-1] if now - w >= self.replica_lag]
        if not seen:
            raise AWSRefusal(
                "ResourceNotFoundException",
                "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
            )
        request.body = json.dumps({"SecretId": secret_id, "VersionId": seen[-1]}).encode()  # the replica's view

    def _replicated(self, secret: _Secret, region: str, version: str, since: float, now: float) -> bool:
        """Whether ``region``'s replica has ``version`` ("" for the secret itself) as written or made AWSCURRENT at
        ``since`` yet: ``replica_lag`` seconds later and, for the newest such change, once ``replica_lag_reads`` reads
        of it there were refused (a count, so a test that a handler waits does not depend on how busy the machine
        is)."""
        if now - since < self.replica_lag:
            return False
        if not version or self.replica_lag_reads <= 0 or any(w > since for w in secret.versions.values()):
            return True
        refused = secret.reads.get((region, version, since), 0)
        if refused < self.replica_lag_reads:
            secret.reads[(region, version, since)] = refused + 1
            return False
        return True

    def _find_secret(self, secret_id: str) -> _Secret | None:
        tail = secret_id.split(":secret:", 1)[1] if secret_id.startswith("arn:") else secret_id
        with self._lock:
            for name, secret in self._secrets.items():
                if tail == name or (tail.startswith(name + "-") and len(tail) == len(name) + 7):
                    return secret
        return None

    def _secret_create(self, request: _Request) -> Callable[[_Response], _Response]:
        params = request.json()
        name = str(params.get("Name", ""))
        if not 1 <= len(name) <= SECRET_NAME_MAX or not SECRET_NAME.fullmatch(name):
            raise AWSRefusal(
                "ValidationException",
                f"Invalid name {name[:80]!r}: a secret name is 1 to {SECRET_NAME_MAX} characters, each an ASCII "
                "letter, a digit or one of /_+=.@-",
            )
        _check_secret_tags(params.get("Tags") or [], set())
        _check_secret_string(params)
        return self._secret_write(request)

    def _secret_put(self, request: _Request) -> Callable[[_Response], _Response]:
        _check_secret_string(request.json())
        return self._secret_write(request)

    def _secret_tag(self, request: _Request) -> None:
        params = request.json()
        described = self._upstream_json(request, "secretsmanager.DescribeSecret",
                                        {"SecretId": params.get("SecretId", "")})
        existing = {str(t.get("Key")) for t in (described.json().get("Tags") or [])} if described.status < 300 \
            else set()
        _check_secret_tags(params.get("Tags") or [], existing)
