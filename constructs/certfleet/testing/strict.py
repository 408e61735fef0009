"""StrictAWS: an HTTP proxy in front of moto_server that refuses what real AWS refuses and moto accepts.

Every request (any service) is forwarded unchanged to moto, except that, as real ACM does, the proxy refuses:

- ``ImportCertificate`` whose private key does not match the certificate; a key algorithm ACM cannot import;
  a DER (non-PEM) certificate; more than one certificate in ``Certificate``; an encrypted private key;
  a certificate over 32,768 bytes or a key over 5,120 bytes; a chain where a certificate does not directly
  certify the one before it, or that contains the end-entity certificate; tag keys starting with ``aws:``;
- a re-import (``CertificateArn``) that changes the key type or size, or that carries ``Tags``;
- more than ``import_rate`` ``ImportCertificate`` requests per second per region (``ThrottlingException``);
- more than ``import_quota`` imports per region, when set (``LimitExceededException``);
- ``DeleteCertificate`` on a certificate marked in use with :meth:`StrictAWS.mark_in_use`;
- ACM tags (``ImportCertificate``, ``AddTagsToCertificate``, ``RemoveTagsFromCertificate``): more than 50 per
  request or per certificate, a key of 0 or over 128 characters, a value over 256, a character outside letters,
  separators, numbers and ``_.:/=+-@``;

and, as Secrets Manager and KMS do:

- a secret name (``CreateSecret``) outside 1-512 characters of ``A-Za-z0-9/_+=.@-``; a ``SecretString`` over
  65,536 bytes; secret tags (``CreateSecret``, ``TagResource``): more than 50 on a secret, a key of 0 or over
  127 characters, a value over 255, a key starting with ``aws:``, a character outside letters, spaces, numbers and
  ``_.:/=+-@``;
- a KMS encryption context that is not a map of strings, or whose keys and values add up to more than
  8,192 bytes (unverified: a conservative guard, see FACTS.md).

It also behaves as ACM does where moto differs: ``ListCertificates`` without ``Includes.keyTypes`` lists only
RSA_1024 and RSA_2048 certificates; it pages when ``list_page_size`` is set; a re-import keeps the
certificate's tags; ``DescribeCertificate`` reports the ``InUseBy`` marks. With ``replica_lag`` seconds set,
``GetSecretValue`` in a replica region does not see a secret version written less than that long ago.
``PutSecretValue`` with a ``ClientRequestToken`` that already names a version is ignored, as Secrets Manager ignores
it (moto does too): the proxy's replica-lag bookkeeping does not count it as a move of AWSCURRENT.

Every request is counted per (service, operation, region): ``strict.calls("acm", "ImportCertificate")``.
IAM: a request signed with an access key id registered as a principal (``strict.register(principal)``, or a POST of
its JSON to ``/_strict/principals``: what the rehearsal does for each role) is authorized by ``authorizer`` (default:
``StrictAWS.default_authorizer``, which the test suite sets) and refused with ``AccessDeniedException`` when IAM would
refuse it (see :mod:`certfleet.testing.authorize`); other requests pass unchecked. ``strict.iam.decisions()`` lists
what was decided.
Accounts: a request to ``strict.url_for(account)`` (the url with ``/_account/<12 digits>`` appended) is played in
that account of moto (``x-moto-account-id``), so several accounts stay apart as they do in AWS; ``strict.url`` is
moto's default account, 123456789012.
The proxy never logs request or response bodies (they carry private keys).
"""

from __future__ import annotations

import base64
import binascii
import collections
import http.client
import json
import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, cast
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from certfleet.material.names import dns_names
from certfleet.testing.authorize import ApiCall, Authorizer, Principal
from certfleet.testing.gate import IamGate, access_key_id

__all__ = ["ACM_KEY_TYPES", "AWSRefusal", "Call", "StrictAWS"]

