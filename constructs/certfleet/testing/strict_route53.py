"""StrictAWS's Route 53 rules, as a mixin of StrictAWS: what Route 53 refuses and moto 5 accepts, and change status
as Route 53 reports it.

Refused (``InvalidChangeBatch``, Route 53's words): a TXT value that is not quoted strings, or with a string over 255
characters; a record set of more than 400 values; a batch over 1,000 ``ResourceRecord`` elements or 32,000 characters
of values (an ``UPSERT`` counts twice); a ``CREATE`` of a record set that exists; a ``DELETE`` of a record set that
does not exist or whose TTL or values differ from the current ones (changes apply in order, so deleting one set twice
in a batch is refused too). ``GetChange`` of an id Route 53 never returned answers ``NoSuchChange``.
Status: moto reports every change INSYNC at once and reuses one change id; here each change gets its own id, is
PENDING when submitted and for its first ``route53_pending_reads`` GetChange reads, then INSYNC.
Observers (``observe_route53``) hear of each change when submitted and when first reported INSYNC (the tests' DNS
bridge serves records then). Errors are answered in Route 53's XML shape, which botocore parses.
"""

from __future__ import annotations

import re
import secrets
import string
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from certfleet.testing.strict_checks import AWSRefusal
from certfleet.testing.strict_http import _error, _Request, _Response

__all__ = ["ROUTE53_RULES", "RecordChange", "Route53Change", "Route53Rules", "route53_operation", "route53_params",
           "txt_strings"]

NS = "{https://route53.amazonaws.com/doc/2013-04-01/}"
MAX_TXT_STRING = 255
MAX_VALUES_PER_RECORD = 400
MAX_BATCH_RECORDS = 1000
MAX_BATCH_CHARACTERS = 32000
Event = Literal["submitted", "insync"]


@dataclass(frozen=True)
class RecordChange:
    """One change of a batch: action, record name (lower case, trailing dot), type, TTL and values as sent."""

    action: str
    name: str
    type: str
    ttl: int | None
    values: tuple[str, ...]


@dataclass(frozen=True)
class Route53Change:
    """A change batch Route 53 accepted: its id (``/change/C...``), hosted zone id, account and changes."""

    id: str
    zone_id: str
    account: str
    changes: tuple[RecordChange, ...]


Observer = Callable[[Event, Route53Change], None]


@dataclass
class _Status:
    change: Route53Change
    reads: int = 0
    insync: bool = False


@dataclass
class _Route53State:
    changes: dict[str, _Status] = field(default_factory=dict)  # bare id (C...) -> status
    known: set[str] = field(default_factory=set)  # ids of other operations' changes (hosted zones): INSYNC
    observers: list[Observer] = field(default_factory=list)


_PATHS = [
    ("POST", re.compile(r"/2013-04-01/hostedzone/[^/]+/rrset/?"), "ChangeResourceRecordSets"),
    ("GET", re.compile(r"/2013-04-01/hostedzone/[^/]+/rrset/?"), "ListResourceRecordSets"),
    ("GET", re.compile(r"/2013-04-01/change/[^/]+"), "GetChange"),
    ("POST", re.compile(r"/2013-04-01/hostedzone/?"), "CreateHostedZone"),
    ("GET", re.compile(r"/2013-04-01/hostedzone/?"), "ListHostedZones"),
    ("GET", re.compile(r"/2013-04-01/hostedzonesbyname/?"), "ListHostedZonesByName"),
    ("GET", re.compile(r"/2013-04-01/hostedzone/[^/]+"), "GetHostedZone"),
    ("DELETE", re.compile(r"/2013-04-01/hostedzone/[^/]+"), "DeleteHostedZone"),
]


def route53_operation(method: str, path: str) -> str | None:
    """The Route 53 operation a REST request calls (``ChangeResourceRecordSets``...), or None when not listed."""
    bare = urlsplit(path).path
    for verb, pattern, operation in _PATHS:
        if method == verb and pattern.fullmatch(bare):
            return operation
    return None


