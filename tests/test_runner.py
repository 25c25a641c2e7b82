"""The runner against a fake terraform: order, parallelism, failures, approval, stale plans, deferral."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mlops_dsl import cli, toolchain
from mlops_dsl.runner import schedule
from mlops_dsl.runner.plans import GITHUB_COMMENT_LIMIT, PlanChanges, StackPlan, changes_of, summary
from mlops_dsl.runner.units import Unit

from .conftest import FakeTerraform, Project


def unit(name: str, *deps: str, platform: str = "p") -> Unit:
    return Unit("dev", platform, name, Path(name), deps, "0" * 64)


# --- the schedule, without terraform ----------------------------------------------------------------

def test_deploy_waits_for_dependencies_and_destroy_is_the_exact_reverse() -> None:
    units = [unit("data"), unit("features", "data"), unit("training", "data", "features"),
             unit("serving", "training")]
    seen: list[str] = []

    def action(u: Unit, _: object) -> schedule.Outcome:
        seen.append(u.template)
        return schedule.Outcome(schedule.DONE)

    schedule.run(units, action, parallelism=4)
    assert seen == ["data", "features", "training", "serving"]
    seen.clear()
    schedule.run(units, action, parallelism=4, reverse=True)
    assert seen == ["serving", "training", "features", "data"]


def test_independent_units_run_at_once_up_to_the_parallelism() -> None:
    units = [unit(f"s{i}", platform=f"p{i}") for i in range(6)]
    running, peak, lock = [0], [0], threading.Lock()

    def action(u: Unit, _: object) -> schedule.Outcome:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return schedule.Outcome(schedule.DONE)

    schedule.run(units, action, parallelism=3)
    assert peak[0] == 3
    peak[0] = 0
    schedule.run(units, action, parallelism=1)
    assert peak[0] == 1


def test_a_failure_skips_its_dependents_and_the_rest_finish() -> None:
    units = [unit("data"), unit("features", "data"), unit("serving", "features"),
             unit("data", platform="q"), unit("features", "data", platform="q")]

    def action(u: Unit, _: object) -> schedule.Outcome:
        if u.key == "dev/p/data":
            raise RuntimeError("boom")
        return schedule.Outcome(schedule.DONE)

    out = schedule.run(units, action)
    assert out["dev/p/data"] == schedule.Outcome(schedule.FAILED, "RuntimeError: boom")
    assert out["dev/p/features"] == schedule.Outcome(schedule.SKIPPED, "p/data failed")
    assert out["dev/p/serving"] == schedule.Outcome(schedule.SKIPPED, "p/features was skipped")
    assert out["dev/q/features"].status == schedule.DONE


def test_a_failed_destroy_keeps_what_it_depends_on() -> None:
    units = [unit("data"), unit("features", "data")]
    out = schedule.run(units, lambda u, _: schedule.Outcome(
        schedule.FAILED if u.template == "features" else schedule.DONE), reverse=True)
    assert out["dev/p/data"].status == schedule.SKIPPED


# --- plans and the summary ---------------------------------------------------------------------------

def test_changes_are_read_from_terraforms_plan_json() -> None:
    plan = {"format_version": "1.2", "resource_changes": [
        {"address": "aws_s3_bucket.a", "change": {"actions": ["create"]}},
        {"address": "aws_s3_bucket.b", "change": {"actions": ["update"]}},
        {"address": "aws_s3_bucket.c", "change": {"actions": ["delete", "create"]}},
        {"address": "aws_s3_bucket.d", "change": {"actions": ["create", "delete"]}},
        {"address": "aws_s3_bucket.e", "change": {"actions": ["delete"]}},
        {"address": "aws_s3_bucket.f", "change": {"actions": ["no-op"]}},
        {"address": "data.aws_region.g", "change": {"actions": ["read"]}},
    ], "output_changes": {"x": {"actions": ["update"]}, "y": {"actions": ["no-op"]}}}
    c = changes_of(plan)
    assert (c.add, c.change, c.replace, c.destroy, c.outputs) == (
        ["aws_s3_bucket.a"], ["aws_s3_bucket.b"], ["aws_s3_bucket.c", "aws_s3_bucket.d"], ["aws_s3_bucket.e"], ["x"])


def test_summary_lists_destroys_first_and_fits_a_github_comment() -> None:
    many = [f"aws_s3_bucket.b{i:05d}_{'x' * 40}" for i in range(3000)]
    plans = [StackPlan("p", "data", "a" * 64, "planned", PlanChanges(add=many, destroy=["aws_kms_key.old"])),
             StackPlan("p", "serving", "b" * 64, "deferred", detail="p/data")]
    text = summary("prod", "terraform 1.9.8", plans)
    assert len(text) < GITHUB_COMMENT_LIMIT
    assert text.index("**Destroy** (1)") < text.index("**Add** (3000)")
    assert "- ... and " in text and " more (see `terraform show` of the saved plan)" in text
    assert "| p/data | 3000 | 0 | 0 | 1 | `aaaaaaaaaaaa` |" in text
    assert "| p/serving | deferred until p/data is applied |" in text


# --- the commands, against the fake terraform ------------------------------------------------------------

def test_plan_saves_plans_defers_downstream_and_prints_the_summary_hash(project: Project, fake_tf: FakeTerraform):
    result = project.mlops("plan", "-n", "dev")
    assert result.exit_code == 0, result.output
    base = project.root / ".mlops/plans/dev"
    assert (base / "churn/data.tfplan").exists() and (base / "fraud/data.tfplan").exists()
    assert not (base / "churn/features.tfplan").exists()
    assert "churn/features  deferred   until churn/data is applied" in result.output
    text = (base / "summary.md").read_text()
    digest = result.output.split("summary hash: ")[1].split()[0]
    assert len(digest) == 12 and digest == json.loads((base / "index.json").read_text())["summary_hash"]
    assert "| churn/features | deferred until churn/data is applied |" in text
    assert sorted(fake_tf.stacks("plan")) == ["churn/data", "fraud/data"]  # the deferred stacks ran no plan
    for call in fake_tf.calls():
        if call["args"][0] == "plan":
            assert "-input=false" in call["args"] and any(a.startswith("-out=") for a in call["args"])


def test_apply_applies_saved_plans_then_deferred_stacks_in_waves(project: Project, fake_tf: FakeTerraform):
    assert project.mlops("plan", "-n", "dev").exit_code == 0
    result = project.mlops("apply", "-n", "dev")
    assert result.exit_code == 0, result.output
    assert "wave 2: planning 2 deferred stacks" in result.output
    assert fake_tf.applied() == {"churn/data", "churn/features", "fraud/data", "fraud/features"}
    calls = [(c["args"][0], "/".join(Path(c["cwd"]).parts[-2:]), c["start"]) for c in fake_tf.calls()]
    data_applied = max(t for cmd, s, t in calls if cmd == "apply" and s == "churn/data")
    features_planned = min(t for cmd, s, t in calls if cmd == "plan" and s == "churn/features")
    assert data_applied < features_planned  # planned against real outputs, not invented ones
    apply_args = next(c["args"] for c in fake_tf.calls() if c["args"][0] == "apply")
    assert apply_args[-1].endswith(".tfplan") and "-auto-approve" not in apply_args
    assert not list((project.root / ".mlops/plans/dev").rglob("*.tfplan"))  # each plan is applied once


def test_apply_with_no_saved_plans_plans_first_in_an_auto_namespace(project: Project, fake_tf: FakeTerraform):
    result = project.mlops("apply", "-n", "dev")
    assert result.exit_code == 0, result.output
    assert "no saved plans for namespace 'dev' (approval: auto): planning first" in result.output
    assert len(fake_tf.applied()) == 4


def test_apply_refuses_a_stale_plan_and_applies_nothing(project: Project, fake_tf: FakeTerraform):
    assert project.mlops("plan", "-n", "dev").exit_code == 0
    namespaces = project.root / "namespaces.yaml"
    namespaces.write_text(namespaces.read_text().replace("team: ml", "team: ml-platform"))
    result = project.mlops("apply", "-n", "dev")
    assert result.exit_code == 1
    assert "refusing to apply stale or incomplete plans of namespace 'dev'; nothing was applied" in result.output
    assert "churn/data: the rendered stack changed since it was planned" in result.output
    assert fake_tf.stacks("apply") == []


def test_apply_refuses_a_stack_edited_by_hand_since_the_plan(project: Project, fake_tf: FakeTerraform):
    assert project.mlops("plan", "-n", "dev").exit_code == 0
    main_tf = project.root / "terraform/dev/churn/data/main.tf"
    main_tf.write_text(main_tf.read_text() + "\n# edited\n")
    result = project.mlops("apply", "-n", "dev")
    assert result.exit_code == 1 and "differs from the blueprints" in result.output
    assert fake_tf.stacks("apply") == []


def test_manual_namespace_without_terminal_or_approval_applies_nothing(project: Project, fake_tf: FakeTerraform):
    assert project.mlops("plan", "-n", "prod").exit_code == 0
    result = project.mlops("apply", "-n", "prod")
    assert result.exit_code == 1
    assert "namespace 'prod' needs approval (approval: manual) and there is no terminal" in result.output
    assert fake_tf.stacks("apply") == []


def test_auto_approve_is_refused_for_a_manual_namespace(project: Project, fake_tf: FakeTerraform):
    assert project.mlops("plan", "-n", "prod").exit_code == 0
    result = project.mlops("apply", "-n", "prod", "--auto-approve")
    assert result.exit_code == 2
    assert "--auto-approve is refused for namespace 'prod'" in result.output
    assert fake_tf.stacks("apply") == []


def test_approve_must_match_the_reviewed_summary_hash(project: Project, fake_tf: FakeTerraform):
    planned = project.mlops("plan", "-n", "prod")
    digest = planned.output.split("summary hash: ")[1].split()[0]
    assert f"mlops apply -n prod --approve {digest}" in planned.output
    wrong = project.mlops("apply", "-n", "prod", "--approve", "0123456789ab")
    assert wrong.exit_code == 1 and f"does not match the summary of the saved plans ({digest})" in wrong.output
    assert fake_tf.stacks("apply") == []
    right = project.mlops("apply", "-n", "prod", "--approve", digest)
    assert right.exit_code == 3, right.output  # applied what was approved; more awaits review
    assert fake_tf.applied() == {"churn/data", "fraud/data"}
    # The deferred stacks were planned after their upstream was applied: a new summary, its own review.
    assert "wave 2 needs its own review" in right.output
    assert "churn/features  deferred   planned, awaiting review" in right.output
    again = right.output.split("summary hash: ")[1].split()[0]
    assert again != digest
    assert project.mlops("apply", "-n", "prod", "--approve", again).exit_code == 0
    assert len(fake_tf.applied()) == 4


def test_manual_namespace_applies_when_its_name_is_typed(project: Project, fake_tf: FakeTerraform,
                                                         monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cli, "_interactive", lambda: True)
    assert project.mlops("plan", "-n", "prod").exit_code == 0
    result = project.mlops("apply", "-n", "prod", input="dev\n")
    assert result.exit_code == 1 and "approval not given (typed 'dev', expected 'prod')" in result.output
    assert fake_tf.stacks("apply") == []
    result = project.mlops("apply", "-n", "prod", input="prod\nprod\n")
    assert result.exit_code == 0, result.output
    assert "| churn/data |" in result.output  # the summary was shown before the prompt
    assert len(fake_tf.applied()) == 4


def test_destroy_runs_in_reverse_and_a_manual_namespace_needs_it_typed(project: Project, fake_tf: FakeTerraform,
                                                                       monkeypatch: pytest.MonkeyPatch):
    assert project.mlops("apply", "-n", "dev").exit_code == 0
    result = project.mlops("destroy", "-n", "dev", "--parallelism", "1")
    assert result.exit_code == 0, result.output
    order = fake_tf.stacks("destroy")
    assert order.index("churn/features") < order.index("churn/data")
    assert order.index("fraud/features") < order.index("fraud/data")
    assert fake_tf.applied() == set()

    assert project.mlops("destroy", "-n", "prod").exit_code == 1  # no terminal
    monkeypatch.setattr(cli, "_interactive", lambda: True)
    assert project.mlops("destroy", "-n", "prod", input="prod\n").exit_code == 1
    assert "expected 'destroy prod'" in project.mlops("destroy", "-n", "prod", input="yes\n").output
    assert len(fake_tf.stacks("destroy")) == 4
    assert project.mlops("destroy", "-n", "prod", input="destroy prod\n").exit_code == 0
    assert len(fake_tf.stacks("destroy")) == 8


def test_a_failed_stack_stops_its_dependents_and_the_table_says_how_to_resume(project: Project,
                                                                              fake_tf: FakeTerraform):
    assert project.mlops("plan", "-n", "dev").exit_code == 0
    fake_tf.scenario(data={"fail": "apply"})
    result = project.mlops("apply", "-n", "dev", "--platform", "churn")
    assert result.exit_code == 1
    assert "churn/data      failed" in result.output and "simulated failure of apply" in result.output
    assert "churn/features  skipped    churn/data failed" in result.output
    assert "mlops apply -n dev --platform churn --template data" in result.output
    assert fake_tf.applied() == set()


def test_failed_plan_skips_dependents_other_platforms_finish(project: Project, fake_tf: FakeTerraform):
    fake_tf.scenario(data={"fail": "plan"}, features={"sleep": 0})
    result = project.mlops("plan", "-n", "dev", "--template", "data", "--template", "features")
    assert result.exit_code == 1
    assert "churn/data      failed" in result.output
    assert "churn/features  skipped    churn/data failed" in result.output
    assert "mlops plan -n dev --platform churn --template data --template features" in result.output


def test_drift_reports_drifted_stacks_with_exit_1(project: Project, fake_tf: FakeTerraform):
    assert project.mlops("apply", "-n", "dev").exit_code == 0
    clean = project.mlops("drift", "-n", "dev")
    assert clean.exit_code == 0 and "no drift in 4 stacks" in clean.output
    fake_tf.scenario(features={"drift": ["aws_sagemaker_feature_group.customer"]})
    result = project.mlops("drift", "-n", "dev")
    assert result.exit_code == 1  # a failed check, as everywhere; 2 is a user's error
    assert "drifted: 1 resources (aws_sagemaker_feature_group.customer)" in result.output
    drift_plans = [c["args"] for c in fake_tf.calls() if c["args"][0] == "plan" and "/.mlops/drift/" in c["args"][-1]]
    assert len(drift_plans) == 8 and all("-refresh-only" in args for args in drift_plans)


def test_selection_names_unknown_templates_and_platforms(project: Project, fake_tf: FakeTerraform):
    result = project.mlops("plan", "-n", "dev", "--template", "feature")
    assert result.exit_code == 2 and "--template feature: no such template" in result.output
    assert "Did you mean 'features'?" in result.output
    assert project.mlops("plan", "-n", "dev", "--platform", "nope").exit_code == 2


def test_an_old_terraform_is_a_clear_error(project: Project, fake_tf: FakeTerraform,
                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_TF_VERSION", "1.5.7")
    result = project.mlops("apply", "-n", "dev")
    assert result.exit_code == 1
    assert "is version 1.5.7; mlops needs terraform or tofu >= 1.6" in result.output


def test_apply_without_a_binary_is_a_clear_error(project: Project, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TF_BINARY", raising=False)
    monkeypatch.setattr(toolchain, "find_binary", lambda: None)
    result = project.mlops("apply", "-n", "dev")
    assert result.exit_code == 1 and "no terraform or tofu binary found on PATH" in result.output


# --- without terraform, and change detection ---------------------------------------------------------------

def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=root, check=True,
                   capture_output=True)


def _committed(project: Project) -> None:
    assert project.mlops("synth").exit_code == 0
    _git(project.root, "init", "-q")
    _git(project.root, "add", "-A")
    _git(project.root, "commit", "-qm", "init")


def test_offline_plan_is_a_configuration_diff_against_head(project: Project, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TF_BINARY", raising=False)
    monkeypatch.setattr(toolchain, "find_binary", lambda: None)
    _committed(project)
    blueprint = project.root / "blueprints/churn.py"
    blueprint.write_text(blueprint.read_text().replace('zones=["raw", "models"]', 'zones=["raw", "models", "extra"]'))
    result = project.mlops("plan", "-n", "dev")
    assert result.exit_code == 0, result.output
    assert "CONFIGURATION DIFF, NOT A STATE-AWARE PLAN" in result.output
    assert "validated 1 stacks: references, names" in result.output
    assert "+ aws_s3_bucket.extra" in result.output
    assert "~ aws_s3_bucket_policy.access_logs" in result.output
    assert "- aws_s3_bucket.extra" not in result.output


def test_changed_limits_a_run_to_changed_stacks_and_their_dependents(project: Project, fake_tf: FakeTerraform):
    _committed(project)
    nothing = project.mlops("plan", "-n", "dev", "--changed")
    assert nothing.exit_code == 0 and "nothing to plan" in nothing.output
    blueprint = project.root / "blueprints/churn.py"
    blueprint.write_text(blueprint.read_text().replace(
        'zones=["raw", "models"]', 'zones=["raw", "models"], log_retention_days=30 if name == "churn" else 365'))
    result = project.mlops("plan", "-n", "dev", "--changed")
    assert result.exit_code == 0, result.output
    assert "--changed: 2 stacks changed since HEAD or depend on one that did: churn/data, churn/features" in \
        result.output
    assert sorted(fake_tf.stacks("plan")) == ["churn/data"]  # features deferred until data is applied
    bad = project.mlops("plan", "-n", "dev", "--changed", "--base", "no-such-ref")
    assert bad.exit_code == 2 and "--base no-such-ref: not a commit" in bad.output



def test_emulator_starts_keeps_state_and_stops(project: Project) -> None:
    import socket
    import urllib.request

    pytest.importorskip("moto", reason="moto (pip install '.[local]') is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    namespaces = project.root / "namespaces.yaml"
    namespaces.write_text(namespaces.read_text() + f"  local:\n    aws:\n      account_id: '123456789012'\n"
                          f"      endpoint: {endpoint}\n      backend: {{bucket: state-local}}\n")
    try:
        started = project.mlops("emulator", "start")
        assert started.exit_code == 0, started.output
        assert f"started the local AWS emulator on {endpoint}" in started.output
        with urllib.request.urlopen(f"{endpoint}/state-local", timeout=10) as answer:  # the state bucket exists
            assert answer.status == 200
        assert "started" not in project.mlops("emulator", "start").output  # already running: left alone
        assert project.mlops("emulator", "status").output == f"{endpoint}: running\n"
        _emulator_fixes_hold(endpoint)
    finally:
        stopped = project.mlops("emulator", "stop")
    assert stopped.output == f"stopped the emulator on {endpoint}\n"
    assert project.mlops("emulator", "status").output == f"{endpoint}: not running\n"
    gone = project.mlops("destroy", "-n", "local")
    assert gone.exit_code == 0 and "nothing to destroy" in gone.output
    assert project.mlops("emulator", "stop", "-n", "dev").exit_code == 2


def _emulator_fixes_hold(endpoint: str) -> None:
    """What mlops_dsl/emulator_server.py adds to moto: tags of feature groups, deleting feature and
    model package groups (a missing group is ResourceNotFound, not an internal error), approvals
    that keep a package's metadata, and UpdateEndpoint."""
    import boto3
    from botocore.exceptions import ClientError

    sm = boto3.client("sagemaker", endpoint_url=endpoint, region_name="eu-west-1",
                      aws_access_key_id="mlops-local", aws_secret_access_key="mlops-local")
    group = sm.create_feature_group(
        FeatureGroupName="g", RecordIdentifierFeatureName="id", EventTimeFeatureName="t",
        FeatureDefinitions=[{"FeatureName": "id", "FeatureType": "String"},
                            {"FeatureName": "t", "FeatureType": "Fractional"}],
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://b/p"}}, RoleArn="arn:aws:iam::123456789012:role/r",
        Tags=[{"Key": "team", "Value": "ml"}])
    assert sm.list_tags(ResourceArn=group["FeatureGroupArn"])["Tags"] == [{"Key": "team", "Value": "ml"}]
    sm.delete_feature_group(FeatureGroupName="g")
    with pytest.raises(ClientError, match="ResourceNotFound"):
        sm.describe_feature_group(FeatureGroupName="g")
    sm.create_model_package_group(ModelPackageGroupName="m")
    # An approval keeps the package's metadata (the artifact digest), as AWS does.
    arn = sm.create_model_package(ModelPackageGroupName="m", ModelApprovalStatus="PendingManualApproval",
                                  CustomerMetadataProperties={"artifact_sha256": "ab"}, InferenceSpecification={
                                      "Containers": [{"Image": "i", "ModelDataUrl": "s3://b/m.tar.gz"}],
                                      "SupportedContentTypes": ["text/csv"],
                                      "SupportedResponseMIMETypes": ["text/csv"]})["ModelPackageArn"]
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"] == {"artifact_sha256": "ab"}
    sm.delete_model_package_group(ModelPackageGroupName="m")
    with pytest.raises(ClientError):
        sm.describe_model_package_group(ModelPackageGroupName="m")
    # A statement whose condition does not hold does not apply (the emulator stands in for HTTPS);
    # an unconditional denial still denies.
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1",
                      aws_access_key_id="mlops-local", aws_secret_access_key="mlops-local")
    for bucket, condition in (("secure-only", {"Bool": {"aws:SecureTransport": "false"}}), ("sealed", None)):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        statement = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}/*",
                     **({"Condition": condition} if condition else {})}
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    s3.put_object(Bucket="secure-only", Key="k", Body=b"x")
    with pytest.raises(ClientError, match=r"Forbidden|AccessDenied|403"):
        s3.put_object(Bucket="sealed", Key="k", Body=b"x")
    # UpdateEndpoint: the endpoint serves the new configuration; unknown names are refused.
    role = "arn:aws:iam::123456789012:role/r"
    for name in ("m1", "m2"):
        sm.create_model(ModelName=name, ExecutionRoleArn=role, PrimaryContainer={"Image": "i"})
        sm.create_endpoint_config(EndpointConfigName=f"c-{name}", ProductionVariants=[{
            "VariantName": "champion", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="e", EndpointConfigName="c-m1")
    sm.update_endpoint(EndpointName="e", EndpointConfigName="c-m2")
    assert sm.describe_endpoint(EndpointName="e")["EndpointConfigName"] == "c-m2"
    with pytest.raises(ClientError, match="Could not find endpoint configuration"):
        sm.update_endpoint(EndpointName="e", EndpointConfigName="c-none")
    with pytest.raises(ClientError, match="Could not find endpoint"):
        sm.update_endpoint(EndpointName="none", EndpointConfigName="c-m1")


def test_a_second_stack_s_init_links_the_cached_provider_and_does_not_reinstall_it(tmp_path: Path) -> None:
    """Stacks are planned in parallel: an init that re-installed the provider into the shared cache
    replaced the files another stack's plan was running from (seen in CI: "there is no package for
    registry.terraform.io/hashicorp/aws 5.100.0 cached in .terraform/providers")."""
    binary, mirror = toolchain.find_binary(), toolchain.find_mirror("aws")
    if binary is None or mirror is None:
        pytest.skip("needs a terraform binary and a local mirror of hashicorp/aws")
    rc = tmp_path / "terraformrc"
    rc.write_text(toolchain.cli_config(mirror, tmp_path / "cache"))
    outputs = []
    for name in ("first", "second"):
        stack = tmp_path / name
        stack.mkdir()
        (stack / "main.tf").write_text('terraform {\n  required_providers {\n'
                                       '    aws = { source = "hashicorp/aws" }\n  }\n}\n')
        outputs.append(subprocess.run([binary, "init", "-input=false", "-no-color"], cwd=stack, capture_output=True,
                                      text=True, check=True, timeout=300,
                                      env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                           "TF_CLI_CONFIG_FILE": str(rc), "CHECKPOINT_DISABLE": "1"}).stdout)
    assert "Installed hashicorp/aws" in outputs[0]
    assert "from the shared cache directory" in outputs[1] and "Installing hashicorp/aws" not in outputs[1]