#: Every key algorithm ACM can import, by ACM's names.
ACM_KEY_TYPES = ("RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1")
#: What ListCertificates returns when the request names no key types.
DEFAULT_LIST_KEY_TYPES = ("RSA_1024", "RSA_2048")
MAX_CERTIFICATE_BYTES = 32_768
MAX_PRIVATE_KEY_BYTES = 5_120
MAX_CHAIN_BYTES = 2_097_152
MAX_TAGS = 50
ACM_TAG_KEY_MAX, ACM_TAG_VALUE_MAX = 128, 256
SECRET_TAG_KEY_MAX, SECRET_TAG_VALUE_MAX = 127, 255
SECRET_NAME_MAX = 512
MAX_SECRET_STRING_BYTES = 65_536
MAX_ENCRYPTION_CONTEXT_BYTES = 8_192
SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]+")
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_EC_NAMES = {"secp256r1": "EC_prime256v1", "secp384r1": "EC_secp384r1", "secp521r1": "EC_secp521r1"}
_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_ACCOUNT_PATH = re.compile(r"/_account/(\d{12})(?=/|\?|$)")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class AWSRefusal(Exception):
    """An error answered to the client in the JSON shape botocore parses: ``{"__type", "message"}``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Call:
    """One request seen by the proxy."""

    service: str
    operation: str
    region: str


@dataclass
class _Secret:
    primary_region: str
    created: float
    versions: dict[str, float] = field(default_factory=dict)
    current: list[tuple[float, str]] = field(default_factory=list)  # (when, version id) each time AWSCURRENT moved
    replicas: dict[str, float] = field(default_factory=dict)  # region -> when the replica was added


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


class StrictAWS:
    """A strict proxy in front of ``upstream`` (a moto_server url). Start it, point ``AWS_ENDPOINT_URL`` at ``url``.

    ``import_rate``: ImportCertificate requests allowed per second per region (None: no limit). AWS's is 1.
    ``replica_lag``: seconds a new secret version takes to reach replica regions (0: instant, as moto).
    ``list_page_size``: the most certificates one ListCertificates page holds (None: as moto, one page).
    ``import_quota``: imports allowed per region over the proxy's life (None: no limit).
    ``authorizer``: decides the IAM checks of registered principals' requests (None: ``default_authorizer``, read
    when the proxy is made; with neither, registered principals' calls are recorded and pass).
    """

    default_authorizer: ClassVar[Authorizer | None] = None

    def __init__(
        self,
        upstream: str,
        *,
        host: str = "127.0.0.1",
        import_rate: float | None = 1.0,
        replica_lag: float = 0.0,
        list_page_size: int | None = None,
        import_quota: int | None = None,
        authorizer: Authorizer | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"StrictAWS needs an http:// upstream url, got {upstream!r}")
        self.upstream = upstream
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port or 80
        self.host = host
        self.import_rate = import_rate
        self.replica_lag = replica_lag
        self.list_page_size = list_page_size
        self.import_quota = import_quota
        self._lock = threading.RLock()
        self._calls: collections.Counter[Call] = collections.Counter()
        self._imports: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._import_totals: collections.Counter[str] = collections.Counter()
        self._in_use: dict[str, str] = {}
        self._names: dict[str, list[str]] = {}
        self._secrets: dict[str, _Secret] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.iam = IamGate(authorizer or StrictAWS.default_authorizer, self._side_call)

    # ----------------------------------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` once started."""
        if self._server is None:
            raise RuntimeError("StrictAWS is not running: call start() or use it as a context manager")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def url_for(self, account: str) -> str:
        """The url that plays requests in ``account`` (12 digits) of moto."""
        if not re.fullmatch(r"\d{12}", account):
            raise ValueError(f"an AWS account id is 12 digits, got {account!r}")
        return f"{self.url}/_account/{account}"

    def start(self) -> StrictAWS:
        """Listen on a free port, serving from a daemon thread."""
        if self._server is not None:
            return self
        server = _Server((self.host, 0), _Handler)
        server.strict = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="StrictAWS", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> StrictAWS:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget counts, in-use marks, throttle history, secret versions and IAM decisions (not moto's state, nor
        the registered principals)."""
        with self._lock:
            self._calls.clear()
            self._imports.clear()
            self._import_totals.clear()
            self._in_use.clear()
            self._names.clear()
            self._secrets.clear()
        self.iam.reset()

    # --------------------------------------------------------------------------------------- test API
    def mark_in_use(self, arn: str, by: str = "arn:aws:cloudfront::123456789012:distribution/EXAMPLE") -> None:
        """Make DeleteCertificate on ``arn`` fail with ResourceInUseException until :meth:`release`."""
        with self._lock:
            self._in_use[arn] = by

    def release(self, arn: str) -> None:
        """Undo :meth:`mark_in_use`."""
        with self._lock:
            self._in_use.pop(arn, None)

    def calls(self, service: str | None = None, operation: str | None = None, region: str | None = None) -> int:
        """How many requests matched (None matches anything); refused requests count too."""
        with self._lock:
            return sum(
                n for call, n in self._calls.items()
                if (service is None or call.service == service)
                and (operation is None or call.operation == operation)
                and (region is None or call.region == region)
            )

    @property
    def call_counts(self) -> dict[Call, int]:
        """A copy of the per (service, operation, region) counters."""
        with self._lock:
            return dict(self._calls)

    def register(self, principal: Principal) -> None:
        """Authorize requests signed with ``principal.access_key_id`` as IAM would authorize that role's."""
        self.iam.register(principal)

    # ------------------------------------------------------------------------------------ the pipeline
    def handle(self, request: _Request) -> _Response:
        """Count, authorize, check, forward, adjust: the whole life of one request."""
        with self._lock:
            self._calls[Call(request.service, request.operation, request.region)] += 1
        refused = self.iam.authorize(
            access_key_id(request.headers, parse_qs(urlsplit(request.path).query)),
            ApiCall(request.service, request.operation, request.region, request.account, request.json()))
        if refused is not None:
            return _error(AWSRefusal(refused.code, refused.message, refused.status))
        rule = _RULES.get((request.service, request.operation))
        try:
            after = rule(self, request) if rule is not None else None
        except AWSRefusal as refusal:
            return _error(refusal)
        response = self.forward(request)
        return after(response) if after is not None and response.status < 300 else response

    def forward(self, request: _Request) -> _Response:
        """Send ``request`` to moto as it is; return moto's answer."""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        headers["Host"] = f"{self._upstream_host}:{self._upstream_port}"
        headers["Content-Length"] = str(len(request.body))
        if request.account:
            headers["x-moto-account-id"] = request.account
        conn = http.client.HTTPConnection(self._upstream_host, self._upstream_port, timeout=60)
        try:
            conn.request(request.method, request.path, body=request.body, headers=headers)
            answer = conn.getresponse()
            body = answer.read()
            kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP | {"content-length"}]
            return _Response(answer.status, kept, body)
        finally:
            conn.close()

    def _upstream_json(self, request: _Request, target: str, payload: dict[str, Any]) -> _Response:
        """A side call to moto with the caller's credentials and region (not counted)."""
        headers = {
            "Authorization": request.headers.get("Authorization", ""),
            "X-Amz-Target": target,
            "Content-Type": "application/x-amz-json-1.1",
        }
        return self.forward(_Request("POST", "/", headers, json.dumps(payload).encode(), request.service,
                                     target.rsplit(".", 1)[-1], request.region, request.account))

    def _side_call(self, service: str, region: str, account: str, target: str,
                   payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A call the IAM gate makes to moto for resource facts, signed for ``region`` with no principal's key."""
        headers = {"Authorization": f"AWS4-HMAC-SHA256 Credential=strictaws/20260101/{region}/{service}/aws4_request, "
                                    "SignedHeaders=host, Signature=0"}
        answer = self._upstream_json(_Request("POST", "/", headers, b"", service, "", region, account), target,
                                     payload)
        return answer.status, answer.json()

    # ------------------------------------------------------------------------------------- ACM rules
    def _acm_import(self, request: _Request) -> Callable[[_Response], _Response] | None:
        params = request.json()
        self._throttle_import(request.region)
        arn = params.get("CertificateArn")
        if arn and params.get("Tags"):
            raise AWSRefusal("ValidationException", "Tagging is not permitted on re-import.")
        if "Tags" in params:
            _check_acm_tags(params["Tags"])
        certificate = _blob(params, "Certificate", "certificate", MAX_CERTIFICATE_BYTES)
        private_key = _blob(params, "PrivateKey", "privateKey", MAX_PRIVATE_KEY_BYTES)
        chain = _blob(params, "CertificateChain", "certificateChain", MAX_CHAIN_BYTES) \
            if params.get("CertificateChain") else b""
        leaf = _load_leaf(certificate)
        algorithm = _acm_algorithm(leaf.public_key(), "certificate's public key")
        key = _load_private_key(private_key)
        _acm_algorithm(key.public_key(), "private key")
        if _spki(key.public_key()) != _spki(leaf.public_key()):
            raise AWSRefusal("ValidationException", "The private key does not match the public key in the certificate.")
        if chain:
            _check_chain(leaf, chain)
        names = dns_names(leaf)
        if not arn:
            return self._remember_names(self._count_import(request.region), names)
        current = self._upstream_json(request, "CertificateManager.GetCertificate", {"CertificateArn": arn})
        if current.status >= 300:
            return None  # moto answers ResourceNotFoundException for the real request, as ACM does
        pem = str(current.json().get("Certificate", "")).encode()
        old_algorithm = _acm_algorithm(x509.load_pem_x509_certificate(pem).public_key(), "current certificate")
        if old_algorithm != algorithm:
            raise AWSRefusal(
                "ValidationException",
                f"The certificate to re-import has key algorithm {algorithm} but {arn} holds a {old_algorithm} "
                "certificate: the key type and size cannot change on re-import.",
            )
        tags = self._upstream_json(request, "CertificateManager.ListTagsForCertificate", {"CertificateArn": arn})
        kept_tags = (tags.json().get("Tags") or []) if tags.status < 300 else []
        counted = self._count_import(request.region)

        def keep_tags(response: _Response) -> _Response:  # moto forgets tags on re-import; ACM keeps them
            if kept_tags:
                self._upstream_json(request, "CertificateManager.AddTagsToCertificate",
                                    {"CertificateArn": arn, "Tags": kept_tags})
            return counted(response)

        return self._remember_names(keep_tags, names)

    def _remember_names(self, then: Callable[[_Response], _Response], names: list[str],
                        ) -> Callable[[_Response], _Response]:
        """After a successful import, keep the certificate's names for ListCertificates' summaries."""

        def remember(response: _Response) -> _Response:
            response = then(response)
            if response.status < 300:
                arn = str(response.json().get("CertificateArn", ""))
                with self._lock:
                    self._names[arn] = names
            return response

        return remember

    def _throttle_import(self, region: str) -> None:
        rate = self.import_rate
        if rate is None:
            return
        now = time.monotonic()
        window = 1.0 if rate >= 1 else 1.0 / rate
        allowed = max(1, int(rate))
        with self._lock:
            recent = self._imports[region]
            while recent and now - recent[0] >= window:
                recent.popleft()
            if len(recent) >= allowed:
                raise AWSRefusal("ThrottlingException", "Rate exceeded")
            recent.append(now)

    def _count_import(self, region: str) -> Callable[[_Response], _Response]:
        with self._lock:
            if self.import_quota is not None and self._import_totals[region] >= self.import_quota:
                raise AWSRefusal(
                    "LimitExceededException",
                    f"You have reached the limit of {self.import_quota} certificate imports in {region}.",
                )

        def count(response: _Response) -> _Response:
            with self._lock:
                self._import_totals[region] += 1
            return response

        return count

    def _acm_delete(self, request: _Request) -> None:
        arn = str(request.json().get("CertificateArn", ""))
        with self._lock:
            user = self._in_use.get(arn)
        if user is not None:
            account = arn.split(":")[4] if arn.count(":") >= 5 else "123456789012"
            raise AWSRefusal("ResourceInUseException", f"Certificate {arn} in account {account} is in use.")

    def _acm_describe(self, request: _Request) -> Callable[[_Response], _Response]:
        arn = str(request.json().get("CertificateArn", ""))

        def add_in_use(response: _Response) -> _Response:
            with self._lock:
                user = self._in_use.get(arn)
            if user is None:
                return response
            data = response.json()
            data.setdefault("Certificate", {})["InUseBy"] = [user]
            return response.with_json(data)

        return add_in_use

    def _acm_list(self, request: _Request) -> Callable[[_Response], _Response]:
        params = request.json()
        wanted = (params.get("Includes") or {}).get("keyTypes") or list(DEFAULT_LIST_KEY_TYPES)
        token = params.get("NextToken")
        offset = 0
        if token:
            try:
                offset = int(base64.b64decode(token, validate=True).decode().removeprefix("strict:"))
            except (ValueError, binascii.Error):
                raise AWSRefusal("InvalidArgsException", "The NextToken is not valid.") from None
        limits = [n for n in (params.get("MaxItems"), self.list_page_size) if n]
        page = min(int(n) for n in limits) if limits else None

        def filter_and_page(response: _Response) -> _Response:
            data = response.json()
            summaries = [s for s in data.get("CertificateSummaryList") or [] if s.get("KeyAlgorithm") in wanted]
            with self._lock:  # ACM's summaries carry InUse and the names; moto's lack them
                for summary in summaries:
                    arn = str(summary.get("CertificateArn", ""))
                    summary["InUse"] = arn in self._in_use
                    if arn in self._names:
                        summary["SubjectAlternativeNameSummaries"] = self._names[arn][:100]
                        summary["HasAdditionalSubjectAlternativeNames"] = len(self._names[arn]) > 100
            data.pop("NextToken", None)
            if page is not None:
                if offset + page < len(summaries):
                    data["NextToken"] = base64.b64encode(f"strict:{offset + page}".encode()).decode()
                summaries = summaries[offset:offset + page]
            data["CertificateSummaryList"] = summaries
            return response.with_json(data)

        return filter_and_page

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

    def _secret_read(self, request: _Request) -> None:
        lag = self.replica_lag
        if lag <= 0:
            return
        params = request.json()
        secret_id = str(params.get("SecretId", ""))
        secret = self._find_secret(secret_id)
        if secret is None or request.region == secret.primary_region or request.region not in secret.replicas:
            return
        now = time.monotonic()
        with self._lock:
            if now - secret.replicas[request.region] < lag:
                raise AWSRefusal("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
            version = params.get("VersionId")
            if version:
                written = secret.versions.get(str(version))
                if written is not None and now - written < lag:
                    raise AWSRefusal(
                        "ResourceNotFoundException",
                        f"Secrets Manager can't find the specified secret value for VersionId: {version}",
                    )
                return
            if params.get("VersionStage", "AWSCURRENT") != "AWSCURRENT" or not secret.current:
                return
            if now - secret.current[-1][0] >= lag:
                return
            seen = [v for when, v in secret.current if now - when >= lag]
        if not seen:
            raise AWSRefusal(
                "ResourceNotFoundException",
                "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
            )
        request.body = json.dumps({"SecretId": secret_id, "VersionId": seen[-1]}).encode()  # the replica's view

    def _find_secret(self, secret_id: str) -> _Secret | None:
        tail = secret_id.split(":secret:", 1)[1] if secret_id.startswith("arn:") else secret_id
        with self._lock:
            for name, secret in self._secrets.items():
                if tail == name or (tail.startswith(name + "-") and len(tail) == len(name) + 7):
                    return secret
        return None

    # ------------------------------------------------------------------ tags, secret names and values, KMS
    def _acm_tag(self, request: _Request) -> None:
        params = request.json()
        _check_acm_tags(params.get("Tags") or [])
        if request.operation != "AddTagsToCertificate":
            return
        arn = str(params.get("CertificateArn", ""))
        listed = self._upstream_json(request, "CertificateManager.ListTagsForCertificate", {"CertificateArn": arn})
        keys = {str(t.get("Key")) for t in (listed.json().get("Tags") or [])} if listed.status < 300 else set()
        keys |= {str(t.get("Key")) for t in params.get("Tags") or []}
        if len(keys) > MAX_TAGS:
            raise AWSRefusal("TooManyTagsException",
                             f"the certificate {arn} would have {len(keys)} tags: at most {MAX_TAGS}.")

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

    def _kms_context(self, request: _Request) -> None:
        params = request.json()
        for name in ("EncryptionContext", "SourceEncryptionContext", "DestinationEncryptionContext"):
            if name in params:
                _check_encryption_context(name, params[name])


_Rule = Callable[[StrictAWS, _Request], Callable[[_Response], _Response] | None]
_RULES: dict[tuple[str, str], _Rule] = {
    ("acm", "ImportCertificate"): StrictAWS._acm_import,
    ("acm", "DeleteCertificate"): StrictAWS._acm_delete,
    ("acm", "DescribeCertificate"): StrictAWS._acm_describe,
    ("acm", "ListCertificates"): StrictAWS._acm_list,
    ("acm", "AddTagsToCertificate"): StrictAWS._acm_tag,
    ("acm", "RemoveTagsFromCertificate"): StrictAWS._acm_tag,
    ("secretsmanager", "CreateSecret"): StrictAWS._secret_create,
    ("secretsmanager", "PutSecretValue"): StrictAWS._secret_put,
    ("secretsmanager", "UpdateSecret"): StrictAWS._secret_put,
    ("secretsmanager", "TagResource"): StrictAWS._secret_tag,
    **{("kms", operation): StrictAWS._kms_context for operation in (
        "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext")},
    ("secretsmanager", "ReplicateSecretToRegions"): StrictAWS._secret_replicate,
    ("secretsmanager", "GetSecretValue"): StrictAWS._secret_read,
}


# ------------------------------------------------------------------------------ tags, secrets, KMS context
def _tag_characters_ok(text: str, *, spaces_only: bool = False) -> bool:
    """ACM's ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*``; Secrets Manager's "letters, spaces, numbers and _.:/=+-@"."""
    return all(
        char in _TAG_PUNCTUATION or unicodedata.category(char)[0] in "LN"
        or (char == " " if spaces_only else unicodedata.category(char)[0] == "Z")
        for char in text
    )


def _tag_pairs(tags: Any, operation: str) -> list[tuple[str, str]]:
    if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
        raise AWSRefusal("ValidationException", f"{operation}: Tags must be a list of {{Key, Value}} objects.")
    return [(str(t.get("Key", "")), str(t.get("Value", ""))) for t in tags]


def _check_acm_tags(tags: Any) -> None:
    pairs = _tag_pairs(tags, "ACM")
    if len(pairs) > MAX_TAGS:
        raise AWSRefusal("TooManyTagsException", f"{len(pairs)} tags in one request: at most {MAX_TAGS}.")
    for index, (key, value) in enumerate(pairs, 1):
        for what, text, low, high in (("key", key, 1, ACM_TAG_KEY_MAX), ("value", value, 0, ACM_TAG_VALUE_MAX)):
            if not low <= len(text) <= high:
                raise AWSRefusal("ValidationException", f"1 validation error detected: Value at 'tags.{index}.member."
                                 f"{what}' failed to satisfy constraint: Member must have length between {low} and "
                                 f"{high}")
            if not _tag_characters_ok(text):
                raise AWSRefusal("ValidationException", f"1 validation error detected: Value {text[:80]!r} at "
                                 f"'tags.{index}.member.{what}' failed to satisfy constraint: Member must satisfy "
                                 r"regular expression pattern: [\p{L}\p{Z}\p{N}_.:\/=+\-@]*")
        if key.lower().startswith("aws:"):
            raise AWSRefusal("InvalidTagException", f"Tag key {key!r} uses the reserved prefix aws:")


def _check_secret_tags(tags: Any, existing: set[str]) -> None:
    pairs = _tag_pairs(tags, "Secrets Manager")
    for key, value in pairs:
        if not 1 <= len(key) <= SECRET_TAG_KEY_MAX or len(value) > SECRET_TAG_VALUE_MAX:
            raise AWSRefusal("ValidationException", f"Tag {key[:80]!r}: a key is 1 to {SECRET_TAG_KEY_MAX} characters "
                             f"and a value at most {SECRET_TAG_VALUE_MAX}.")
        if key.lower().startswith("aws:"):
            raise AWSRefusal("ValidationException", f"Tag key {key!r} uses the prefix aws:, reserved for AWS use.")
        for text in (key, value):
            if not _tag_characters_ok(text, spaces_only=True):
                raise AWSRefusal("ValidationException", f"Tag {key[:80]!r} holds a character Secrets Manager does "
                                 "not allow in tags: use letters, spaces, numbers and _.:/=+-@")
    keys = {k for k in existing | {k for k, _ in pairs} if not k.lower().startswith("aws:")}
    if len(keys) > MAX_TAGS:
        raise AWSRefusal("ValidationException", f"The secret would have {len(keys)} tags: at most {MAX_TAGS}.")


def _check_secret_string(params: dict[str, Any]) -> None:
    text = params.get("SecretString")
    if isinstance(text, str) and len(text.encode()) > MAX_SECRET_STRING_BYTES:
        raise AWSRefusal("ValidationException", "1 validation error detected: Value at 'secretString' failed to "
                         f"satisfy constraint: Member must have length less than or equal to {MAX_SECRET_STRING_BYTES}")


def _check_encryption_context(name: str, context: Any) -> None:
    if not isinstance(context, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in context.items()):
        raise AWSRefusal("ValidationException", f"{name} must be a map of strings to strings.")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in context.items())
    if size > MAX_ENCRYPTION_CONTEXT_BYTES:
        raise AWSRefusal("ValidationException", f"{name} is {size} bytes: StrictAWS allows at most "
                         f"{MAX_ENCRYPTION_CONTEXT_BYTES} (an unverified, conservative limit).")


# --------------------------------------------------------------------------------------- certificate checks
def _blob(params: dict[str, Any], name: str, field_name: str, limit: int) -> bytes:
    try:
        data = base64.b64decode(str(params.get(name) or ""), validate=True)
    except (ValueError, binascii.Error):
        raise AWSRefusal("ValidationException", f"The {field_name} is not valid base64.") from None
    if not data:
        raise AWSRefusal("ValidationException", f"1 validation error detected: Value at '{field_name}' "
                         "failed to satisfy constraint: Member must have length greater than or equal to 1")
    if len(data) > limit:
        raise AWSRefusal("ValidationException", f"1 validation error detected: Value at '{field_name}' "
                         f"failed to satisfy constraint: Member must have length less than or equal to {limit}")
    return data


def _load_leaf(data: bytes) -> x509.Certificate:
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise AWSRefusal("ValidationException", "The certificate is not PEM-encoded. Upload a PEM-encoded certificate.")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise AWSRefusal("ValidationException", "The certificate is not valid.") from None
    if len(certificates) != 1:
        raise AWSRefusal(
            "ValidationException",
            "The certificate field contains more than one certificate. "
            "You can specify only one certificate in this field.",
        )
    certificate = certificates[0]
    if certificate.version is not x509.Version.v3:
        raise AWSRefusal("ValidationException", "The certificate must be an X.509 version 3 certificate.")
    return certificate


def _load_private_key(data: bytes) -> PrivateKeyTypes:
    if b"-----BEGIN" not in data:
        raise AWSRefusal("ValidationException", "The private key is not PEM-encoded.")
    if b"ENCRYPTED" in data.split(b"\n", 2)[0] or b"Proc-Type: 4,ENCRYPTED" in data:
        raise AWSRefusal("ValidationException", "The private key is encrypted: ACM imports only unencrypted keys.")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise AWSRefusal("ValidationException", "The private key is encrypted: ACM imports only unencrypted keys.") \
            from None
    except (ValueError, UnsupportedAlgorithm):
        raise AWSRefusal("ValidationException", "The private key is not supported.") from None


def _acm_algorithm(public_key: PublicKeyTypes, what: str) -> str:
    name = ""
    if isinstance(public_key, rsa.RSAPublicKey):
        name = f"RSA_{public_key.key_size}"
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        name = _EC_NAMES.get(public_key.curve.name, "")
    if name not in ACM_KEY_TYPES:
        raise AWSRefusal(
            "ValidationException",
            f"The {what} uses an algorithm ACM cannot import ({type(public_key).__name__}"
            f"{f' {name}' if name else ''}); supported: {', '.join(ACM_KEY_TYPES)}.",
        )
    return name


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_chain(leaf: x509.Certificate, data: bytes) -> None:
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise AWSRefusal("ValidationException", "The certificate chain is not PEM-encoded.")
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise AWSRefusal("ValidationException", "The certificate chain is not valid.") from None
    for member in chain:
        if member == leaf:
            raise AWSRefusal(
                "ValidationException", "The certificate chain must not contain the end-entity certificate.",
            )
    for position, (child, parent) in enumerate(_links(leaf, chain)):
        try:
            child.verify_directly_issued_by(parent)
        except Exception:  # ValueError (names), InvalidSignature, TypeError (algorithm): all "does not certify"
            what = "the certificate" if position == 0 else f"chain certificate {position}"
            raise AWSRefusal(
                "ValidationException",
                f"The certificate chain is not valid: chain certificate {position + 1} "
                f"({parent.subject.rfc4514_string()}) does not directly certify {what} "
                f"({child.subject.rfc4514_string()}).",
            ) from None


def _links(
    leaf: x509.Certificate, chain: list[x509.Certificate],
) -> Iterable[tuple[x509.Certificate, x509.Certificate]]:
    previous = leaf
    for parent in chain:
        yield previous, parent
        previous = parent


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


def _control(strict: StrictAWS, method: str, path: str, body: bytes) -> _Response:
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
    strict: StrictAWS


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
