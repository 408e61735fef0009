"""load_cloud_assembly over a synthesized cdk.out (Stages included), and the checks inside a Stage."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Stage
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_certificatemanager as acm
from placement_support import ACCOUNT, arn, fleet, new_app, stack, synth

from certfleet import CertificateBundle
from certfleet.checks.assembly import load_cloud_assembly
from certfleet.checks.graph import check_templates


def _build(tmp_path: Path, bundle: CertificateBundle, *, wrong: bool) -> tuple[str, str]:
    """An App with a top-level stack and a Stage 'Prod' holding a fleet and an API; returns (outdir, api path)."""
    app = new_app(tmp_path)
    top = stack(app, "Top", "eu-west-1")
    apigateway.DomainName(top, "Api", domain_name="www.example.com",
                          certificate=acm.Certificate.from_certificate_arn(top, "Cert", arn("eu-west-1")))
    prod = Stage(app, "Prod")
    certs = fleet(prod, bundle, regions=("eu-west-1",))
    api = stack(prod, "Api", "eu-west-1")
    certificate = certs.certificate_for(api) if wrong else certs.edge_certificate_for(api)
    apigateway.DomainName(api, "Edge", domain_name="www.example.com", certificate=certificate,
                          endpoint_type=apigateway.EndpointType.EDGE)
    result = synth(app)
    assert result.failed is wrong, result.text
    if wrong:
        assert result.codes() == ["wrong-region"]
        assert result.location(result.violations[0]) == ("Prod/Api/Edge/Resource", "Properties/CertificateArn")
    return app.outdir, "Prod/Api/Edge/Resource"


def test_checks_see_the_stacks_of_a_stage(tmp_path: Path, rsa_bundle: CertificateBundle) -> None:
    _build(tmp_path, rsa_bundle, wrong=True)


def test_load_cloud_assembly_reads_nested_stage_assemblies(tmp_path: Path, rsa_bundle: CertificateBundle) -> None:
    outdir, _ = _build(tmp_path, rsa_bundle, wrong=False)
    stacks = {s.stack_name: s for s in load_cloud_assembly(outdir)}
    assert set(stacks) == {"Top", "Prod-Certs-us-east-1", "Prod-Certs-eu-west-1", "Prod-Certs-sweeper", "Prod-Api"}
    edge = stacks["Prod-Certs-us-east-1"]
    assert (edge.account, edge.region) == (ACCOUNT, "us-east-1")
    assert edge.construct_path == "Prod/Certs/us-east-1"
    assert Path(edge.template_path).is_file()
    assert "assembly-Prod" in edge.template_path
    assert any(r["Type"] == "Custom::CertfleetCertificate" for r in edge.template["Resources"].values())
    api = stacks["Prod-Api"]
    assert "Prod/Api/Edge/Resource" in api.construct_paths.values()
    assert check_templates(list(stacks.values())) == []


def test_check_templates_over_a_cdk_out_that_failed_to_synth(tmp_path: Path, rsa_bundle: CertificateBundle) -> None:
    outdir, path = _build(tmp_path, rsa_bundle, wrong=True)  # the assembly is written before validation runs
    (finding,) = check_templates(load_cloud_assembly(outdir))
    assert finding.code == "wrong-region"
    assert finding.site.stack == "Prod-Api"
    assert finding.site.construct_path == path  # from the assembly's logical-id metadata
    assert finding.site.location == "Properties/CertificateArn"
    assert "certfleet certificate Prod/Certs/eu-west-1/Certificate" in finding.message


def test_environment_agnostic_stacks_have_no_region(tmp_path: Path) -> None:
    out = tmp_path / "cdk.out"
    out.mkdir()
    (out / "S.template.json").write_text(json.dumps({"Resources": {}}))
    (out / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": {"S": {
        "type": "aws:cloudformation:stack", "environment": "aws://unknown-account/unknown-region",
        "properties": {"templateFile": "S.template.json"}}}}))
    (only,) = load_cloud_assembly(out)
    assert (only.stack_name, only.account, only.region, only.template) == ("S", None, None, {"Resources": {}})