def route53_params(request: _Request) -> dict[str, Any]:
    """A Route 53 REST request's parameters as boto3 names them (what an IAM check needs), parsed from path and XML:
    ``HostedZoneId``; ``Id`` of GetChange; ``ChangeBatch.Changes`` (Action, Name lower case without the final dot,
    Type) of ChangeResourceRecordSets."""
    parts = urlsplit(request.path).path.rstrip("/").split("/")
    params: dict[str, Any] = {}
    if "hostedzone" in parts and parts.index("hostedzone") + 1 < len(parts):
        params["HostedZoneId"] = parts[parts.index("hostedzone") + 1]
    if request.operation == "GetChange":
        params["Id"] = parts[-1]
    if request.operation == "ChangeResourceRecordSets":
        try:
            changes = _parse_changes(request.body)
        except AWSRefusal:
            changes = []
        params["ChangeBatch"] = {"Changes": [
            {"Action": c.action, "ResourceRecordSet": {"Name": c.name.rstrip("."), "Type": c.type}} for c in changes]}
    return params


def txt_strings(value: str) -> list[str] | None:
    """The character strings of a TXT value in Route 53's format (``"a" "b"``), unescaped; None if not that format."""
    strings: list[str] = []
    position = 0
    while position < len(value):
        if value[position] == " ":
            position += 1
            continue
        if value[position] != '"':
            return None
        position += 1
        chars: list[str] = []
        while True:
            if position >= len(value):
                return None
            char = value[position]
            if char == '"':
                position += 1
                break
            if char == "\\":
                octal = value[position + 1:position + 4]
                if len(octal) == 3 and all(c in string.octdigits for c in octal):
                    chars.append(chr(int(octal, 8)))
                    position += 4
                    continue
                if position + 1 >= len(value):
                    return None
                chars.append(value[position + 1])
                position += 2
                continue
            chars.append(char)
            position += 1
        strings.append("".join(chars))
    return strings if strings else None


def _fqdn(name: str) -> str:
    return name.strip().lower().rstrip(".") + "."


def _xml(body: bytes) -> ElementTree.Element | None:
    try:
        return ElementTree.fromstring(body)  # noqa: S314 - the local test client's request or moto's answer
    except ElementTree.ParseError:
        return None


def _parse_changes(body: bytes) -> list[RecordChange]:
    root = _xml(body)
    if root is None:
        raise AWSRefusal("InvalidInput", "The XML document is not well formed.")
    changes = []
    for change in root.iter(f"{NS}Change"):
        record_set = change.find(f"{NS}ResourceRecordSet")
        if record_set is None:
            continue
        ttl = record_set.findtext(f"{NS}TTL")
        changes.append(RecordChange(
            str(change.findtext(f"{NS}Action", "")), _fqdn(record_set.findtext(f"{NS}Name", "")),
            str(record_set.findtext(f"{NS}Type", "")), int(ttl) if ttl and ttl.isdigit() else None,
            tuple(v.text or "" for v in record_set.iter(f"{NS}Value"))))
    return changes


def _refuse(message: str) -> AWSRefusal:
    return AWSRefusal("InvalidChangeBatch", message)


def _check_values(change: RecordChange) -> None:
    if len(change.values) > MAX_VALUES_PER_RECORD:
        raise _refuse(f"RRSet {change.name} has {len(change.values)} values: at most {MAX_VALUES_PER_RECORD}.")
    if change.type != "TXT":
        return
    for value in change.values:
        strings = txt_strings(value)
        if strings is None:
            raise _refuse(f"Invalid Resource Record: 'FATAL problem: InvalidTXTRDATA encountered at {value[:40]}' "
                          "(a TXT value is one or more strings in double quotation marks)")
        if any(len(s) > MAX_TXT_STRING for s in strings):
            raise _refuse(f"Invalid Resource Record: 'FATAL problem: TXTRDATATooLong (Value is too long) encountered "
                          f"with {value[:40]}' (each TXT string is at most {MAX_TXT_STRING} characters)")


