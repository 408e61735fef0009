"""Custom::CertfleetAcmeCertificate (the issuer: onEvent + isComplete) and the scheduled renewer (`renew`).

The issuer orders at the first deploy; the renewer renews with no deploy and re-imports into the same ARN in every
fleet region. Both store one issuance as one version of the material secret (JSON: certificate, chain, private_key,
key_type, not_after) and never store or import material that fails `certfleet_acme.check_material`. No key in any
log or answer.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes

import certfleet_acme as ca
import certfleet_acme_dns as r53
from acme import client, errors, messages

if TYPE_CHECKING:  # checked as part of the certfleet package
    from certfleet._lambda import certfleet_contract as contract
else:  # the ACME asset's top level, as /var/task is: the asset ships the contract beside this module
    import certfleet_contract as contract

LOG = logging.getLogger("certfleet")
LOG.setLevel(logging.INFO)
for _chatty in ("boto3", "botocore", "urllib3", "acme"):  # their DEBUG lines print request bodies: keys, EAB
    logging.getLogger(_chatty).setLevel(logging.WARNING)
CURRENT = "AWSCURRENT"
FINALIZE_SECONDS = 30.0
"""Seconds of the budget an order must still have to be finalized: the CSR's key exists only in this invocation, so
finalizing with less risks the CA issuing after we gave up (the key lost, the order spent)."""
clock: Callable[[], float] = time.monotonic
"""Monotonic seconds, for the budgets (tests move it)."""
AcmeEvent = contract.CustomResourceEvent[contract.AcmeCertificateProperties]
"""The Provider framework's event; isComplete also gets onEvent's PhysicalResourceId and Data."""


class Dns(Protocol):
    """DNS-01 publishing, as certfleet_acme_dns.Route53Dns does it (tests plug in a test DNS)."""

    def publish_records(self, records: Mapping[str, Sequence[str]]) -> list[str]:
        """UPSERT each TXT record set (name -> values); the ids of the changes made."""

    def insync(self, change_ids: Sequence[str]) -> bool:
        """True when every change is live on the authoritative servers."""

    def withdraw_records(self, records: Mapping[str, Sequence[str]]) -> object:
        """Remove these values from their names' TXT sets; values never published (or already gone) are no error,
        so isComplete withdraws what the order's challenges call for without remembering what onEvent published."""


def route53_dns(props: contract.AcmeCertificateProperties) -> Dns:
    """Route 53, in the issuer's hosted zones (its client retries throttling as the handler's others do)."""
    return r53.Route53Dns([r53.HostedZone(z["Id"], z["Name"]) for z in props["HostedZones"]], client=_aws("route53"))


dns_for: Callable[[contract.AcmeCertificateProperties], Dns] = route53_dns
"""The DNS both entry points publish through (tests put a test DNS here)."""


@dataclass(frozen=True)
class Material:
    """One version of the material secret; the key never prints."""

    certificate: str
    chain: str
    private_key: str = field(repr=False)
    key_type: str
    version_id: str
    fleet: str | None = None

    @property
    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate.encode())


# --- clock, budget, clients ------------------------------------------------------------------------------------------

def utcnow() -> datetime.datetime:
    """Now, or CERTFLEET_NOW (ISO-8601) when set: the rehearsal advances the clock instead of waiting."""
    told = os.environ.get("CERTFLEET_NOW")
    if not told:
        return ca.utcnow()
    moment = datetime.datetime.fromisoformat(told)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _seconds_left(context: object, default: float) -> float:
    """Seconds this invocation may still spend: Lambda's remaining time less CERTFLEET_LAMBDA_MARGIN_SECONDS (15);
    without a Lambda context, CERTFLEET_ACME_SECONDS (else `default`)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        return float(remaining()) / 1000 - float(os.environ.get("CERTFLEET_LAMBDA_MARGIN_SECONDS", "15"))
    return float(os.environ.get("CERTFLEET_ACME_SECONDS", default))


def _aws(service: str, region: str | None = None) -> Any:
    make: Callable[..., Any] = boto3.client
    place = region or os.environ.get("AWS_REGION") or os.environ["AWS_DEFAULT_REGION"]
    return make(service, region_name=place, config=Config(retries={"mode": "standard", "max_attempts": 5}))


def _aws_problem(error: ClientError | BotoCoreError) -> str:
    if isinstance(error, ClientError):
        answer = error.response.get("Error", {})
        return f"{answer.get('Code', '')}: {answer.get('Message', '')}"
    return f"{type(error).__name__}: {error}"


def fingerprint(certificate: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the certificate's DER."""
    return certificate.fingerprint(hashes.SHA256()).hex()


