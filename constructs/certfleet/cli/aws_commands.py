"""seal and upload: the commands that talk to AWS (KMS, Secrets Manager). boto3 is imported here only."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from certfleet.cli.files import Output, refuse_link_or_special, write_outputs
from certfleet.cli.material_commands import read_password
from certfleet.cli.output import out
from certfleet.material import Material, MaterialError, assemble, check_files, check_material, load_file
from certfleet.material.bundle import spki_sha256
from certfleet.material.checks import key_algorithm
from certfleet.material.findings import error
from certfleet.material.keys import private_pem
from certfleet.material.sealed import SealedKey, encryption_context
from certfleet.rules import ACM_KEY_ALGORITHMS

KMS_PLAINTEXT_LIMIT = 4096


def _session(args: argparse.Namespace, region: str | None = None) -> Any:
    import boto3

    return boto3.Session(profile_name=args.profile, region_name=region or args.region)


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn boto3/botocore failures into one plain sentence (exit 1), never a traceback."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
        ProfileNotFound,
    )
    from botocore.parsers import ResponseParserError

    try:
        yield
    except NoCredentialsError:
        raise MaterialError(error(
            "aws-credentials", f"{action}: no AWS credentials were found",
            "run `aws configure`, `aws sso login`, or pass --profile", "",
        )) from None
    except NoRegionError:
        raise MaterialError(error("aws-region", f"{action}: no AWS region is set", "pass --region", "")) from None
    except ProfileNotFound as exc:
        raise MaterialError(error("aws-profile", f"{action}: {exc}", "check ~/.aws/config", "")) from None
    except ClientError as exc:
        info = exc.response.get("Error", {})
        raise MaterialError(error(
            "aws-refused", f"{action}: AWS answered {info.get('Code', '?')}: {info.get('Message', '')}",
            "check the permissions of your AWS identity and the names you passed", "",
        )) from None
    except (BotoCoreError, ResponseParserError) as exc:
        raise MaterialError(error("aws-unreachable", f"{action}: {exc}", "check --endpoint-url and the network",
                                  "")) from None


def _load_key_material(args: argparse.Namespace) -> tuple[Material | None, Any]:
    """Load the key (and the certificate, when given) and refuse anything ACM would refuse."""
    password = read_password(args)
    key_file = load_file(args.key, password)
    if not key_file.keys:
        raise MaterialError(error("no-key", "the file holds no private key", "pass the key file with --key", args.key))
    paths = [p for p in (getattr(args, "certificate", None), getattr(args, "chain", None)) if p]
    files = [load_file(p, password) for p in paths] + [key_file]
    material = assemble(files) if paths else None
    if material is not None:
        findings = check_material(material) + check_files(files)
        for finding in findings:
            out(str(finding))
        blocking = [f for f in findings if f.is_error]
        if blocking:
            raise MaterialError(blocking[0])
        return material, material.key
    item = key_file.keys[0]
    if item.key is None:
        raise MaterialError(error(
            "key-encrypted", "the private key is encrypted", "pass --password-env VAR or --password-file F", args.key,
        ))
    for finding in check_files([key_file]):
        out(str(finding))
    algorithm = key_algorithm(item.key.public_key())
    if algorithm not in ACM_KEY_ALGORITHMS:
        raise MaterialError(error(
            "key-algorithm-unsupported", f"ACM cannot import a {algorithm} key",
            "use RSA 2048-4096 or EC P-256/P-384 (`certfleet keygen`)", args.key,
        ))
    return None, item.key


def seal(args: argparse.Namespace) -> int:
    try:
        context = encryption_context(args.name)
    except ValueError as exc:
        raise MaterialError(error("bad-name", str(exc), "pick a simple name such as www.example.com", "")) from None
    target = Path(args.out)
    refuse_link_or_special(target, replace=args.force, fix="pass --force to replace it")
    _material, key = _load_key_material(args)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    )
    if len(der) > KMS_PLAINTEXT_LIMIT:
        raise MaterialError(error("key-too-large", f"the key is {len(der)} bytes; KMS encrypts at most 4096",
                                  "use RSA 4096 or smaller", args.key))
    sealed = kms_seal(args, key, context)
    key_arn = sealed.kms_key_arn
    write_outputs([Output(target, sealed.to_json().encode("utf-8"))], replace=args.force,
                  fix="pass --force to replace it")
    out(f"sealed the {sealed.key_algorithm} key for {args.name!r} with {key_arn}")
    out(f"wrote {target}: safe to commit; only a role allowed kms:Decrypt with context "
        f"{{\"certfleet:certificate\": \"{args.name}\"}} can open it")
    out(f"public key sha256 {sealed.spki_sha256}")
    out(f"next: KeySource.sealed({str(target)!r}) in your app, then delete the plaintext key")
    return 0


def kms_seal(args: argparse.Namespace, key: Any, context: dict[str, str]) -> SealedKey:
    """Encrypt ``key`` (DER PKCS#8) with KMS ``Encrypt`` under ``args.kms_key`` bound to ``context``: the sealed key.

    The region is ``args.region``, else the key ARN's, else the profile's. The caller checked the size limit.
    """
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    )
    region = args.region or arn_region(args.kms_key)
    with aws_errors("KMS Encrypt"):
        kms = _session(args, region).client("kms", endpoint_url=args.endpoint_url)
        response = kms.encrypt(KeyId=args.kms_key, Plaintext=der, EncryptionContext=context)
    key_arn = str(response["KeyId"])
    return SealedKey(
        kms_key_arn=key_arn,
        region=arn_region(key_arn) or str(kms.meta.region_name),
        encryption_context=context,
        spki_sha256=spki_sha256(key.public_key()),
        key_algorithm=key_algorithm(key.public_key()),
        ciphertext=bytes(response["CiphertextBlob"]),
    )


def arn_region(value: str) -> str | None:
    parts = value.split(":")
    return parts[3] if value.startswith("arn:") and len(parts) > 4 and parts[3] else None


def upload(args: argparse.Namespace) -> int:
    material, key = _load_key_material(args)
    pem = private_pem(key).decode("ascii")
    wanted = list(dict.fromkeys(args.replica_region))
    with aws_errors("Secrets Manager"):
        session = _session(args)
        sm = session.client("secretsmanager", endpoint_url=args.endpoint_url)
        home = str(sm.meta.region_name)
        if home in wanted:
            raise MaterialError(error(
                "bad-replica", f"{home} is the secret's own region, not a replica", "drop that --replica-region", "",
            ))
        try:
            current = sm.describe_secret(SecretId=args.secret_name)
        except sm.exceptions.ResourceNotFoundException:
            current = None
        if current is None:
            create: dict[str, Any] = {
                "Name": args.secret_name,
                "SecretString": pem,
                "Description": args.description,
            }
            if args.kms_key:
                create["KmsKeyId"] = args.kms_key
            if wanted:
                create["AddReplicaRegions"] = [{"Region": r} for r in wanted]
            created = sm.create_secret(**create)
            arn, version, verb = created["ARN"], created["VersionId"], "created"
        else:
            arn = current["ARN"]
            _refuse_deleted(current, args.secret_name)
            if args.kms_key:
                _refuse_other_kms_key(args, session, current)
            existing = sm.get_secret_value(SecretId=arn)
            value = _new_secret_value(existing, pem, key, material, args.secret_name)
            if value is None:
                version, verb = existing["VersionId"], "unchanged (same key already stored; no new version)"
            else:
                version, verb = sm.put_secret_value(SecretId=arn, SecretString=value)["VersionId"], "updated"
            have = {r["Region"] for r in current.get("ReplicationStatus", [])}
            missing = [r for r in wanted if r not in have]
            if missing:
                sm.replicate_secret_to_regions(SecretId=arn, AddReplicaRegions=[{"Region": r} for r in missing])
    out(f"secret {verb}: {arn}")
    out(f"version id: {version}")
    for region in wanted:
        out(f"replica: {arn.replace(f':{home}:', f':{region}:', 1)}")
    out(f"next: KeySource.secret({arn!r})")
    return 0


def _refuse_deleted(current: dict[str, Any], name: str) -> None:
    """A secret scheduled for deletion can be neither read nor written: say so, and how to get it back."""
    deleted = current.get("DeletedDate")
    if deleted is None:
        return
    when = f" on {deleted:%Y-%m-%d %H:%M} UTC" if hasattr(deleted, "strftime") else ""
    raise MaterialError(error(
        "secret-scheduled-for-deletion", f"the secret {name} is scheduled for deletion{when}",
        f"restore it first (`aws secretsmanager restore-secret --secret-id {current['ARN']}`) and run upload "
        "again, or choose another --secret-name", "",
    ))


def _refuse_other_kms_key(args: argparse.Namespace, session: Any, current: dict[str, Any]) -> None:
    """--kms-key on an existing secret must be the key it is encrypted with: changing keys is not an upload's job.

    Readers (cross-account ones above all) were granted kms:Decrypt on the secret's key; silently moving the
    secret to another key, or saying "unchanged" while ignoring the flag, both leave the user wrong.
    """
    have = current.get("KmsKeyId") or "alias/aws/secretsmanager"
    if have == args.kms_key or _key_arn(session, args, have) == _key_arn(session, args, args.kms_key):
        return
    raise MaterialError(error(
        "secret-kms-key-differs",
        f"the secret {args.secret_name} is encrypted with {have}, not --kms-key {args.kms_key}",
        "drop --kms-key to keep the secret's key, or change it deliberately with `aws secretsmanager update-secret "
        f"--secret-id {current['ARN']} --kms-key-id {args.kms_key}` once every reader may decrypt with the new key",
        "",
    ))


def _key_arn(session: Any, args: argparse.Namespace, key_id: str) -> str:
    """The ARN of a KMS key given by id, ARN, alias or alias ARN (kms:DescribeKey)."""
    kms = session.client("kms", region_name=arn_region(key_id) or None, endpoint_url=args.endpoint_url)
    return str(kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"])


def _new_secret_value(
    existing: dict[str, Any], pem: str, key: Any, material: Material | None, name: str,
) -> str | None:
    """What to write over ``existing`` so that it holds ``key``, in the secret's own shape; None: nothing to write.

    The stored key is compared parsed (PKCS#1 or PKCS#8, any line endings): the same key writes no new version.
    A JSON secret ``{"private_key": ..., ...}`` stays JSON with every other field kept; ``certificate`` and
    ``chain`` fields are brought up to date when --certificate was given.
    """
    import json

    text = existing.get("SecretString")
    if text is None:
        text = bytes(existing.get("SecretBinary") or b"").decode("utf-8", "replace")
    fields: dict[str, Any] | None = None
    stored = text
    if text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("private_key"), str):
            raise MaterialError(error(
                "secret-not-a-key", f"the secret {name} holds JSON without a \"private_key\" text field",
                "choose another --secret-name: certfleet does not overwrite a secret it cannot read as a key", "",
            ))
        fields, stored = parsed, parsed["private_key"]
    same_key = _same_key(stored, key)
    if fields is None:
        return None if same_key else pem
    updated = dict(fields)
    if not same_key:
        updated["private_key"] = pem
    if material is not None:
        if "certificate" in updated:
            updated["certificate"] = material.leaf.public_bytes(serialization.Encoding.PEM).decode("ascii")
        if "chain" in updated and material.chain:
            updated["chain"] = "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii")
                                       for c in material.chain)
    elif not same_key and "certificate" in updated:
        out("warning: the secret's \"certificate\" field was kept and belongs to the old key; pass --certificate "
            "(and --chain) to update it too")
    return None if updated == fields else json.dumps(updated)


def _same_key(stored: str, key: Any) -> bool:
    """Whether ``stored`` (PEM text from the secret) is the same private key as ``key``."""
    from certfleet.material.loader import load_bytes

    try:
        items = load_bytes(stored.encode("utf-8", "replace"), "<secret>").keys
    except MaterialError:
        return False
    if len(items) != 1 or items[0].key is None:
        return False
    der = serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    return bool(items[0].key.private_bytes(*der) == key.private_bytes(*der))