def _check_batch_size(changes: list[RecordChange]) -> None:
    records = sum(len(c.values) * (2 if c.action == "UPSERT" else 1) for c in changes)
    characters = sum(sum(len(v) for v in c.values) * (2 if c.action == "UPSERT" else 1) for c in changes)
    if records > MAX_BATCH_RECORDS:
        raise _refuse(f"The batch holds {records} ResourceRecord elements (UPSERT counts twice): at most "
                      f"{MAX_BATCH_RECORDS}.")
    if characters > MAX_BATCH_CHARACTERS:
        raise _refuse(f"The batch's values hold {characters} characters (UPSERT counts twice): at most "
                      f"{MAX_BATCH_CHARACTERS}.")


class Route53Rules:
    """The Route 53 half of StrictAWS's rules; StrictAWS wires them (``ROUTE53_RULES``) and forwards to moto."""

    _lock: threading.RLock
    route53_pending_reads: int = 1
    """GetChange reads that still answer PENDING for a new change (Route 53 takes seconds to tens of seconds)."""

    def forward(self, request: _Request) -> _Response:
        raise NotImplementedError  # StrictAWS's: send to moto

    @property
    def _route53(self) -> _Route53State:
        with self._lock:
            state: _Route53State | None = self.__dict__.get("_route53_state")
            if state is None:
                state = self.__dict__["_route53_state"] = _Route53State()
            return state

    def _route53_reset(self) -> None:
        """Forget changes and observers (StrictAWS.reset)."""
        with self._lock:
            self.__dict__["_route53_state"] = _Route53State()

    def observe_route53(self, observer: Observer) -> Callable[[], None]:
        """Call ``observer(event, change)`` when a change is submitted and when first reported INSYNC; returns a
        function that stops it."""
        with self._lock:
            self._route53.observers.append(observer)

        def stop() -> None:
            with self._lock:
                if observer in self._route53.observers:
                    self._route53.observers.remove(observer)

        return stop

    def _route53_identify(self, request: _Request) -> None:
        """Name Route 53's REST operations (the proxy otherwise sees ``POST /2013-04-01/...``)."""
        if request.service == "route53":
            request.operation = route53_operation(request.method, request.path) or request.operation

    def _answer_refusal(self, request: _Request, refusal: AWSRefusal) -> _Response:
        """A refusal in the protocol the client parses: Route 53's XML error, else the JSON one."""
        if request.service != "route53":
            return _error(refusal)
        code = "AccessDenied" if refusal.code == "AccessDeniedException" else refusal.code  # Route 53's spelling
        body = (f'<?xml version="1.0"?>\n<ErrorResponse xmlns="{NS[1:-1]}"><Error><Type>Sender</Type>'
                f"<Code>{escape(code)}</Code><Message>{escape(refusal.message)}</Message></Error>"
                f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
        return _Response(refusal.status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", str(uuid.uuid4()))],
                         body)

    # ------------------------------------------------------------------------------------------- rules
    def _route53_change(self, request: _Request) -> Callable[[_Response], _Response]:
        zone_id = urlsplit(request.path).path.rstrip("/").split("/")[-2]
        changes = _parse_changes(request.body)
        _check_batch_size(changes)
        working: dict[tuple[str, str], RecordChange | None] = {}
        for change in changes:
            _check_values(change)
            key = (change.name, change.type)
            if key not in working:
                working[key] = self._route53_current(request, zone_id, change.name, change.type)
            current = working[key]
            where = f"[name='{change.name}', type='{change.type}']"
            if change.action == "CREATE" and current is not None:
                raise _refuse(f"Tried to create resource record set {where} but it already exists")
            if change.action == "DELETE":
                if current is None:
                    raise _refuse(f"Tried to delete resource record set {where} but it was not found")
                if current.ttl != change.ttl or sorted(current.values) != sorted(change.values):
                    raise _refuse(f"Tried to delete resource record set {where} but the values provided do not "
                                  "match the current values")
            working[key] = None if change.action == "DELETE" else change

        def track(response: _Response) -> _Response:
            change_id = "C" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(20))
            accepted = Route53Change(f"/change/{change_id}", zone_id, request.account, tuple(changes))
            with self._lock:
                self._route53.changes[change_id] = _Status(accepted)
                observers = list(self._route53.observers)
            body = re.sub(rb"<Id>[^<]*</Id>", f"<Id>/change/{change_id}</Id>".encode(), response.body, count=1)
            body = re.sub(rb"<Status>[^<]*</Status>", b"<Status>PENDING</Status>", body, count=1)
            for observer in observers:
                observer("submitted", accepted)
            return _Response(response.status, response.headers, body)

        return track

    def _route53_current(self, request: _Request, zone_id: str, name: str, kind: str) -> RecordChange | None:
        """The record set ``name``/``kind`` as moto holds it (a side call with the caller's credentials)."""
        query = f"name={quote(name)}&type={quote(kind)}&maxitems=1"
        side = _Request("GET", f"/2013-04-01/hostedzone/{zone_id}/rrset?{query}",
                        {"Authorization": request.headers.get("Authorization", "")}, b"", "route53",
                        "ListResourceRecordSets", request.region, request.account)
        answer = self.forward(side)
        root = _xml(answer.body) if answer.status < 300 else None
        if root is None:
            return None
        for record_set in root.iter(f"{NS}ResourceRecordSet"):
            if _fqdn(record_set.findtext(f"{NS}Name", "")) == name and record_set.findtext(f"{NS}Type") == kind:
                ttl = record_set.findtext(f"{NS}TTL")
                return RecordChange("", name, kind, int(ttl) if ttl and ttl.isdigit() else None,
                                    tuple(v.text or "" for v in record_set.iter(f"{NS}Value")))
        return None

    def _route53_get_change(self, request: _Request) -> Callable[[_Response], _Response]:
        change_id = urlsplit(request.path).path.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            status = self._route53.changes.get(change_id)
            if status is None and change_id not in self._route53.known:
                raise AWSRefusal("NoSuchChange", f"A change with the specified change ID does not exist: {change_id}",
                                 404)

        def report(response: _Response) -> _Response:
            if status is None:
                return response
            with self._lock:
                pending = status.reads < self.route53_pending_reads
                status.reads += 1
                newly = not pending and not status.insync
                status.insync = status.insync or not pending
                observers = list(self._route53.observers) if newly else []
            for observer in observers:
                observer("insync", status.change)
            body = re.sub(rb"<Status>[^<]*</Status>", b"<Status>PENDING</Status>" if pending
                          else b"<Status>INSYNC</Status>", response.body, count=1)
            body = re.sub(rb"<Id>[^<]*</Id>", status.change.id.encode().join((b"<Id>", b"</Id>")), body, count=1)
            return _Response(response.status, response.headers, body)

        return report

    def _route53_zone_change(self, request: _Request) -> Callable[[_Response], _Response]:
        """CreateHostedZone / DeleteHostedZone: remember the change id moto returns, so GetChange knows it."""

        def remember(response: _Response) -> _Response:
            root = _xml(response.body)
            found = root.find(f"{NS}ChangeInfo/{NS}Id") if root is not None else None
            if found is not None and found.text:
                with self._lock:
                    self._route53.known.add(found.text.rsplit("/", 1)[-1])
            return response

        return remember


_Rule = Callable[[Route53Rules, _Request], Callable[[_Response], _Response] | None]
ROUTE53_RULES: dict[tuple[str, str], _Rule] = {
    ("route53", "ChangeResourceRecordSets"): Route53Rules._route53_change,
    ("route53", "GetChange"): Route53Rules._route53_get_change,
    ("route53", "CreateHostedZone"): Route53Rules._route53_zone_change,
    ("route53", "DeleteHostedZone"): Route53Rules._route53_zone_change,
}
