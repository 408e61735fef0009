"""The Node.js host of aws-cdk-lib's Provider framework: one long-lived ``node`` process (``framework_server.mjs``)
running the framework's functions, and the local endpoint answering what they call (Lambda Invoke, Step Functions
StartExecution, the response PUT). :mod:`certfleet.testing.framework` drives it."""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import re
import shutil
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

__all__ = ["FrameworkError", "FrameworkFunction", "FrameworkHost", "FrameworkResponse", "Invoke"]

Invoke = Callable[[str, dict[str, Any]], Any]
"""(user function ARN, payload) → what the handler returned; an exception is the function's error."""

_DRIVER = Path(__file__).with_name("framework_server.mjs")
_SDK = ("@aws-sdk/client-lambda", "@aws-sdk/client-sfn")
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
_LOG = logging.getLogger("certfleet.framework")
"""The framework's own log lines (it logs whole requests), for the tests' leak scan."""
_LOG.setLevel(logging.INFO)
_RESPONSE_HOST = re.compile(r"^cloudformation-custom-resource-response-[a-z0-9-]+\.s3(\.[a-z0-9-]+)?\.amazonaws\.com$")


class FrameworkError(Exception):
    """The framework could not be run, or ended without a response to CloudFormation; the message says why."""


class FrameworkResponse(dict[str, Any]):
    """The body the framework PUT to the ResponseURL (Status, Reason, StackId, RequestId, PhysicalResourceId,
    LogicalResourceId, NoEcho, Data), with ``raw``: its bytes as sent, which CloudFormation measures."""

    raw: bytes = b""


@dataclass(frozen=True)
class FrameworkFunction:
    """One of the framework's Lambda functions: its asset folder, entry point and environment."""

    asset_dir: Path
    entry: str
    environment: dict[str, str]


# --------------------------------------------------------------------------------------------- the local endpoint
@dataclass
class _Run:
    """What one :meth:`ProviderFramework.run` expects and collects at the local endpoint."""

    token: str
    invoke: Invoke
    waiter_arn: str
    responses: list[bytes] = field(default_factory=list)
    executions: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