# --- secrets ---------------------------------------------------------------------------------------------------------

def _secret_json(sm: Any, secret_id: str) -> tuple[dict[str, Any], str] | None:
    """The AWSCURRENT JSON of a secret and its version id; None while it holds no JSON object yet."""
    try:
        answer = sm.get_secret_value(SecretId=secret_id, VersionStage=CURRENT)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    try:
        value = json.loads(answer.get("SecretString") or "null")
    except json.JSONDecodeError:
        return None
    return (value, str(answer["VersionId"])) if isinstance(value, dict) else None


def read_material(sm: Any, secret_id: str) -> Material | None:
    """The material in use (AWSCURRENT), or None before the first issuance."""
    found = _secret_json(sm, secret_id)
    if found is None or not found[0].get("certificate"):
        return None
    value, version = cast("contract.AcmeMaterial", found[0]), found[1]
    fleet = value.get("fleet")
    return Material(str(value["certificate"]), str(value.get("chain", "")), str(value.get("private_key", "")),
                    str(value.get("key_type", "")), version, None if fleet is None else str(fleet))


def write_material(sm: Any, secret_id: str, issued: ca.Issued, key_type: str, fleet: str) -> Material:
    """Store checked material as a new version (it becomes AWSCURRENT), with the leaf's DNS names (lower case, sorted)
    and the fleet that ordered it; the leaf's fingerprint is the request token, so writing the same issuance again
    makes no second version."""
    leaf = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    value = contract.AcmeMaterial(certificate=issued.certificate_pem, chain=issued.chain_pem,
                                  private_key=issued.private_key_pem.decode(), key_type=key_type,
                                  not_after=issued.not_after.isoformat(),  # +00:00: fromisoformat reads it anywhere
                                  names=sorted({n.lower() for n in ca.certificate_names(leaf)}), fleet=fleet)
    answer = sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps(value),
                                 ClientRequestToken=fingerprint(leaf)[:64])
    return Material(issued.certificate_pem, issued.chain_pem, value["private_key"], key_type, str(answer["VersionId"]),
                    fleet)


# --- the ACME account ------------------------------------------------------------------------------------------------

def account_client(props: contract.AcmeCertificateProperties, sm: Any, *, register: bool) -> client.ClientV2:
    """A client signing as the stored account of this directory; with `register`, the first call (or the first with a
    new DirectoryUrl) registers a new account key (EAB from its secret when EabKeyId is set) and stores it."""
    stored = _secret_json(sm, props["AccountSecretId"])
    if stored is not None and stored[0].get("key") and stored[0].get("directory") == props["DirectoryUrl"]:
        acme = ca.open_client(props["DirectoryUrl"], ca.account_key_from_pem(str(stored[0]["key"]).encode()))
        acme.net.account = messages.RegistrationResource(body=messages.Registration(), uri=str(stored[0]["url"]))
        return acme
    if not register:
        raise ca.AcmeError(f"the ACME account secret {props['AccountSecretId']} holds no account at "
                           f"{props['DirectoryUrl']}: deploy the fleet first (its issuer registers the account)")
    key = ca.new_account_key()
    acme = ca.open_client(props["DirectoryUrl"], key)
    hmac_key = None
    if props.get("EabKeyId"):
        if not props.get("EabHmacSecretId"):
            raise ca.AcmeError("EabKeyId is set but EabHmacSecretId is not: give the secret holding the EAB HMAC key")
        hmac_key = sm.get_secret_value(SecretId=props["EabHmacSecretId"])["SecretString"].strip()
    account = ca.register(acme, contact=props.get("Contact") or None, eab_key_id=props.get("EabKeyId") or None,
                          eab_hmac_key=hmac_key)
    sm.put_secret_value(SecretId=props["AccountSecretId"], SecretString=json.dumps(
        {"key": ca.account_key_pem(key).decode(), "url": account.uri, "directory": props["DirectoryUrl"]}))
    LOG.info("registered ACME account %s", account.uri)
    return acme


