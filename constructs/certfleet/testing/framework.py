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

import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = [
    "FrameworkError", "FrameworkFunction", "FrameworkHost", "FrameworkResponse", "Invoke", "ProviderFramework",
    "ProviderFunctions", "StateMachine", "cloudformation_outcome", "find_provider",
]

from certfleet.testing.assembly import code_folder
from certfleet.testing.framework_host import (
    FrameworkError,
    FrameworkFunction,
    FrameworkHost,
    FrameworkResponse,
    Invoke,
    _Answer,
    _Run,
)
from certfleet.testing.resolver import Intrinsics

MAX_RESPONSE_BYTES = 4_096
MAX_PHYSICAL_ID_BYTES = 1_024
ON_EVENT_ARN = "USER_ON_EVENT_FUNCTION_ARN"
IS_COMPLETE_ARN = "USER_IS_COMPLETE_FUNCTION_ARN"
WAITER_ARN = "WAITER_STATE_MACHINE_ARN"
_FRAMEWORK_ENV = (ON_EVENT_ARN, IS_COMPLETE_ARN, WAITER_ARN)


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
    code: dict[str, Path | None] = field(default_factory=dict)
    """User function ARN → its code folder in the assembly (None: not found there)."""

    def framework(self, *, time_scale: float = 1.0, poll_seconds: float | None = None,
                  host: FrameworkHost | None = None) -> ProviderFramework:
        """A :class:`ProviderFramework` for this provider; ``poll_seconds`` (instead of ``time_scale``): the waiter's
        first retry interval lasts this long, every wait scaled alike."""
        if poll_seconds is not None and self.waiter is not None and self.waiter.interval:
            time_scale = poll_seconds / self.waiter.interval
        return ProviderFramework(self.on_event.asset_dir, self.on_event.environment, waiter=self.waiter,
                                 time_scale=time_scale, host=host)


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
    code: dict[str, Path | None] = {}
    for name in (ON_EVENT_ARN, IS_COMPLETE_ARN):
        arn = on_event.environment.get(name)
        if arn:
            user = resources[resolver.function_id(arn)]
            handlers[arn] = str(user.get("Properties", {}).get("Handler", ""))
            code[arn] = code_folder(folder, user, handlers[arn].rpartition(".")[0] + ".py")
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
    return ProviderFunctions(logical_id, on_event, handlers, waiter, code)


def _framework_function(folder: Path, resolver: _TemplateValues, logical_id: str) -> FrameworkFunction:
    props = resolver.resources[logical_id].get("Properties", {})
    module, _, entry = str(props.get("Handler", "")).partition(".")
    if module != "framework" or not entry:
        raise FrameworkError(f"{logical_id} is not a Provider framework function (Handler {props.get('Handler')!r})")
    variables = (props.get("Environment") or {}).get("Variables") or {}
    environment = {k: str(resolver.resolve(v)) for k, v in variables.items()}
    return FrameworkFunction(_asset_dir(folder, resolver.resources[logical_id]), entry, environment)


def _asset_dir(folder: Path, resource: dict[str, Any]) -> Path:
    """The framework function's code folder in the assembly (its aws:asset:path metadata, else its S3Key's asset)."""
    found = code_folder(folder, resource, "framework.js")
    if found is None:
        key = str(((resource.get("Properties") or {}).get("Code") or {}).get("S3Key", ""))
        raise FrameworkError(f"the Provider framework's code ({key or 'no S3Key'}) is not in the assembly {folder}: "
                             "synthesize the app again")
    return found


class _TemplateValues(Intrinsics):
    """The few CloudFormation values a Provider's environment and waiter definition use, as ARNs; any other one-key
    map is an error."""

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

    def _Ref(self, name: str) -> Any:
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": self.account, "AWS::Partition": "aws",
                  "AWS::URLSuffix": "amazonaws.com"}
        return pseudo[name] if name in pseudo else self._arn(str(name))

    def _fn_GetAtt(self, arg: Any) -> Any:
        target = arg if isinstance(arg, list) else str(arg).split(".", 1)
        return self._arn(str(target[0])) if target[1] == "Arn" else self._other("Fn::GetAtt", arg)

    def _other(self, name: str, arg: Any) -> Any:
        raise FrameworkError(f"cannot resolve {json.dumps({name: arg})[:200]} in a Provider's definition")

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
