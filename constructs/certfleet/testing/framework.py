"""aws-cdk-lib's own Provider framework, run locally: custom resources go through the framework code AWS runs.

The framework's Node.js functions (``framework.onEvent``, ``framework.isComplete``, ``framework.onTimeout`` of the
synthesized asset) run in one long-lived Node process (``framework_server.mjs``). What they call is answered here:

- Lambda ``Invoke`` of the user handler (``AWS_ENDPOINT_URL_LAMBDA``): a Python callback ``invoke(arn, payload)``
  returns the handler's result; an exception it raises is the function error Lambda's Python runtime reports;
- Step Functions ``StartExecution`` (``AWS_ENDPOINT_URL_SFN``): recorded, then the waiter state machine, as
  synthesized, is run here: each Task calls its framework function, Retry (IntervalSeconds, BackoffRate,
  MaxAttempts, MaxDelaySeconds) and Catch as Step Functions applies them; ``time_scale`` shrinks the waits only;
- the response PUT to the presigned ``ResponseURL``: captured by the same local endpoint, and returned as sent.

:func:`cloudformation_outcome` then judges that body as CloudFormation does (4,096 bytes, PhysicalResourceId size).
Nothing reaches the network. Needs ``node`` and the npm packages ``@aws-sdk/client-lambda`` and
``@aws-sdk/client-sfn`` (certfleet's package.json devDependencies). No aws_cdk, no boto3.
"""

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
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    "FrameworkError", "FrameworkFunction", "FrameworkHost", "FrameworkResponse", "Invoke", "ProviderFramework",
    "ProviderFunctions", "StateMachine", "cloudformation_outcome", "find_provider",
]

Invoke = Callable[[str, dict[str, Any]], Any]
"""(user function ARN, payload) → what the handler returned; an exception is the function's error."""

MAX_RESPONSE_BYTES = 4_096
MAX_PHYSICAL_ID_BYTES = 1_024
ON_EVENT_ARN = "USER_ON_EVENT_FUNCTION_ARN"
IS_COMPLETE_ARN = "USER_IS_COMPLETE_FUNCTION_ARN"
WAITER_ARN = "WAITER_STATE_MACHINE_ARN"
_FRAMEWORK_ENV = (ON_EVENT_ARN, IS_COMPLETE_ARN, WAITER_ARN)
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


def cloudformation_outcome(response: FrameworkResponse) -> tuple[str, str]:
    """(Status, Reason) as CloudFormation records the resource: the framework's, unless the body breaks
    CloudFormation's limits (over 4,096 bytes; a PhysicalResourceId outside 1..1,024 bytes)."""
    size = len(response.raw)
    if size > MAX_RESPONSE_BYTES:
        return "FAILED", f"Response object is too long ({size} bytes, CloudFormation takes {MAX_RESPONSE_BYTES})."
    physical = str(response.get("PhysicalResourceId") or "").encode()
    if not 1 <= len(physical) <= MAX_PHYSICAL_ID_BYTES:
        return "FAILED", (f"the PhysicalResourceId is {len(physical)} bytes; CloudFormation takes 1 to "
                          f"{MAX_PHYSICAL_ID_BYTES}")
    return str(response.get("Status", "FAILED")), str(response.get("Reason", ""))


@dataclass(frozen=True)
class FrameworkFunction:
    """One of the framework's Lambda functions: its asset folder, entry point and environment."""

    asset_dir: Path
    entry: str
    environment: dict[str, str]


@dataclass(frozen=True)
class StateMachine:
    """The waiter as synthesized: its ARN, definition, and the framework function behind each Task's Resource."""

    arn: str
    definition: dict[str, Any]
    tasks: dict[str, FrameworkFunction]

    @property
    def interval(self) -> float:
        """The first state's first Retry IntervalSeconds (the Provider's queryInterval); 0 without one."""
        start: dict[str, Any] = self.definition.get("States", {}).get(self.definition.get("StartAt"), {})
        retry: list[dict[str, Any]] = start.get("Retry") or [{}]
        return float(retry[0].get("IntervalSeconds", 0))


