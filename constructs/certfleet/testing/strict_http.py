"""StrictAWS's HTTP side: the request and response it passes around, the threaded server, and the proxy's own
control endpoint (``/_strict/``)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, cast
from urllib.parse import parse_qs, urlsplit

from certfleet.testing.authorize import Principal
from certfleet.testing.strict_checks import AWSRefusal


class Proxy(Protocol):
    """What the HTTP side needs of StrictAWS: register a role, and answer one request."""

    def register(self, principal: Principal) -> None: ...

    def handle(self, request: _Request) -> _Response: ...

_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_ACCOUNT_PATH = re.compile(r"/_account/(\d{12})(?=/|\?|$)")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def _json_object(body: bytes) -> dict[str, Any]:
    """A JSON request or response body as a dict; anything else (XML, query strings, nothing) as {}."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    service: str
    operation: str
    region: str
    account: str = ""

    def json(self) -> dict[str, Any]:
        return _json_object(self.body)


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> dict[str, Any]:
        return _json_object(self.body)

    def with_json(self, data: dict[str, Any]) -> _Response:
        return _Response(self.status, self.headers, json.dumps(data, default=str).encode())


# ------------------------------------------------------------------------------------------------ HTTP
def _error(refusal: AWSRefusal) -> _Response:
    body = json.dumps({"__type": refusal.code, "message": refusal.message}).encode()
    return _Response(refusal.status, [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("x-amzn-ErrorType", refusal.code),
    ], body)


CONTROL = "/_strict/"
"""Paths StrictAWS answers itself: ``POST /_strict/principals`` (a :class:`Principal` as JSON) registers a role."""


def _control(strict: Proxy, method: str, path: str, body: bytes) -> _Response:
    """The proxy's own endpoint: register a principal (the rehearsal does, for each role it runs a handler as)."""
    if method == "POST" and urlsplit(path).path == CONTROL + "principals":
        try:
            strict.register(Principal.from_json(json.loads(body)))
        except (ValueError, KeyError, TypeError) as exc:
            return _error(AWSRefusal("ValidationException", f"not a principal: {type(exc).__name__}: {exc}"))
        return _Response(200, [("Content-Type", "application/json")], b"{}")
    return _error(AWSRefusal("UnknownOperationException", f"StrictAWS has no {method} {urlsplit(path).path}", 404))


def _identify(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[str, str, str]:
    """(service, operation, region) from SigV4's credential scope, X-Amz-Target or the query Action."""
    lowered = {k.lower(): v for k, v in headers.items()}
    match = _CREDENTIAL.search(lowered.get("authorization", ""))
    query = parse_qs(urlsplit(path).query)
    if match is None and "X-Amz-Credential" in query:
        match = _CREDENTIAL.search("Credential=" + query["X-Amz-Credential"][0])
    region, service = (match.group(1), match.group(2)) if match else ("", "")
    target = lowered.get("x-amz-target", "")
    if target:
        return service, target.rsplit(".", 1)[-1], region
    action = query.get("Action")
    if not action and "x-www-form-urlencoded" in lowered.get("content-type", ""):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
    if action:
        return service, action[0], region
    return service, f"{method} {urlsplit(path).path}", region


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # hundreds of concurrent handlers (a FleetGroup shard); the default backlog is 5
    strict: Proxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        body = self._read_body()
        headers = dict(self.headers.items())
        path, account = self.path, ""
        found = _ACCOUNT_PATH.match(path)
        if found is not None:
            account, path = found.group(1), path[found.end():] or "/"
            path = path if path.startswith("/") else "/" + path
        service, operation, region = _identify(self.command, path, headers, body)
        strict = cast(_Server, self.server).strict
        try:
            if path.startswith(CONTROL):
                response = _control(strict, self.command, path, body)
            else:
                response = strict.handle(_Request(self.command, path, headers, body, service, operation, region,
                                                  account))
        except OSError as exc:  # moto went away: answer like an unreachable endpoint would
            response = _error(AWSRefusal("ServiceUnavailable", f"StrictAWS could not reach moto: {exc}", 503))
        self.send_response(response.status)
        for key, value in response.headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines would only be noise in test output."""
