"""AWS DataInfrastructure: wiring, security posture, and the committed tree under real tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tfparse

from mlops_dsl import DataInfrastructure, Platform
from mlops_dsl.namespaces import load, parse
from mlops_dsl.terraform import render

from .conftest import NAMESPACES, ROOT, copy_stack, run_terraform

TREE = ROOT / "terraform"
AWS_STACKS = sorted(p.parent for p in TREE.glob("*/*/*/versions.tf") if "hashicorp/aws" in p.read_text())


def _stack(zones=("raw", "models"), ns: str = "prod"):
    platform = Platform("churn", cloud="aws").add(DataInfrastructure(zones=list(zones)))
    return platform.synth(parse(NAMESPACES)[ns])[0].stack


def _by_address(stack):
    return {r.address: r for r in stack.resources}


def test_object_model_wiring() -> None:
    stack = _stack()
    res = _by_address(stack)
    assert res["aws_kms_key.data"].body["enable_key_rotation"] is True
    assert res["aws_kms_key.data"].body["deletion_window_in_days"] == 30
    for zone in ("raw", "models"):
        bucket = res[f"aws_s3_bucket.{zone}"]
        assert bucket.body["bucket"] == f"churn-prod-{zone}-333333333333"
        for kind in ("versioning", "server_side_encryption_configuration", "public_access_block",
                     "ownership_controls", "lifecycle_configuration", "policy", "logging", "notification"):
            dependent = res[f"aws_s3_bucket_{kind}.{zone}"]
            assert dependent.body["bucket"].text == f"aws_s3_bucket.{zone}.id"
        sse = res[f"aws_s3_bucket_server_side_encryption_configuration.{zone}"].body["rule"]
        default = sse.body["apply_server_side_encryption_by_default"].body
        assert default["sse_algorithm"] == "aws:kms"
        assert default["kms_master_key_id"].text == "aws_kms_key.data.arn"
        assert res[f"aws_s3_bucket_logging.{zone}"].body["target_bucket"].text == "aws_s3_bucket.access_logs.id"
    outputs = {o.name for o in stack.outputs}
    assert outputs == {"bucket_names", "bucket_arns", "kms_key_arn", "kms_key_id", "access_log_bucket_name",
                       "vpc_id", "private_subnet_ids", "sagemaker_security_group_id", "glue_database_name",
                       "endpoints_security_group_id", "s3_prefix_list_id"}  # the last two: the notebooks' network


def _parsed(tmp_path: Path, stack) -> dict:
    for name, text in render(stack).items():
        (tmp_path / name).write_text(text)
    parsed = tfparse.load_from_path(str(tmp_path))
    assert parsed
    return parsed


def test_parsed_hcl_wiring(tmp_path: Path) -> None:
    parsed = _parsed(tmp_path, _stack())
    buckets = {b["__tfmeta"]["path"]: b for b in parsed["aws_s3_bucket"]}
    assert set(buckets) == {"aws_s3_bucket.raw", "aws_s3_bucket.models", "aws_s3_bucket.access_logs"}
    blocks = {b["__tfmeta"]["path"]: b for b in parsed["aws_s3_bucket_public_access_block"]}
    assert all(blocks[p][k] is True for p in blocks for k in
               ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
    ownership = {o["rule"]["object_ownership"] for o in parsed["aws_s3_bucket_ownership_controls"]}
    assert ownership == {"BucketOwnerEnforced"}
    versioning = {v["versioning_configuration"]["status"] for v in parsed["aws_s3_bucket_versioning"]}
    assert versioning == {"Enabled"}
    for rule in parsed["aws_s3_bucket_lifecycle_configuration"]:
        assert rule["rule"]["abort_incomplete_multipart_upload"]["days_after_initiation"] == 7
    logging = {entry["bucket"]: entry["target_prefix"] for entry in parsed["aws_s3_bucket_logging"]}
    assert logging == {"churn-prod-raw-333333333333": "raw/", "churn-prod-models-333333333333": "models/"}
    log_policy = next(p for p in parsed["aws_s3_bucket_policy"]
                      if p["bucket"] == "churn-prod-access-logs-333333333333")
    statement = json.loads(log_policy["policy"])["Statement"][0]
    assert statement["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert sorted(statement["Condition"]["ArnLike"]["aws:SourceArn"]) == [
        "arn:aws:s3:::churn-prod-models-333333333333", "arn:aws:s3:::churn-prod-raw-333333333333"]
    key_policy = json.loads(parsed["aws_kms_key"][0]["policy"])
    assert key_policy["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::333333333333:root"}
    provider = parsed["provider"][0]
    assert provider["allowed_account_ids"] == ["333333333333"]
    assert provider["default_tags"]["tags"]["team"] == "ml"
    assert provider["default_tags"]["tags"]["mlops:namespace"] == "prod"


def _unresolved(node, declared: set[str]) -> list[str]:
    """tfparse leaves a reference it cannot evaluate as {'__attribute__': 'type.name.attr'}."""
    found = []
    if isinstance(node, dict):
        if "__attribute__" in node:
            parts = node["__attribute__"].split(".")
            target = ".".join(parts[:3] if parts[0] == "data" else parts[:2])
            if target not in declared:
                found.append(node["__attribute__"])
        else:
            for value in node.values():
                found += _unresolved(value, declared)
    elif isinstance(node, list):
        for value in node:
            found += _unresolved(value, declared)
    return found


@pytest.mark.parametrize("stack_dir", AWS_STACKS, ids=lambda p: str(p.relative_to(TREE)))
def test_every_committed_stack_parses_and_every_reference_resolves(stack_dir: Path) -> None:
    parsed = tfparse.load_from_path(str(stack_dir))
    assert parsed, f"{stack_dir} did not parse"
    declared = {item["__tfmeta"]["path"] for items in parsed.values() for item in items
                if item.get("__tfmeta", {}).get("type") in ("resource", "data")}
    assert _unresolved(parsed, declared) == []
    for items in parsed.values():
        for item in items:
            for ref in item.get("__tfmeta", {}).get("references", []):
                assert any(ref["id"] == other["id"] for others in parsed.values() for other in others)


def _json_documents(text: str) -> list[dict]:
    decoder, docs, pos = json.JSONDecoder(), [], 0
    while pos < len(text.rstrip()):
        doc, pos = decoder.raw_decode(text, pos)
        docs += doc if isinstance(doc, list) else [doc]
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return docs


def test_checkov_reports_no_failed_check_on_the_generated_tree() -> None:
    assert AWS_STACKS, "no AWS stacks committed"
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    checkov = Path(sys.executable).parent / "checkov"
    result = subprocess.run(
        [str(checkov), "--framework", "terraform", "--quiet", "--compact", "--skip-download", "-o", "json",
         "-d", str(TREE)],
        capture_output=True, text=True, env=env, check=False, timeout=600)
    reports = _json_documents(result.stdout)
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})"
              for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    assert failed == []
    assert sum(r["summary"]["passed"] for r in reports) > 0
    assert sum(r["summary"]["parsing_errors"] for r in reports) == 0


def test_every_checkov_skip_is_listed_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    skips = set()
    for path in TREE.rglob("*.tf"):
        for line in path.read_text().splitlines():
            if "checkov:skip=" in line:
                skips.add(line.split("checkov:skip=")[1].split(":")[0])
    assert skips
    missing = sorted(s for s in skips if s not in readme)
    assert missing == [], f"README's Security section does not list {missing}"


def test_committed_namespaces_use_the_shipped_file() -> None:
    # prod keeps old object versions longer through an override in namespaces.yaml
    assert load(ROOT / "namespaces.yaml")["prod"].overrides["data"]["noncurrent_version_days"] == 365
    prod = (TREE / "prod/customer-churn/data/main.tf").read_text()
    assert "noncurrent_days = 365" in prod
    assert "noncurrent_days = 90" in (TREE / "dev/customer-churn/data/main.tf").read_text()


@pytest.mark.terraform
def test_committed_tree_is_terraform_fmt_clean(terraform_env: dict[str, str]) -> None:
    result = run_terraform(terraform_env, TREE, "fmt", "-check", "-recursive", "-diff")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.terraform
@pytest.mark.parametrize("stack_dir", AWS_STACKS, ids=lambda p: str(p.relative_to(TREE)))
def test_terraform_validate_on_every_aws_stack(terraform_env: dict[str, str], tmp_path: Path,
                                               stack_dir: Path) -> None:
    work = copy_stack(stack_dir, tmp_path / "stack")
    init = run_terraform(terraform_env, work, "init", "-backend=false", "-input=false", "-no-color")
    assert init.returncode == 0, init.stdout + init.stderr
    result = run_terraform(terraform_env, work, "validate", "-json", "-no-color")
    report = json.loads(result.stdout)
    assert report["valid"], report["diagnostics"]
    assert report["warning_count"] == 0, report["diagnostics"]