class _Endpoint(ThreadingHTTPServer):
    daemon_threads = True
    current: _Run | None = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, content_type: str) -> None:
        run = cast(_Endpoint, self.server).current
        if run is not None:
            run.refused.append(f"{self.command} {self.path}: {code}")
        self._answer(status, json.dumps({"__type": code, "message": message}).encode(),
                     {"Content-Type": content_type, "x-amzn-ErrorType": code})

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        run = cast(_Endpoint, self.server).current
        host = (self.headers.get("Host") or "").split(":")[0]
        if run is None or not _RESPONSE_HOST.match(host) or f"rehearsal={run.token}" not in self.path:
            self._answer(403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                         {"Content-Type": "application/xml"})
            return
        run.responses.append(body)
        self._answer(200, b"", {"ETag": f'"{uuid.uuid4().hex}"'})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        run = cast(_Endpoint, self.server).current
        found = _INVOKE_PATH.match(urlsplit(self.path).path)
        target = self.headers.get("X-Amz-Target", "")
        if found is not None:
            self._invoke(run, unquote(found.group(1)), body)
        elif run is None:
            self._error(400, "ServiceException", "no custom resource is being run", "application/json")
        elif target == "AWSStepFunctions.StartExecution":
            self._start_execution(run, body)
        else:
            self._error(400, "UnknownOperationException", f"not answered locally: {target or self.path}",
                        "application/x-amz-json-1.0")

    def do_GET(self) -> None:
        """Lambda GetFunction, which the framework calls (waitUntilFunctionActiveV2) only after an Invoke failed: the
        function is active, so that it invokes again at once and fails as Lambda would have."""
        found = re.match(r"^/2015-03-31/functions/([^/]+)$", urlsplit(self.path).path)
        if found is None or cast(_Endpoint, self.server).current is None:
            self._error(404, "ResourceNotFoundException", f"Function not found: {self.path}", "application/json")
            return
        name = unquote(found.group(1))
        configuration = {"FunctionName": name.split(":function:")[-1], "FunctionArn": name, "State": "Active",
                         "LastUpdateStatus": "Successful"}
        self._answer(200, json.dumps({"Configuration": configuration}).encode(), {"Content-Type": "application/json"})

    def _invoke(self, run: _Run | None, function: str, body: bytes) -> None:
        """Lambda Invoke (RequestResponse) of a Python handler, answered as Lambda's Python runtime answers; always a
        200, with X-Amz-Function-Error when the function failed (an HTTP error would make the framework wait up to
        5 minutes for the function to become active)."""
        if self.headers.get("X-Amz-Invocation-Type", "RequestResponse") != "RequestResponse":
            self._error(400, "InvalidParameterValueException", "only RequestResponse is answered locally",
                        "application/json")
            return
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        try:
            if run is None:
                raise RuntimeError("no custom resource is being run by this framework host")
            result = run.invoke(function, json.loads(body or b"{}"))
        except Exception as exc:  # Lambda's Python runtime: errorMessage is str(exc), the type's name, the trace
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__, "requestId": str(uuid.uuid4()),
                     "stackTrace": traceback.format_tb(exc.__traceback__)}
            self._answer(200, json.dumps(error).encode(), {**headers, "X-Amz-Function-Error": "Unhandled"})
            return
        try:
            payload = json.dumps(result).encode()
        except (TypeError, ValueError) as exc:
            error = {"errorMessage": f"Unable to marshal response: {exc}", "errorType": "Runtime.MarshalError",
                     "requestId": str(uuid.uuid4()), "stackTrace": []}
            self._answer(200, json.dumps(error).encode(), {**headers, "X-Amz-Function-Error": "Unhandled"})
            return
        self._answer(200, payload, headers)

    def _start_execution(self, run: _Run, body: bytes) -> None:
        request = json.loads(body or b"{}")
        content = "application/x-amz-json-1.0"
        if not run.waiter_arn or request.get("stateMachineArn") != run.waiter_arn:
            self._error(400, "StateMachineDoesNotExist",
                        f"State Machine Does Not Exist: '{request.get('stateMachineArn')}'", content)
            return
        run.executions.append(str(request.get("input") or "{}"))
        name = str(request.get("name") or uuid.uuid4())
        arn = run.waiter_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        self._answer(200, json.dumps({"executionArn": arn, "startDate": time.time()}).encode(),
                     {"Content-Type": content})

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines would only be noise in test output."""


# ------------------------------------------------------------------------------------------------ the Node host
@dataclass(frozen=True)
class _Answer:
    ok: bool
    result: Any
    error: dict[str, Any]
    logs: list[str]


class FrameworkHost:
    """One Node.js process running the framework's code, and the local endpoint answering what it calls.

    Calls are one at a time (a lock); each (asset, environment) is its own module instance, as each framework
    function is its own Lambda sandbox. ``node_modules``: where ``@aws-sdk/client-lambda`` and ``client-sfn`` are
    (default: ``CERTFLEET_NODE_MODULES``, else the nearest ``node_modules`` above the working folder or this file).
    """

    _shared: FrameworkHost | None = None

    @classmethod
    def shared(cls) -> FrameworkHost:
        """One host per Python process, started on first use and stopped at exit."""
        if cls._shared is None or not cls._shared.running:
            cls._shared = cls().start()
        return cls._shared

    def __init__(self, *, node_modules: str | os.PathLike[str] | None = None, call_timeout: float = 900.0) -> None:
        self.node_modules = Path(node_modules) if node_modules else None
        self.call_timeout = call_timeout
        self.logs: list[str] = []
        """Every line the framework logged (it logs whole requests: the leak scan reads these)."""
        self.startup_seconds = 0.0
        self._lock = threading.RLock()
        self._endpoint: _Endpoint | None = None
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._ids = 0

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def url(self) -> str:
        if self._endpoint is None:
            raise FrameworkError("the framework host is not running: call start()")
        return f"http://127.0.0.1:{self._endpoint.server_address[1]}"

    def start(self) -> FrameworkHost:
        """Start the local endpoint and the Node process; wait until the driver is ready."""
        if self.running:
            return self
        node = shutil.which("node")
        if node is None:
            raise FrameworkError("the CDK Provider framework runs on Node.js: install node (20 or later)")
        modules = self.node_modules or _find_node_modules()
        started = time.monotonic()
        endpoint = _Endpoint(("127.0.0.1", 0), _Handler)
        threading.Thread(target=endpoint.serve_forever, name="ProviderFramework endpoint", daemon=True).start()
        self._endpoint = endpoint
        url = self.url
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NODE_PATH": str(modules), "HOME": os.devnull,
            "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "certfleet-framework",
            "AWS_SECRET_ACCESS_KEY": "certfleet-framework", "AWS_ENDPOINT_URL": url, "AWS_ENDPOINT_URL_LAMBDA": url,
            "AWS_ENDPOINT_URL_SFN": url, "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "CERTFLEET_FW_RESPONSE_PORT": str(endpoint.server_address[1]),
        }
        self._process = subprocess.Popen(
            [node, str(_DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", env=env, bufsize=1,
        )
        threading.Thread(target=self._read, args=(self._process.stdout, self._lines), daemon=True).start()
        threading.Thread(target=self._drain, args=(self._process.stderr,), daemon=True).start()
        ready = self._next(30.0)
        if ready is None or not json.loads(ready).get("ready"):
            self.stop()
            raise FrameworkError(f"the framework driver did not start: {''.join(self._stderr)[-2000:]}")
        self.startup_seconds = time.monotonic() - started
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """End the Node process and the endpoint."""
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            endpoint.shutdown()
            endpoint.server_close()
        atexit.unregister(self.stop)

    def __enter__(self) -> FrameworkHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, function: FrameworkFunction, event: Any) -> _Answer:
        """Run one framework entry point with ``event``, as Lambda's Node.js runtime would."""
        with self._lock:
            if not self.running or self._process is None or self._process.stdin is None:
                raise FrameworkError("the framework host is not running: call start()")
            self._ids += 1
            request = {"id": self._ids, "asset": str(function.asset_dir.resolve()), "entry": function.entry,
                       "env": function.environment, "event": event}
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            line = self._next(self.call_timeout)
            if line is None:
                raise FrameworkError(f"framework {function.entry} gave no answer within {self.call_timeout:.0f} s: "
                                     f"{''.join(self._stderr)[-2000:]}")
            answer = json.loads(line)
            for logged in answer.get("logs") or []:
                self.logs.append(logged)
                _LOG.info("%s", logged)
            return _Answer(bool(answer.get("ok")), answer.get("result"), answer.get("error") or {},
                           list(answer.get("logs") or []))

    @contextmanager
    def attending(self, run: _Run) -> Iterator[None]:
        """The local endpoint answers for ``run`` (and no other run uses the host) until the block ends."""
        with self._lock:
            if self._endpoint is None:
                raise FrameworkError("the framework host is not running: call start()")
            self._endpoint.current = run
            try:
                yield
            finally:
                self._endpoint.current = None

    def _next(self, timeout: float) -> str | None:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            return None

    @staticmethod
    def _read(stream: Any, into: queue.Queue[str | None]) -> None:
        for line in stream:
            into.put(line)
        into.put(None)

    def _drain(self, stream: Any) -> None:
        for line in stream:
            self._stderr.append(line)
            del self._stderr[:-200]


def _find_node_modules() -> Path:
    configured = os.environ.get("CERTFLEET_NODE_MODULES")
    starts = [Path(configured)] if configured else []
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        starts += [folder / "node_modules" for folder in (start, *start.parents)]
    for candidate in starts:
        if all((candidate / package / "package.json").is_file() for package in _SDK):
            return candidate
    raise FrameworkError(
        f"the CDK Provider framework needs the npm packages {' and '.join(_SDK)} (as Lambda's Node.js runtime "
        "provides them): run `npm ci` in the certfleet checkout, or set CERTFLEET_NODE_MODULES to a node_modules "
        "folder that has them",
    )


# ------------------------------------------------------------------------------------------- the framework itself