# --- ordering --------------------------------------------------------------------------------------------------------

def fits(material: Material | None, domains: Sequence[str], key_type: str, now: datetime.datetime) -> bool:
    """Whether stored material already serves: ordered for exactly `domains` (a name removed orders again), checks
    pass, and a third of its lifetime is not yet spent."""
    if material is None or set(ca.certificate_names(material.leaf)) != set(ca.order_names(domains)):
        return False
    try:
        ca.check_material(material.certificate, material.chain, material.private_key, domains=domains,
                       key_type=key_type, now=now)
    except ca.MaterialError:
        return False
    return not ca.should_renew(material.certificate, now, None).renew


def _publish(dns: Dns, records: Mapping[str, Sequence[str]], domains: Sequence[str]) -> list[str]:
    try:
        return dns.publish_records(records)
    except Exception as error:  # the DNS is the caller's code (Route 53, a test DNS): name what failed
        _withdraw(dns, records)
        raise ca.AcmeError(f"publishing the dns-01 TXT records for {', '.join(domains)} failed: "
                           f"{type(error).__name__}: {error}") from None


def _withdraw(dns: Dns, records: Mapping[str, Sequence[str]]) -> None:
    """Delete the challenge records; a failure is logged, never raised: it must not hide the order's outcome, and a
    leftover TXT record harms nothing (the next order overwrites it)."""
    try:
        dns.withdraw_records(records)
    except Exception as error:  # the DNS is the caller's code (Route 53, a test DNS)
        LOG.warning("could not withdraw the dns-01 TXT records %s: %s: %s", ", ".join(records),
                    type(error).__name__, error)


def _naive_deadline(seconds: float) -> datetime.datetime:
    return datetime.datetime.now() + datetime.timedelta(seconds=max(seconds, 0))  # the acme library's local time


def order_inline(
    acme: client.ClientV2, props: contract.AcmeCertificateProperties, dns: Dns, seconds: float,
) -> ca.Issued:
    """Order, publish, wait for INSYNC and validation, finalize a fresh key: all within `seconds` (the renewer).
    Finalizes only with FINALIZE_SECONDS left; else a retryable AcmeError before any CSR is sent."""
    until = clock() + seconds
    domains = props["Domains"]
    orderr = ca.start_order(acme, domains)
    records = ca.dns01_records(orderr, ca.client_key(acme))
    changes = _publish(dns, records, domains)
    try:
        while not dns.insync(changes):
            if clock() >= until:
                raise ca.AcmeError(f"the dns-01 TXT records for {', '.join(domains)} were not in sync before the "
                                   "renewer's time ran out: the next run retries")
            time.sleep(float(os.environ.get("CERTFLEET_INSYNC_POLL_SECONDS", "5")))
        ca.answer_dns01(acme, orderr)
        try:
            orderr = ca.wait_validated(acme, orderr, _naive_deadline(until - FINALIZE_SECONDS - clock()))
        except errors.TimeoutError:
            raise ca.AcmeError(f"ACME validation for {', '.join(domains)} was still pending when the renewer's time "
                               "ran out: the next run retries") from None
        if until - clock() < FINALIZE_SECONDS:
            raise ca.AcmeError(f"ACME validation for {', '.join(domains)} ended with less than {FINALIZE_SECONDS:.0f} "
                               "s of the renewer's time left: nothing was finalized; the next run retries")
        return ca.finalize(acme, orderr, props["KeyType"], _naive_deadline(until - clock()))
    finally:
        _withdraw(dns, records)


# --- the issuer: Custom::CertfleetAcmeCertificate --------------------------------------------------------------------

