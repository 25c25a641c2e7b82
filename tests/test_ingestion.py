"""Ingestion (training/ingest.py, training/ingest_job.py): raw rows checked, computed, written to the
store, bad rows quarantined, each object once; on small data, and against the emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from training.ingest import ERROR_COLUMN, IngestionSpec, SpecError, prepare

ROOT = Path(__file__).resolve().parent.parent
FEATURES = [
    {"name": "customer_id", "type": "string", "column": "id"},
    {"name": "event_time", "type": "fractional", "column": "updated_at"},
    {"name": "tenure_months", "type": "integral", "column": "tenure"},
    {"name": "monthly_charges", "type": "fractional", "column": "monthly_charges"},
    {"name": "contract", "type": "string", "column": "contract"},
]


def spec_json(**over: Any) -> str:
    return json.dumps({
        "feature_group": "ingest-test-customer", "record_id": "customer_id", "event_time": "event_time",
        "features": FEATURES, "raw_bucket": "ingest-test-raw", "prefix": "customers/", "format": "csv",
        "quarantine_prefix": "quarantine/customer/", "ledger_bucket": "ingest-test-processed",
        "ledger_prefix": "ingestion-ledger/customer/", "concurrency": 3, **over})


def _spec(**over: Any) -> IngestionSpec:
    return IngestionSpec.from_json(spec_json(**over), "spec.json")


def test_prepare_computes_records_from_the_declared_source_columns() -> None:
    frame = pd.DataFrame({"id": ["C1", "C2"], "updated_at": ["2026-01-01T00:00:00Z", "1767225600.5"],
                          "tenure": ["12", ""], "monthly_charges": ["70.5", "20"], "contract": ["One year", "x"]})
    prepared = prepare(frame, _spec())
    assert prepared.refused.empty and prepared.rows == [1, 2]
    first = {v["FeatureName"]: v["ValueAsString"] for v in prepared.records[0]}
    assert first == {"customer_id": "C1", "event_time": "1767225600.0", "tenure_months": "12",
                     "monthly_charges": "70.5", "contract": "One year"}
    second = {v["FeatureName"]: v["ValueAsString"] for v in prepared.records[1]}
    assert "tenure_months" not in second and second["event_time"] == "1767225600.5"  # a missing value is left out


def test_string_event_times_are_written_as_the_store_accepts_them() -> None:
    spec = _spec(features=[{**f, "type": "string"} if f["name"] == "event_time" else f for f in FEATURES])
    frame = pd.DataFrame({"id": ["C1"], "updated_at": ["2026-03-01T10:00:00+01:00"]})
    values = {v["FeatureName"]: v["ValueAsString"] for v in prepare(frame, spec).records[0]}
    assert values["event_time"] == "2026-03-01T09:00:00Z"


def test_bad_rows_are_refused_with_every_reason_and_never_dropped() -> None:
    frame = pd.DataFrame({"id": ["C1", "", "C3", "C4"],
                          "updated_at": ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "yesterday", "1"],
                          "tenure": ["1", "2", "3.5", "9" * 30], "monthly_charges": ["1", "2", "inf", "3"],
                          "contract": ["a", "b", "c", "d"]})
    prepared = prepare(frame, _spec())
    assert prepared.rows == [1] and len(prepared.records) + len(prepared.refused) == len(frame)
    reasons = prepared.refused[ERROR_COLUMN].tolist()
    assert reasons[0] == "'id' (customer_id, the record id): missing value"
    assert "'updated_at' (event_time, the event time): 'yesterday' is not seconds since the epoch" in reasons[1]
    assert "'tenure' (tenure_months, integral): '3.5' is not a whole number" in reasons[1]
    assert "'monthly_charges' (monthly_charges, fractional): 'inf' is not a finite number" in reasons[1]
    assert "out of the 64-bit range" in reasons[2]


def test_parquet_values_keep_their_types_through_the_checks() -> None:
    import io

    from training.ingest_job import read_object

    buffer = io.BytesIO()
    pd.DataFrame({"id": ["C1", "C2"], "updated_at": pd.to_datetime(["2026-01-01T00:00:00Z", None], utc=True),
                  "tenure": pd.array([3, None], dtype="Int64"), "monthly_charges": [1.5, float("nan")]}).to_parquet(
        buffer, index=False)
    frame = read_object(buffer.getvalue(), _spec(format="parquet"), "customers/part.parquet")
    prepared = prepare(frame, _spec(format="parquet"))
    assert prepared.records == [[{"FeatureName": "customer_id", "ValueAsString": "C1"},
                                 {"FeatureName": "event_time", "ValueAsString": "1767225600.0"},
                                 {"FeatureName": "tenure_months", "ValueAsString": "3"},
                                 {"FeatureName": "monthly_charges", "ValueAsString": "1.5"}]]
    assert prepared.refused[ERROR_COLUMN].tolist() == ["'updated_at' (event_time, the event time): missing value"]
    with pytest.raises(ValueError, match=r"customers/part\.parquet: not a readable parquet file"):
        read_object(b"id,updated_at\n", _spec(format="parquet"), "customers/part.parquet")


def test_a_file_without_the_record_id_column_is_quarantined_whole() -> None:
    prepared = prepare(pd.DataFrame({"customer": ["C1"], "updated_at": ["1"]}), _spec())
    assert prepared.records == [] and len(prepared.refused) == 1
    assert prepared.refused[ERROR_COLUMN].iloc[0].startswith("the file has no column 'id'")


def test_a_bad_spec_names_the_file_and_what_is_wrong() -> None:
    with pytest.raises(SpecError, match=r"spec.json: 'nope' is not one of the features"):
        _spec(record_id="nope")
    with pytest.raises(SpecError, match=r"spec.json: not an ingestion spec: KeyError"):
        IngestionSpec.from_json("{}", "spec.json")


# Against the emulator: a raw CSV in the raw bucket, the entry point run on this machine.

@pytest.fixture(scope="module")
def store(aws_emulator: dict[str, str]) -> dict[str, Any]:
    import boto3

    region, url = aws_emulator["region"], aws_emulator["endpoint"]
    s3 = boto3.client("s3", region_name=region, endpoint_url=url)
    for bucket in ("ingest-test-raw", "ingest-test-processed"):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    types = {"string": "String", "fractional": "Fractional", "integral": "Integral"}
    boto3.client("sagemaker", region_name=region, endpoint_url=url).create_feature_group(
        FeatureGroupName="ingest-test-customer", RecordIdentifierFeatureName="customer_id",
        EventTimeFeatureName="event_time",
        FeatureDefinitions=[{"FeatureName": f["name"], "FeatureType": types[f["type"]]} for f in FEATURES],
        OnlineStoreConfig={"EnableOnlineStore": True},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://ingest-test-processed/feature-store"}},
        RoleArn="arn:aws:iam::123456789012:role/feature-store")
    s3.put_object(Bucket="ingest-test-processed", Key="ingestion/customer.json", Body=spec_json().encode())
    return {"s3": s3, "runtime": boto3.client("sagemaker-featurestore-runtime", region_name=region,
                                              endpoint_url=url), "url": url, "region": region}


def _ingest(store: dict[str, Any], spec: str = "s3://ingest-test-processed/ingestion/customer.json",
            entry_point: bool = False) -> subprocess.CompletedProcess[str]:
    """`python -m training ingest` as a runner on this machine starts it; in this process unless
    `entry_point` (a process start costs seconds: the first run goes through the real entry point)."""
    args = ["--spec", spec, "--endpoint-url", store["url"], "--region", store["region"], "--metrics-namespace",
            "MLOps/IngestionTest"]
    if entry_point:
        return subprocess.run([sys.executable, "-m", "training", "ingest", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, check=False)
    import contextlib
    import io

    from training import ingest_job

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ingest_job.main(spec, store["url"], store["region"], "MLOps/IngestionTest")
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_a_raw_csv_is_ingested_once_and_its_bad_rows_quarantined(store: dict[str, Any]) -> None:
    s3, runtime = store["s3"], store["runtime"]
    s3.put_object(Bucket="ingest-test-raw", Key="customers/2026-01-01.csv", Body=(
        b"id,updated_at,tenure,monthly_charges,contract\n"
        b"C1,2026-01-01T00:00:00Z,12,70.5,One year\n"
        b"C2,2026-01-01T00:00:00Z,three,20,Two year\n"
        b"C3,2026-01-01T00:00:00Z,5,,Month-to-month\n"))
    s3.put_object(Bucket="ingest-test-raw", Key="elsewhere/ignored.csv", Body=b"id\nC9\n")
    first = _ingest(store, entry_point=True)
    assert first.returncode == 0, first.stderr
    assert "customers/2026-01-01.csv: 3 rows, 2 written to ingest-test-customer, 1 quarantined" in first.stdout
    got = runtime.get_record(FeatureGroupName="ingest-test-customer", RecordIdentifierValueAsString="C1")
    assert {v["FeatureName"]: v["ValueAsString"] for v in got["Record"]} == {
        "customer_id": "C1", "event_time": "1767225600.0", "tenure_months": "12", "monthly_charges": "70.5",
        "contract": "One year"}
    assert "Record" not in runtime.get_record(FeatureGroupName="ingest-test-customer",
                                              RecordIdentifierValueAsString="C2")
    quarantined = s3.get_object(Bucket="ingest-test-raw",
                                Key="quarantine/customer/customers/2026-01-01.csv.rejected.csv")["Body"].read().decode()
    assert quarantined.splitlines()[0] == f"_row,id,updated_at,tenure,monthly_charges,contract,{ERROR_COLUMN}"
    assert quarantined.splitlines()[1].startswith("2,C2,") and "'three' is not a whole number" in quarantined

    import boto3

    cloudwatch = boto3.client("cloudwatch", region_name=store["region"], endpoint_url=store["url"])
    sent = cloudwatch.get_metric_statistics(
        Namespace="MLOps/IngestionTest", MetricName="QuarantinedRows", Statistics=["Sum"], Period=60,
        Dimensions=[{"Name": "FeatureGroup", "Value": "ingest-test-customer"}],
        StartTime=pd.Timestamp.now(tz="UTC") - pd.Timedelta("1h"),
        EndTime=pd.Timestamp.now(tz="UTC") + pd.Timedelta("1h"))
    assert [p["Sum"] for p in sent["Datapoints"]] == [1.0]  # what the stack's alarm on quarantined rows reads

    rerun = _ingest(store)  # idempotent: the ledger holds the object's key and ETag
    assert rerun.returncode == 0 and "0 new objects ingested" in rerun.stdout

    s3.put_object(Bucket="ingest-test-raw", Key="customers/2026-01-01.csv", Body=(  # a changed object is new
        b"id,updated_at,tenure,monthly_charges,contract\nC1,2026-02-01T00:00:00Z,13,71,One year\n"))
    changed = _ingest(store)
    assert "1 new objects ingested into ingest-test-customer (1 records" in changed.stdout
    got = runtime.get_record(FeatureGroupName="ingest-test-customer", RecordIdentifierValueAsString="C1")
    assert {v["FeatureName"]: v["ValueAsString"] for v in got["Record"]}["tenure_months"] == "13"


def test_a_spec_that_cannot_be_read_is_a_user_error(store: dict[str, Any]) -> None:
    result = _ingest(store, "s3://ingest-test-processed/none.json")
    assert result.returncode == 2 and result.stderr.startswith("Error: s3://ingest-test-processed/none.json: cannot")


# The blueprint parameters and what AWS and Azure render of them.

def _store(**ingestion: Any):
    from mlops_dsl import DataInfrastructure, Feature, FeatureGroup, FeatureStore, Ingestion

    data = DataInfrastructure()
    group = FeatureGroup("customer", record_id="id", event_time="ts", features=[
        Feature("id", "string", source="customer"), Feature("ts", "fractional"), Feature("tenure", "integral")],
        ingestion=Ingestion("customers/", **ingestion))
    other = FeatureGroup("account", record_id="id", event_time="ts", features=[
        Feature("id", "string"), Feature("ts", "fractional"), Feature("senior", "integral")])
    return data, FeatureStore(data, groups=[group, other])


@pytest.mark.parametrize(("build", "expected"), [
    (lambda m: m.Ingestion("customers"), "'groups[0].ingestion.prefix' parameter of FeatureStore 'features' must "
                                         "be a string of an S3 key prefix ending with '/'"),
    (lambda m: m.Ingestion("customers/", schedule=None, on_new_data=False),
     "groups[0].ingestion: schedule is None and on_new_data is False: nothing would ever start the ingestion"),
    (lambda m: m.Ingestion("customers/", schedule="every hour"), "'groups[0].ingestion.schedule' parameter"),
    (lambda m: m.Ingestion("customers/", concurrency=0), "'groups[0].ingestion.concurrency' parameter"),
    (lambda m: m.Ingestion("quarantine/x/"), "inside quarantine/, where the ingestion writes bad rows"),
])
def test_ingestion_parameters_are_validated_at_declaration(build, expected: str) -> None:
    import mlops_dsl as m

    data = m.DataInfrastructure()
    with pytest.raises(m.ParameterError) as caught:
        m.FeatureStore(data, groups=[m.FeatureGroup("customer", record_id="id", event_time="ts", features=[
            m.Feature("id", "string"), m.Feature("ts", "fractional")], ingestion=build(m))])
    assert expected in str(caught.value)


def test_zones_prefixes_and_sources_are_checked_across_groups() -> None:
    import mlops_dsl as m

    def group(name: str, prefix: str, **feature: str) -> Any:
        return m.FeatureGroup(name, record_id="id", event_time="ts", features=[
            m.Feature("id", "string", **feature), m.Feature("ts", "fractional", **feature)],
            ingestion=m.Ingestion(prefix))

    with pytest.raises(m.ParameterError) as caught:
        m.FeatureStore(m.DataInfrastructure(zones=["processed", "models"]), groups=[group("aa", "in/"),
                                                                                    group("bb", "in/b/")])
    text = str(caught.value)
    assert "raw_zone 'raw' is not one of the zones of DataInfrastructure 'data' (processed, models)" in text
    assert "ingestion prefixes 'in/' and 'in/b/' overlap" in text
    with pytest.raises(m.ParameterError, match=r"groups\[1\]: features: the raw column 'x' is the source of more than"):
        m.FeatureStore(m.DataInfrastructure(), groups=[group("aa", "in/"), group("bb", "in/b/", source="x")])


def test_aws_renders_a_least_privilege_ingestion_per_group() -> None:
    from mlops_dsl import Platform

    from .test_aws_templates import _resources, _stacks, _text

    data, store = _store()
    stack = _stacks(Platform("churn", cloud="aws").add(data, store), ns="dev")["features"].stack
    spec = _resources(stack, "aws_s3_object")["ingestion_spec_customer"].body["content"].args[0]
    assert spec["features"][0] == {"name": "id", "type": "string", "column": "customer"}
    assert (spec["prefix"], spec["quarantine_prefix"]) == ("customers/", "quarantine/customer/")
    assert "ingestion_spec_account" not in _resources(stack, "aws_s3_object")  # no ingestion declared
    def flat(value: Any) -> str:
        return " ".join(_text(value).split())

    policy = flat(_resources(stack, "aws_iam_role_policy")["ingestion_customer"].body["policy"])
    assert '"sagemaker:PutRecord"' in policy and "aws_sagemaker_feature_group.customer.arn" in policy
    assert "aws_sagemaker_feature_group.account" not in policy  # exactly its own group
    for resource in ('outputs.bucket_arns["raw"]}/customers/*', 'outputs.bucket_arns["raw"]}/quarantine/customer/*',
                     'outputs.bucket_arns["processed"]}/ingestion-ledger/customer/*',
                     'outputs.bucket_arns["processed"]}/ingestion/customer.json',
                     "repository/churn-dev/training"):
        assert resource in policy, resource
    assert '"s3:DeleteObject"' not in policy and '"s3:*"' not in policy
    assert '"cloudwatch:namespace" = "MLOps/Ingestion"' in policy
    alarm = _resources(stack, "aws_cloudwatch_metric_alarm")["ingestion_customer_quarantined"].body
    assert (alarm["metric_name"], alarm["namespace"], alarm["threshold"]) == ("QuarantinedRows", "MLOps/Ingestion", 0)
    rule = flat(_resources(stack, "aws_cloudwatch_event_rule")["ingestion_customer"].body["event_pattern"])
    assert '"Object Created"' in rule and 'prefix = "customers/"' in rule and 'bucket_names["raw"]' in rule
    machine = flat(_resources(stack, "aws_sfn_state_machine")["ingestion_customer"].body["definition"])
    assert "arn:aws:states:::sagemaker:createProcessingJob.sync" in machine
    assert '"ingest",' in machine and "EnableNetworkIsolation = false" in machine
    assert "111111111111.dkr.ecr.eu-west-1.amazonaws.com/churn-dev/training:${local.training_image_tag}" in machine
    assert {r.body["schedule_expression"] for r in _resources(stack, "aws_scheduler_schedule").values()} == {
        "rate(1 hour)"}
    without = _stacks(Platform("churn", cloud="aws").add(*_store(on_new_data=False, schedule="rate(6 hours)")),
                      ns="dev")["features"].stack
    assert not _resources(without, "aws_cloudwatch_event_rule")
    assert {r.body["schedule_expression"] for r in _resources(without, "aws_scheduler_schedule").values()} == {
        "rate(6 hours)"}


def test_azure_materializes_on_the_ingestion_schedule_and_refuses_a_cron() -> None:
    from mlops_dsl import BlueprintError, Image, Platform
    from mlops_dsl.namespaces import parse

    from .test_azure import NAMESPACES as AZURE_NAMESPACES

    azureml = Image("training", target="azureml")
    data, store = _store(schedule="rate(2 hours)", image=azureml)
    builds = Platform("churn", cloud="azure").add(data, store).synth(parse(AZURE_NAMESPACES)["dev"],
                                                                     image_tags={"training:azureml": "a" * 12})
    stack = next(b for b in builds if b.template == "features").stack
    version = next(r for r in stack.resources if r.name == "featureset_customer_v1")
    settings = version.body["body"]["properties"]["materializationSettings"]
    assert settings["schedule"] == {"triggerType": "Recurrence", "frequency": "Hour", "interval": 2, "timeZone": "UTC"}
    assert settings["resource"] == {"instanceType": "standard_e4s_v3"}
    other = next(r for r in stack.resources if r.name == "featureset_account_v1")
    assert "schedule" not in other.body["body"]["properties"]["materializationSettings"]
    data, store = _store(schedule="cron(0 3 * * ? *)", image=azureml)
    with pytest.raises(BlueprintError, match=r"groups\[0\].ingestion.schedule: 'cron\(0 3 \* \* \? \*\)': Azure ML "
                                             r"materializes feature sets on a recurrence only"):
        Platform("churn", cloud="azure").add(data, store).synth(parse(AZURE_NAMESPACES)["dev"],
                                                                image_tags={"training:azureml": "a" * 12})


def test_the_state_machine_runs_one_job_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rendered definition on moto's Step Functions interpreter: with no job of the group in
    progress it goes on to the Processing job (which moto cannot run `.sync`: that is where it
    stops here); with one in progress it ends at once."""
    import time
    import uuid

    import boto3
    import moto
    from moto.sagemaker.models import sagemaker_backends

    from mlops_dsl import Platform

    from .test_aws_templates import _resources, _stacks

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    stack = _stacks(Platform("churn", cloud="aws").add(*_store()), ns="dev")["features"].stack
    definition = _resources(stack, "aws_sfn_state_machine")["ingestion_customer"].body["definition"].args[0]
    role = "arn:aws:iam::111111111111:role/ingestion"
    prefix = definition["States"]["Running jobs"]["Parameters"]["NameContains"]
    with moto.mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn, sagemaker = (boto3.client(s, region_name="eu-west-1") for s in ("stepfunctions", "sagemaker"))
        machine = sfn.create_state_machine(name="ingest", roleArn=role, definition=json.dumps(
            definition, default=lambda _: role))["stateMachineArn"]  # Terraform references as a literal

        def run() -> tuple[str, list[str], str]:
            arn = sfn.start_execution(stateMachineArn=machine, name=str(uuid.uuid4()), input="{}")["executionArn"]
            for _ in range(200):
                described = sfn.describe_execution(executionArn=arn)
                if described["status"] != "RUNNING":
                    break
                time.sleep(0.05)
            events = sfn.get_execution_history(executionArn=arn)["events"]
            states = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
            causes = [e["executionFailedEventDetails"]["cause"] for e in events if "executionFailedEventDetails" in e]
            return described["status"], states, " ".join(causes)

        status, states, cause = run()
        assert (status, states) == ("FAILED", ["Running jobs", "One running?"])
        assert "createProcessingJob.sync" in cause  # it went on to start the job
        sagemaker.create_processing_job(
            ProcessingJobName=f"{prefix}-0123456789abcdef0123456789abcdef", RoleArn=role,
            AppSpecification={"ImageUri": "image"}, ProcessingResources={"ClusterConfig": {
                "InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}})
        for job in sagemaker_backends["123456789012"]["eu-west-1"].processing_jobs.values():
            job.processing_job_status = "InProgress"  # moto's jobs complete at once
        assert run()[:2] == ("SUCCEEDED", ["Running jobs", "One running?", "Already ingesting"])
