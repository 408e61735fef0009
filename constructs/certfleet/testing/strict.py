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
``GetSecretValue`` in a replica region does not see a secret version written less than that long ago; with
``replica_lag_reads`` N set, it does not see the newest version for its first N reads there.
``PutSecretValue`` with a ``ClientRequestToken`` that already names a version is ignored, as Secrets Manager ignores
it (moto does too): the proxy's replica-lag bookkeeping does not count it as a move of AWSCURRENT; a move of
AWSCURRENT by ``UpdateSecretVersionStage`` reaches replicas with the same lag as a write. ``GetSecretValue`` with
neither ``VersionId`` nor ``VersionStage`` answers AWSCURRENT's version (moto answers the version written last).

Every request is counted per (service, operation, region): ``strict.calls("acm", "ImportCertificate")``.
IAM: a request signed with an access key id registered as a principal (``strict.register(principal)``, or a POST of
its JSON to ``/_strict/principals``: what the rehearsal does for each role) is authorized by ``authorizer`` (default:
``StrictAWS.default_authorizer``, which the test suite sets) and refused with ``AccessDeniedException`` when IAM would
refuse it (see :mod:`certfleet.testing.authorize`); other requests pass unchecked. ``strict.iam.decisions()`` lists
what was decided.
Accounts: a request to ``strict.url_for(account)`` (the url with ``/_account/<12 digits>`` appended) is played in
that account of moto (``x-moto-account-id``), so several accounts stay apart as they do in AWS; ``strict.url`` is
moto's default account, 123456789012.
Route 53 (TXT values, batch sizes, CREATE/DELETE against the current record sets, change ids and PENDING status,
errors in Route 53's XML): see :mod:`certfleet.testing.strict_route53`.
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
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from cryptography import x509

from certfleet._lambda.certfleet_contract import ACM_KEY_TYPES, DEFAULT_LIST_KEY_TYPES
from certfleet.material.names import dns_names
from certfleet.testing.authorize import ApiCall, Authorizer, Principal
from certfleet.testing.gate import IamGate, access_key_id
from certfleet.testing.strict_checks import (
    MAX_CERTIFICATE_BYTES,
    MAX_CHAIN_BYTES,
    MAX_PRIVATE_KEY_BYTES,
    MAX_TAGS,
    AWSRefusal,
    _acm_algorithm,
    _blob,
    _check_acm_tags,
    _check_chain,
    _check_encryption_context,
    _load_leaf,
    _load_private_key,
    _spki,
)
from certfleet.testing.strict_http import _HOP_BY_HOP, _Handler, _Request, _Response, _Server
from certfleet.testing.strict_route53 import ROUTE53_RULES, Route53Rules, route53_params
from certfleet.testing.strict_secrets import SecretRules, _Secret

__all__ = ["ACM_KEY_TYPES", "AWSRefusal", "Call", "StrictAWS"]


@dataclass(frozen=True)
class Call:
    """One request seen by the proxy.

    Attributes:
        service: The AWS service, as its signing name (``acm``, ``secretsmanager``, ``kms``...).
        operation: The API operation (``ImportCertificate``...).
        region: The region the request was signed for.
    """

    service: str
    operation: str
    region: str


class StrictAWS(SecretRules, Route53Rules):
    """A strict proxy in front of ``upstream`` (a moto_server url). Start it, point ``AWS_ENDPOINT_URL`` at ``url``.

    What it refuses as AWS does: the README's "A local deploy rehearsal"; in full, the docstring of
    ``certfleet.testing.strict``.

    Args:
        upstream: The moto_server url (``http://host:port``) requests are forwarded to.
        host: The address the proxy listens on. Default: ``"127.0.0.1"``.
        import_rate: ImportCertificate requests allowed per second per region (AWS's is 1). Default: 1.0;
            None: no limit.
        replica_lag: Seconds a new secret version takes to reach replica regions. Default: 0.0 (instant, as moto).
        replica_lag_reads: Reads of the newest secret version a replica region refuses (or, for AWSCURRENT, answers
            with the previous version) before it has it: lag counted in reads, not seconds. Default: 0.
        list_page_size: The most certificates one ListCertificates page holds. Default: None (one page, as moto).
        import_quota: Imports allowed per region over the proxy's life. Default: None (no limit).
        authorizer: Decides the IAM checks of registered principals' requests. Default: None
            (``StrictAWS.default_authorizer`` when the proxy is made; with neither, their calls are recorded and pass).
    """

    default_authorizer: ClassVar[Authorizer | None] = None

    def __init__(
        self,
        upstream: str,
        *,
        host: str = "127.0.0.1",
        import_rate: float | None = 1.0,
        replica_lag: float = 0.0,
        replica_lag_reads: int = 0,
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
        self.replica_lag_reads = replica_lag_reads
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
        self._route53_reset()
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
        self._route53_identify(request)
        with self._lock:
            self._calls[Call(request.service, request.operation, request.region)] += 1
        refused = self.iam.authorize(
            access_key_id(request.headers, parse_qs(urlsplit(request.path).query)),
            ApiCall(request.service, request.operation, request.region, request.account,
                    route53_params(request) if request.service == "route53" else request.json()))
        if refused is not None:
            return self._answer_refusal(request, AWSRefusal(refused.code, refused.message, refused.status))
        rule = _RULES.get((request.service, request.operation))
        try:
            after = rule(self, request) if rule is not None else None
        except AWSRefusal as refusal:
            return self._answer_refusal(request, refusal)
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
    **ROUTE53_RULES,
    ("secretsmanager", "UpdateSecretVersionStage"): StrictAWS._secret_stage,
}