def check_properties(props: contract.AcmeCertificateProperties, what: str = contract.ACME_CERTIFICATE_TYPE) -> None:
    """Refuse properties the handlers cannot work with, saying which and what to give."""
    missing = [k for k in ("DirectoryUrl", "KeyType", "MaterialSecretId", "AccountSecretId") if not props.get(k)]
    if missing:
        raise ca.AcmeError(f"{what}: {', '.join(missing)} missing: the construct sets them (a hand-written template "
                           "must too)")
    domains = props.get("Domains")
    if not isinstance(domains, list) or not domains or not all(isinstance(d, str) and d for d in domains):
        raise ca.AcmeError(f"{what}: Domains must be a non-empty list of domain names")
    ca.check_key_type(props["KeyType"])


def summary(material: Material) -> dict[str, str]:
    """What the issuer returns: the version to import, its expiry and fingerprint (never key material)."""
    leaf = material.leaf
    return {"VersionId": material.version_id, "NotAfter": leaf.not_valid_after_utc.isoformat(),
            "Fingerprint": fingerprint(leaf)}


def on_event(event: AcmeEvent, context: object = None) -> dict[str, Any]:
    """Create/Update: order unless AWSCURRENT material already fits (a retry or a no-change update orders nothing),
    publish the TXT records and hand the order to isComplete. Delete: nothing (the secret is its own resource)."""
    props = event["ResourceProperties"]
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId") or props.get("MaterialSecretId", "none")}
    check_properties(props)
    physical = props["MaterialSecretId"]
    sm = _aws("secretsmanager")
    old = event.get("OldResourceProperties")
    new_ca = event["RequestType"] == "Update" and old is not None and old.get("DirectoryUrl") != props["DirectoryUrl"]
    if not new_ca and fits(read_material(sm, physical), props["Domains"], props["KeyType"], utcnow()):
        LOG.info("%s: the material in %s already fits: nothing ordered", event.get("LogicalResourceId"), physical)
        return {"PhysicalResourceId": physical, "Data": {"OrderUrl": "", "ChangeIds": ""}}
    acme = account_client(props, sm, register=True)
    orderr = ca.start_order(acme, props["Domains"])
    records = ca.dns01_records(orderr, ca.client_key(acme))
    changes = _publish(dns_for(props), records, props["Domains"])
    LOG.info("ordered %s for %s; %d TXT record sets published", orderr.uri, ", ".join(props["Domains"]), len(records))
    return {"PhysicalResourceId": physical,
            "Data": {"OrderUrl": str(orderr.uri), "ChangeIds": ",".join(changes)}}


def is_complete(event: AcmeEvent, context: object = None) -> dict[str, Any]:
    """Wait for INSYNC, answer the challenges, wait for validation, finalize a fresh key (only with FINALIZE_SECONDS
    of the budget left: else come back, the order stays ready), check, store, withdraw."""
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    props = event["ResourceProperties"]
    data = event.get("Data") or {}
    sm = _aws("secretsmanager")
    if not data.get("OrderUrl"):
        material = read_material(sm, props["MaterialSecretId"])
        if material is None:
            raise ca.AcmeError(f"{contract.ACME_CERTIFICATE_TYPE}: {props['MaterialSecretId']} lost its material: "
                               "deploy again")
        return {"IsComplete": True, "Data": summary(material)}
    until = clock() + _seconds_left(context, 60)
    dns = dns_for(props)
    if not dns.insync([c for c in data.get("ChangeIds", "").split(",") if c]):
        return {"IsComplete": False}
    acme = account_client(props, sm, register=False)
    orderr = ca.fetch_order(acme, data["OrderUrl"])
    records = ca.dns01_records(orderr, ca.client_key(acme), include_valid=True)  # withdrawing more is harmless
    pending = False
    try:
        if orderr.body.status in (messages.STATUS_VALID, messages.STATUS_PROCESSING):
            return _finished_earlier(props, sm, str(orderr.uri))
        ca.answer_dns01(acme, orderr)
        try:
            orderr = ca.wait_validated(acme, orderr, _naive_deadline(until - FINALIZE_SECONDS - clock()))
        except errors.TimeoutError:
            pending = True
            return {"IsComplete": False}
        if until - clock() < FINALIZE_SECONDS:  # the next poll finds the order ready and finalizes it
            LOG.info("%s validated with less than %.0f s left: finalizing in the next poll", orderr.uri,
                     FINALIZE_SECONDS)
            pending = True
            return {"IsComplete": False}
        issued = ca.finalize(acme, orderr, props["KeyType"], _naive_deadline(until - clock()))
        ca.check_material(issued.certificate_pem, issued.chain_pem, issued.private_key_pem.decode(),
                       domains=props["Domains"], key_type=props["KeyType"], now=ca.utcnow())
        material = write_material(sm, props["MaterialSecretId"], issued, props["KeyType"], props["Fleet"])
    finally:
        if not pending:
            _withdraw(dns, records)
    LOG.info("issued %s for %s, version %s", fingerprint(material.leaf), ", ".join(props["Domains"]),
             material.version_id)
    return {"IsComplete": True, "Data": summary(material)}


