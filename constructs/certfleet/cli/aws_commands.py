"""seal and upload: the commands that talk to AWS (KMS, Secrets Manager). boto3 is imported here only."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

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
    if target.exists() and not args.force:
        raise MaterialError(error("file-exists", f"{target} already exists", "pass --force to replace it",
                                  str(target)))
    _material, key = _load_key_material(args)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    )
    if len(der) > KMS_PLAINTEXT_LIMIT:
        raise MaterialError(error("key-too-large", f"the key is {len(der)} bytes; KMS encrypts at most 4096",
                                  "use RSA 4096 or smaller", args.key))
    region = args.region or _arn_region(args.kms_key)
    with aws_errors("KMS Encrypt"):
        kms = _session(args, region).client("kms", endpoint_url=args.endpoint_url)
        response = kms.encrypt(KeyId=args.kms_key, Plaintext=der, EncryptionContext=context)
    key_arn = str(response["KeyId"])
    sealed = SealedKey(
        kms_key_arn=key_arn,
        region=_arn_region(key_arn) or str(kms.meta.region_name),
        encryption_context=context,
        spki_sha256=spki_sha256(key.public_key()),
        key_algorithm=key_algorithm(key.public_key()),
        ciphertext=bytes(response["CiphertextBlob"]),
    )
    target.write_text(sealed.to_json(), encoding="utf-8")
    out(f"sealed the {sealed.key_algorithm} key for {args.name!r} with {key_arn}")
    out(f"wrote {target}: safe to commit; only a role allowed kms:Decrypt with context "
        f"{{\"certfleet:certificate\": \"{args.name}\"}} can open it")
    out(f"public key sha256 {sealed.spki_sha256}")
    out(f"next: KeySource.sealed({str(target)!r}) in your app, then delete the plaintext key")
    return 0


def _arn_region(value: str) -> str | None:
    parts = value.split(":")
    return parts[3] if value.startswith("arn:") and len(parts) > 4 and parts[3] else None


def upload(args: argparse.Namespace) -> int:
    _material, key = _load_key_material(args)
    pem = private_pem(key).decode("ascii")
    wanted = list(dict.fromkeys(args.replica_region))
    with aws_errors("Secrets Manager"):
        sm = _session(args).client("secretsmanager", endpoint_url=args.endpoint_url)
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
            existing = sm.get_secret_value(SecretId=arn)
            if existing.get("SecretString") == pem:
                version, verb = existing["VersionId"], "unchanged (same key already stored; no new version)"
            else:
                version, verb = sm.put_secret_value(SecretId=arn, SecretString=pem)["VersionId"], "updated"
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