@dataclass(frozen=True)
class ProviderFunctions:
    """What a custom resource's ServiceToken leads to in a synthesized template."""

    logical_id: str
    """The framework onEvent function's logical id."""
    on_event: FrameworkFunction
    handlers: dict[str, str]
    """User function ARN (as the framework's environment names it) → its Handler (``module.function``)."""
    waiter: StateMachine | None

    def framework(self, *, time_scale: float = 1.0, poll_seconds: float | None = None,
                  host: FrameworkHost | None = None) -> ProviderFramework:
        """A :class:`ProviderFramework` for this provider; ``poll_seconds`` (instead of ``time_scale``): the waiter's
        first retry interval lasts this long, every wait scaled alike."""
        if poll_seconds is not None and self.waiter is not None and self.waiter.interval:
            time_scale = poll_seconds / self.waiter.interval
        return ProviderFramework(self.on_event.asset_dir, self.on_event.environment, waiter=self.waiter,
                                 time_scale=time_scale, host=host)


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
class ProviderFramework:
    """A CDK Provider's framework, run locally: ``run(event, invoke)`` plays one CloudFormation request.

    ``environment``: the framework onEvent function's (USER_ON_EVENT_FUNCTION_ARN, and with a waiter
    USER_IS_COMPLETE_FUNCTION_ARN and WAITER_STATE_MACHINE_ARN). ``waiter``: the synthesized state machine that
    StartExecution starts (None: StartExecution fails as for a state machine that does not exist). ``time_scale``:
    multiplies the waiter's waits (tests: 0.001). ``host``: default :meth:`FrameworkHost.shared`.
    """

    def __init__(
        self, asset_dir: str | os.PathLike[str], environment: dict[str, str], *, waiter: StateMachine | None = None,
        time_scale: float = 1.0, host: FrameworkHost | None = None,
    ) -> None:
        self.asset_dir = Path(asset_dir)
        if not (self.asset_dir / "framework.js").is_file():
            raise FrameworkError(f"{self.asset_dir} holds no framework.js: not the Provider framework's asset")
        self.environment = _with_region(dict(environment))
        self.waiter = waiter
        self.time_scale = time_scale
        self._host = host
        self.executions = 0
        """How many waiter executions ran (StartExecution calls answered)."""
        self.task_calls: list[str] = []
        """Every waiter Task run, in order (``isComplete``, ``onTimeout``), over this object's life."""

    @property
    def host(self) -> FrameworkHost:
        if self._host is None:
            self._host = FrameworkHost.shared()
        return self._host

    def run(self, event: dict[str, Any], invoke: Invoke) -> FrameworkResponse:
        """Send ``event`` (a CloudFormation request; its ResponseURL is replaced) through the framework: onEvent,
        then the waiter if onEvent started it; return the body the framework PUT to CloudFormation."""
        host = self.host
        run = _Run(token=uuid.uuid4().hex, invoke=invoke, waiter_arn=self.waiter.arn if self.waiter else "")
        request = {**event, "ResponseURL": _response_url(event, run.token)}
        with host.attending(run):
            answer = host.call(FrameworkFunction(self.asset_dir, "onEvent", self.environment), request)
            failure = "" if answer.ok else f"framework onEvent failed: {answer.error.get('errorMessage')}"
            for execution in list(run.executions):
                self.executions += 1
                self._run_waiter(host, json.loads(execution))
        if not run.responses:
            raise FrameworkError(
                f"the Provider framework sent CloudFormation no response for {event.get('LogicalResourceId')} "
                f"({event.get('RequestType')}); CloudFormation would fail it after its timeout. "
                f"{failure or 'The waiter ended without a response.'} Refused locally: {run.refused or 'nothing'}",
            )
        raw = run.responses[0]
        response = FrameworkResponse(json.loads(raw))
        response.raw = raw
        return response

    def _run_waiter(self, host: FrameworkHost, data: Any) -> None:
        """Step Functions, as far as the Provider's waiter needs it: Task states with Retry and Catch."""
        if self.waiter is None:
            raise FrameworkError("StartExecution was answered without a waiter")
        states: dict[str, Any] = self.waiter.definition["States"]
        name = str(self.waiter.definition["StartAt"])
        while True:
            state = states[name]
            if state.get("Type") != "Task" or state.get("Resource") not in self.waiter.tasks:
                raise FrameworkError(f"waiter state {name!r} is not a Task of a framework function: {state}")
            answer = self._task(host, state, self.waiter.tasks[state["Resource"]], data)
            if answer.ok:
                if state.get("End"):
                    return
                data, name = answer.result, str(state["Next"])
                continue
            error_type = str(answer.error.get("errorType") or "Error")
            _, catcher = _matching(state.get("Catch") or [], error_type)
            if catcher is None:
                return  # the execution fails; the framework sent nothing
            data, name = {"Error": error_type, "Cause": json.dumps(answer.error)}, str(catcher["Next"])

    def _task(self, host: FrameworkHost, state: dict[str, Any], function: FrameworkFunction, data: Any) -> _Answer:
        """One Task state: call its function, retried as its Retry rules say; the last answer."""
        retries: dict[int, int] = {}
        while True:
            self.task_calls.append(function.entry)
            answer = host.call(function, data)
            if answer.ok:
                return answer
            index, retrier = _matching(state.get("Retry") or [], str(answer.error.get("errorType") or "Error"))
            if retrier is None or retries.get(index, 0) >= int(retrier.get("MaxAttempts", 3)):
                return answer
            retries[index] = retries.get(index, 0) + 1
            backoff = float(retrier.get("BackoffRate", 2.0)) ** (retries[index] - 1)
            delay = float(retrier.get("IntervalSeconds", 1)) * backoff
            if "MaxDelaySeconds" in retrier:
                delay = min(delay, float(retrier["MaxDelaySeconds"]))
            time.sleep(delay * self.time_scale)