def _finished_earlier(props: contract.AcmeCertificateProperties, sm: Any, order_url: str) -> dict[str, Any]:
    """An order already finalized: done if an earlier invocation stored its material, else its key is gone."""
    material = read_material(sm, props["MaterialSecretId"])
    if fits(material, props["Domains"], props["KeyType"], utcnow()) and material is not None:
        return {"IsComplete": True, "Data": summary(material)}
    raise ca.AcmeError(f"ACME order {order_url} for {', '.join(props['Domains'])} was finalized by an invocation that "
                       "did not finish: its key is gone. Retry the deployment (it orders anew).")


# --- the renewer -----------------------------------------------------------------------------------------------------

def renew(
    event: contract.AcmeRenewInput, context: object = None, *, now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Renew when due (ARI window, else a third of the lifetime left), then make every region's certificate (same
    ARN) hold AWSCURRENT. Not due and in sync: nothing written, nothing imported. Raises on any failure."""
    check_properties(event, "the ACME renewer's input")
    moment = now or utcnow()
    sm = _aws("secretsmanager")
    material = read_material(sm, event["MaterialSecretId"])
    if material is None:
        raise ca.AcmeError(f"the ACME renewer: {event['MaterialSecretId']} holds no certificate yet: deploy the "
                           "fleet first")
    if material.fleet is not None and material.fleet != event["Fleet"]:
        raise ca.AcmeError(f"the ACME renewer: {event['MaterialSecretId']} holds the material of fleet "
                           f"{material.fleet!r}, not of {event['Fleet']!r}: nothing imported; give this fleet's own "
                           "material secret")
    if material.key_type and material.key_type != event["KeyType"]:
        raise ca.AcmeError(f"the ACME renewer: the certificate's key type is {material.key_type}, the input asks "
                           f"for {event['KeyType']}; ACM re-imports only the same key type: deploy the change")
    acme: client.ClientV2 | None = None
    unreachable: ca.AcmeError | None = None
    window = None
    try:
        acme = account_client(event, sm, register=False)
        window = ca.renewal_window(acme, material.certificate)
    except ca.AcmeError as error:
        unreachable = error
        LOG.warning("ACME renewal information unavailable (%s): judging by the certificate's lifetime", error)
    decision = ca.should_renew(material.certificate, moment, window)
    if {n.lower() for n in ca.certificate_names(material.leaf)} != set(ca.order_names(event["Domains"])):
        decision = ca.Decision(True, "the certificate's names differ from the declared domains", moment)
    renewed = False
    if decision.renew:
        if acme is None:  # the CA's directory did not answer (or no account): nothing to order with
            raise unreachable or ca.AcmeError("the ACME renewer could not open the CA's directory")
        LOG.info("renewing %s: %s", ", ".join(event["Domains"]), decision.reason)
        issued = order_inline(acme, event, dns_for(event), _seconds_left(context, 600))
        ca.check_material(issued.certificate_pem, issued.chain_pem, issued.private_key_pem.decode(),
                       domains=event["Domains"], key_type=event["KeyType"], now=ca.utcnow())
        material = write_material(sm, event["MaterialSecretId"], issued, event["KeyType"], event["Fleet"])
        renewed = True
    imported = reimport(event, material, moment)
    return {"Renewed": renewed, "Reason": decision.reason, "Due": decision.due.isoformat(), **summary(material),
            "Imported": imported}


def find_certificate(acm: Any, event: contract.AcmeRenewInput) -> list[dict[str, Any]]:
    """Summaries of the fleet's certificate in the client's region: tagged with the fleet, the id, certfleet and the
    ACME source, not retired (every key type: ListCertificates shows only RSA 1024/2048 unless asked)."""
    wanted = {contract.FLEET_TAG: event["Fleet"], contract.ID_TAG: event["CertificateId"],
              contract.MANAGED_BY_TAG: contract.MANAGED_BY, contract.SOURCE_TAG: contract.ACME_SOURCE}
    names = set(ca.order_names(event["Domains"]))
    found: list[dict[str, Any]] = []
    for page in acm.get_paginator("list_certificates").paginate(Includes={"keyTypes": list(contract.ACM_KEY_TYPES)}):
        for item in page.get("CertificateSummaryList", []):
            listed = {str(n).lower() for n in [item.get("DomainName"), *item.get("SubjectAlternativeNameSummaries", [])]
                      if n}
            if listed and names.isdisjoint(listed):
                continue
            arn = str(item["CertificateArn"])
            tags = {t["Key"]: t.get("Value", "") for t in acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]}
            if all(tags.get(k) == v for k, v in wanted.items()) and contract.RETIRED_TAG not in tags:
                found.append(item)
    return found


def _holds(summary: dict[str, Any], leaf: x509.Certificate) -> bool:
    """Whether ACM's certificate is `leaf`, judged by its validity period as ListCertificates reports it (each
    issuance has its own, to the second; no acm:GetCertificate needed)."""
    period = (summary.get("NotBefore"), summary.get("NotAfter"))
    return period == (leaf.not_valid_before_utc, leaf.not_valid_after_utc)


NOT_YET_DEPLOYED = datetime.timedelta(hours=48)
"""How long after an issuance a region may still hold no certificate of the fleet (its stack not deployed yet: the
schedule starts with the primary stack); later, a missing certificate fails the run."""


def reimport(event: contract.AcmeRenewInput, material: Material,
             now: datetime.datetime | None = None) -> dict[str, str]:
    """Re-import `material` into the fleet's certificate (same ARN) in every region whose ACM holds another leaf;
    {region: ARN} of the imports made. Every region is tried; then one error names each that failed. A region with no
    certificate within NOT_YET_DEPLOYED of the leaf's issuance is skipped: its stack's first import takes the newest
    material."""
    leaf = material.leaf
    young = (now or utcnow()) - leaf.not_valid_before_utc < NOT_YET_DEPLOYED
    imported: dict[str, str] = {}
    failed: list[str] = []
    for region in event["Regions"]:
        acm = _aws("acm", region)
        try:
            found = find_certificate(acm, event)
            if not found and young:
                LOG.warning("%s holds no certificate of fleet %s yet (its stack is not deployed?): skipped", region,
                            event["Fleet"])
                continue
            if len(found) != 1:
                failed.append(f"{region}: {len(found)} certificates tagged {contract.FLEET_TAG}={event['Fleet']}, "
                              f"{contract.ID_TAG}={event['CertificateId']}, {contract.SOURCE_TAG}="
                              f"{contract.ACME_SOURCE} (expected one: deploy the fleet)")
                continue
            if _holds(found[0], leaf):
                continue
            arn = str(found[0]["CertificateArn"])
            extra = {"CertificateChain": material.chain.encode()} if material.chain.strip() else {}
            acm.import_certificate(CertificateArn=arn, Certificate=material.certificate.encode(),
                                   PrivateKey=material.private_key.encode(), **extra)
            imported[region] = arn
            LOG.info("re-imported %s into %s", fingerprint(leaf), arn)
        except (ClientError, BotoCoreError) as error:
            failed.append(f"{region}: {_aws_problem(error)}")
    if failed:
        raise ca.AcmeError(f"the ACME renewer stored {fingerprint(leaf)} ({material.version_id}) but could not "
                           f"import it everywhere: {'; '.join(failed)}. The next run retries.")
    return imported