def _matching(rules: list[dict[str, Any]], error_type: str) -> tuple[int, dict[str, Any] | None]:
    """The first Retry/Catch rule whose ErrorEquals names ``error_type`` (or States.ALL)."""
    for index, rule in enumerate(rules):
        names = rule.get("ErrorEquals") or []
        if error_type in names or "States.ALL" in names:
            return index, rule
    return -1, None


def _with_region(environment: dict[str, str]) -> dict[str, str]:
    """The function's environment plus AWS_REGION, as Lambda sets it (the region of its own ARN)."""
    arn = environment.get(ON_EVENT_ARN) or environment.get(IS_COMPLETE_ARN) or ""
    parts = arn.split(":")
    if "AWS_REGION" not in environment and len(parts) > 3 and parts[3]:
        environment["AWS_REGION"] = environment["AWS_DEFAULT_REGION"] = parts[3]
    return environment


def _response_url(event: dict[str, Any], token: str) -> str:
    """A presigned S3 URL as CloudFormation sends it (its host redirected to the local endpoint by the driver)."""
    stack_id = str(event.get("StackId", ""))
    region = stack_id.split(":")[3] if stack_id.count(":") >= 3 else "us-east-1"
    key = quote(f"{stack_id}|{event.get('LogicalResourceId', '')}|{event.get('RequestId', '')}", safe="")
    return (f"https://cloudformation-custom-resource-response-{region.replace('-', '')}.s3.amazonaws.com/{key}"
            f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=7200&rehearsal={token}")


# ---------------------------------------------------------------------------------- from a synthesized template
def find_provider(
    template: dict[str, Any], service_token: Any, *, assembly_dir: str | os.PathLike[str], account: str, region: str,
) -> ProviderFunctions:
    """The Provider framework behind ``service_token`` (as written in ``template``: ``Fn::GetAtt [id, Arn]``, or a
    Lambda ARN whose function name is a FunctionName or logical id of the template): its onEvent function, asset
    folder and environment, the user handlers, and the waiter state machine. ARNs are made for ``account`` and
    ``region``, with each function's FunctionName, or its logical id when it has none."""
    resources: dict[str, Any] = template.get("Resources", {})
    folder = Path(assembly_dir)
    resolver = _TemplateValues(resources, account, region)
    logical_id = resolver.function_id(service_token)
    on_event = _framework_function(folder, resolver, logical_id)
    if on_event.entry != "onEvent":
        raise FrameworkError(f"{logical_id} runs {on_event.entry}, not the Provider framework's onEvent")
    handlers: dict[str, str] = {}
    for name in (ON_EVENT_ARN, IS_COMPLETE_ARN):
        arn = on_event.environment.get(name)
        if arn:
            user = resources[resolver.function_id(arn)]
            handlers[arn] = str(user.get("Properties", {}).get("Handler", ""))
    waiter = None
    machine_arn = on_event.environment.get(WAITER_ARN)
    if machine_arn:
        machine_id = resolver.logical_ids[machine_arn]
        props = resources[machine_id].get("Properties", {})
        definition = json.loads(str(resolver.resolve(props.get("DefinitionString") or props.get("Definition"))))
        tasks = {}
        for state in definition.get("States", {}).values():
            resource = state.get("Resource")
            if state.get("Type") == "Task" and resource:
                tasks[resource] = _framework_function(folder, resolver, resolver.function_id(resource))
        waiter = StateMachine(machine_arn, definition, tasks)
    return ProviderFunctions(logical_id, on_event, handlers, waiter)


def _framework_function(folder: Path, resolver: _TemplateValues, logical_id: str) -> FrameworkFunction:
    props = resolver.resources[logical_id].get("Properties", {})
    module, _, entry = str(props.get("Handler", "")).partition(".")
    if module != "framework" or not entry:
        raise FrameworkError(f"{logical_id} is not a Provider framework function (Handler {props.get('Handler')!r})")
    variables = (props.get("Environment") or {}).get("Variables") or {}
    environment = {k: str(resolver.resolve(v)) for k, v in variables.items()}
    return FrameworkFunction(_asset_dir(folder, resolver.resources[logical_id]), entry, environment)


def _asset_dir(folder: Path, resource: dict[str, Any]) -> Path:
    """The function's code folder in the assembly: its aws:asset:path metadata, else the asset of its S3Key."""
    path = str((resource.get("Metadata") or {}).get("aws:asset:path") or "")
    if path and (folder / path / "framework.js").is_file():
        return folder / path
    key = str(((resource.get("Properties") or {}).get("Code") or {}).get("S3Key", ""))
    digest = key.rsplit("/", 1)[-1].removesuffix(".zip")
    for manifest in folder.glob("*.assets.json"):
        for asset_id, asset in json.loads(manifest.read_text()).get("files", {}).items():
            objects = {str(d.get("objectKey", "")) for d in asset.get("destinations", {}).values()}
            if asset_id == digest or key in objects:
                candidate = folder / str(asset["source"]["path"])
                if (candidate / "framework.js").is_file():
                    return candidate
    raise FrameworkError(f"the Provider framework's code ({key or 'no S3Key'}) is not in the assembly {folder}: "
                         "synthesize the app again")


class _TemplateValues:
    """The few CloudFormation values a Provider's environment and waiter definition use, as ARNs."""

    def __init__(self, resources: dict[str, Any], account: str, region: str) -> None:
        self.resources = resources
        self.account = account
        self.region = region
        self.logical_ids: dict[str, str] = {}
        self._by_name: dict[str, str] = {}
        for logical_id, resource in resources.items():
            name = (resource.get("Properties") or {}).get("FunctionName")
            self._by_name[str(name) if isinstance(name, str) else logical_id] = logical_id

    def function_id(self, token: Any) -> str:
        """The logical id of the Lambda function ``token`` names."""
        if isinstance(token, dict) and "Fn::GetAtt" in token:
            target = token["Fn::GetAtt"]
            logical_id = str(target[0] if isinstance(target, list) else str(target).split(".", 1)[0])
        elif isinstance(token, str) and token in self.logical_ids:
            logical_id = self.logical_ids[token]
        elif isinstance(token, str) and ":function:" in token:
            logical_id = self._by_name.get(token.split(":function:", 1)[1].split(":", 1)[0], "")
        else:
            logical_id = ""
        if self.resources.get(logical_id, {}).get("Type") != "AWS::Lambda::Function":
            raise FrameworkError(f"{json.dumps(token, default=str)[:200]} names no Lambda function of the template")
        return logical_id

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (name, arg), = value.items()
            if name == "Fn::Join":
                separator, parts = arg
                return str(separator).join(str(self.resolve(p)) for p in parts)
            if name == "Fn::GetAtt":
                target = arg if isinstance(arg, list) else str(arg).split(".", 1)
                if target[1] == "Arn":
                    return self._arn(str(target[0]))
            if name == "Ref":
                pseudo = {"AWS::Region": self.region, "AWS::AccountId": self.account, "AWS::Partition": "aws",
                          "AWS::URLSuffix": "amazonaws.com"}
                return pseudo[arg] if arg in pseudo else self._arn(str(arg))
            raise FrameworkError(f"cannot resolve {json.dumps(value)[:200]} in a Provider's definition")
        return {k: self.resolve(v) for k, v in value.items()}

    def _arn(self, logical_id: str) -> str:
        resource = self.resources.get(logical_id) or {}
        props = resource.get("Properties") or {}
        kind = resource.get("Type")
        if kind == "AWS::Lambda::Function":
            name = props.get("FunctionName")
            arn = (f"arn:aws:lambda:{self.region}:{self.account}:function:"
                   f"{name if isinstance(name, str) else logical_id}")
        elif kind == "AWS::StepFunctions::StateMachine":
            name = props.get("StateMachineName")
            arn = (f"arn:aws:states:{self.region}:{self.account}:stateMachine:"
                   f"{name if isinstance(name, str) else logical_id}")
        else:
            raise FrameworkError(f"{logical_id} ({kind}) is not a function or state machine of a Provider")
        self.logical_ids[arn] = logical_id
        return arn


def one_line_reason(reason: str) -> str:
    """The framework's Reason as one line: without its JavaScript stack frames and its log group pointer."""
    text = reason.split("\n    at ", 1)[0]
    text = re.sub(r"\n*Logs: /aws/lambda/\S+\n*", " ", text)
    return " ".join(text.removeprefix("Error: ").split())
