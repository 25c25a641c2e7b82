"""Azure ingestion: the shared run (training/ingest_run.py) on Azure Blob Storage against Azurite
(training/ingest_azure.py), and its rendering (mlops_dsl/azure/feature_ingestion.py)."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pandas as pd
import pytest
from azure.storage.blob import BlobLeaseClient

from tests.test_drift_job import azurite  # noqa: F401  (the module's Azurite fixture, reused)
from tests.test_ingestion import FEATURES

RAW, OFFLINE = "raw", "processed"


def spec_document(**over: Any) -> dict[str, Any]:
    return {"feature_group": "customer", "record_id": "customer_id", "event_time": "event_time",
            "features": FEATURES, "raw_bucket": RAW, "prefix": "customers/", "format": "csv",
            "quarantine_prefix": "quarantine/customer/", "ledger_bucket": OFFLINE,
            "ledger_prefix": "ingestion-ledger/customer/", "output_bucket": OFFLINE,
            "output_prefix": "featuresets/customer/source/", **over}


@pytest.fixture()
def lake(azurite: str, monkeypatch, tmp_path) -> dict[str, Any]:  # noqa: F811
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite)
    for name in (RAW, OFFLINE):
        container = service.get_container_client(name)
        if container.exists():
            container.delete_container()
        service.create_container(name)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(spec_document()))
    return {"raw": service.get_container_client(RAW), "offline": service.get_container_client(OFFLINE),
            "spec": str(spec), "tmp": tmp_path}


def _run(lake: dict[str, Any], capsys, *extra: str) -> tuple[int, str, str]:
    from training.ingest_azure import main

    code = main(["--spec", lake["spec"], *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def _parquet(container: Any, prefix: str) -> dict[str, pd.DataFrame]:
    return {b.name: pd.read_parquet(io.BytesIO(container.download_blob(b.name).readall()))
            for b in container.list_blobs(name_starts_with=prefix)}


CSV = (b"id,updated_at,tenure,monthly_charges,contract\n"
       b"C1,2026-01-01T00:00:00Z,12,70.5,One year\n"
       b"C2,2026-01-01T00:00:00Z,three,20,Two year\n"
       b"C3,1767225600,,19.5,Month-to-month\n")


def test_a_raw_csv_becomes_typed_parquet_of_the_source_path_and_its_bad_rows_are_quarantined(
        lake: dict[str, Any], capsys) -> None:
    raw, offline = lake["raw"], lake["offline"]
    raw.upload_blob("customers/2026-01-01.csv", CSV)
    raw.upload_blob("elsewhere/ignored.csv", b"id\nC9\n")
    code, out, err = _run(lake, capsys)
    assert code == 0, err
    assert "/raw/customers/2026-01-01.csv: 3 rows, 2 written to" in out
    assert "featuresets/customer/source/, 1 quarantined, quarantined to " in out
    written = _parquet(offline, "featuresets/customer/source/")
    [(name, frame)] = written.items()
    etag = raw.get_blob_client("customers/2026-01-01.csv").get_blob_properties().etag.strip('"')
    assert name == f"featuresets/customer/source/customers/2026-01-01.csv/{etag}.parquet"
    assert frame["customer_id"].tolist() == ["C1", "C3"]
    assert isinstance(frame["event_time"].dtype, pd.DatetimeTZDtype) and str(frame["event_time"].dtype.tz) == "UTC"
    assert frame["event_time"].tolist() == [pd.Timestamp("2026-01-01", tz="UTC")] * 2
    assert frame["tenure_months"].tolist()[0] == 12 and pd.isna(frame["tenure_months"].tolist()[1])
    assert str(frame["tenure_months"].dtype) == "Int64" and frame["monthly_charges"].tolist() == [70.5, 19.5]
    rejected = raw.download_blob("quarantine/customer/customers/2026-01-01.csv.rejected.csv").readall().decode()
    assert rejected.splitlines()[0] == "_row,id,updated_at,tenure,monthly_charges,contract,_ingestion_error"
    assert rejected.splitlines()[1].startswith("2,C2,") and "'three' is not a whole number" in rejected
    marker = json.loads(offline.download_blob(
        f"ingestion-ledger/customer/customers/2026-01-01.csv/{etag}.json").readall())
    assert (marker["rows"], marker["written"], marker["quarantined"]) == (3, 2, 1)

    # A rerun finds nothing new and writes nothing.
    code, out, _ = _run(lake, capsys)
    assert code == 0 and out.startswith("0 new objects ingested")
    assert len(_parquet(offline, "featuresets/")) == 1

    # A replaced object (new ETag) is ingested again, beside the first file.
    raw.upload_blob("customers/2026-01-01.csv", CSV.replace(b"70.5", b"71.5"), overwrite=True)
    code, out, _ = _run(lake, capsys)
    assert code == 0 and "3 rows, 2 written" in out
    assert sorted(f["monthly_charges"].tolist()[0] for f in _parquet(offline, "featuresets/").values()) == [70.5, 71.5]


def test_a_run_ends_at_once_while_another_run_of_the_group_holds_its_lease(lake: dict[str, Any], capsys) -> None:
    """Two runs of a group never work at once: the second finds the lease on the lock blob beside the
    ledger, ends with 0 and writes nothing; once the lease is gone a run ingests."""
    raw, offline = lake["raw"], lake["offline"]
    raw.upload_blob("customers/2026-01-01.csv", CSV)
    lock = offline.get_blob_client("ingestion-ledger/customer/run.lock")
    lock.upload_blob(b"")
    held = lock.acquire_lease(lease_duration=60)  # another run, in the middle of its work
    code, out, err = _run(lake, capsys)
    assert code == 0, err
    assert "ingestion-ledger/customer/run.lock is leased by another run of customer: this one ends" in out
    assert not _parquet(offline, "featuresets/") and not list(offline.list_blobs(
        name_starts_with="ingestion-ledger/customer/customers/"))
    held.release()
    code, out, err = _run(lake, capsys)
    assert code == 0 and "3 rows, 2 written" in out, err
    # the run let go of its lease: another could take it at once
    lock.acquire_lease(lease_duration=15).release()


def test_the_lock_holder_lists_again_for_what_arrived_while_it_worked(lake: dict[str, Any], capsys,
                                                                      monkeypatch) -> None:
    """An object that lands during a run (whose own run ended on the lock) is ingested by the holder's
    second listing, not left for the schedule."""
    from training import ingest_run

    raw = lake["raw"]
    raw.upload_blob("customers/a.csv", CSV)
    real, passes = ingest_run.run, []

    def run_while_b_arrives(*args, **kwargs):
        summary = real(*args, **kwargs)
        if not passes:
            raw.upload_blob("customers/b.csv", CSV)  # arrives after the first listing
        passes.append(len(summary.results))
        return summary

    monkeypatch.setattr(ingest_run, "run", run_while_b_arrives)
    code, out, err = _run(lake, capsys)
    assert code == 0, err
    # a pass that ingested something is followed by another listing, until one finds nothing new
    assert passes == [1, 1, 0] and out.count("listing again for objects that arrived during the run") == 2
    assert "/raw/customers/b.csv: 3 rows, 2 written" in out
    assert len(_parquet(lake["offline"], "featuresets/customer/source/")) == 2


@pytest.mark.parametrize("create_status", [409, 412])
def test_a_first_run_racing_another_for_the_lock_blob_ends_on_the_lock(create_status: int) -> None:
    """Real Azure answers a create over a leased blob 412 LeaseIdMissing, where Azurite says 409
    (Azure/Azurite#2637): both mean another run made the lock first, and the acquire decides."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    from training.run_lock import LockHeld, RunLock

    def refusal(status: int) -> HttpResponseError:
        error = HttpResponseError(message=str(status))
        error.status_code = status
        return error

    calls: list[str] = []

    class Blob:
        def acquire_lease(self, lease_duration: int):
            calls.append("acquire")
            if len(calls) == 1:
                raise ResourceNotFoundError("BlobNotFound")
            raise refusal(409)  # LeaseAlreadyPresent: the other run holds it

        def upload_blob(self, body: bytes, overwrite: bool):
            calls.append(f"create overwrite={overwrite}")
            raise refusal(create_status)

    class Container:
        def get_blob_client(self, key: str) -> Blob:
            return Blob()

    with pytest.raises(LockHeld), RunLock(Container(), "ingestion-ledger/customer/run.lock"):
        pass
    assert calls == ["acquire", "create overwrite=False", "acquire"]


def test_a_lost_renewal_is_reported_and_the_run_goes_on(lake: dict[str, Any]) -> None:
    from training.run_lock import LockHeld, RunLock

    offline = lake["offline"]
    with RunLock(offline, "ingestion-ledger/customer/run.lock", renew_every=0.2) as lock:
        with pytest.raises(LockHeld), RunLock(offline, "ingestion-ledger/customer/run.lock"):
            pass
        time.sleep(0.5)  # renewed: still ours
        assert lock.lost is None
        assert offline.get_blob_client("ingestion-ledger/customer/run.lock").get_blob_properties().lease.state == \
            "leased"
        BlobLeaseClient(offline.get_blob_client("ingestion-ledger/customer/run.lock")).break_lease(lease_break_period=0)
        time.sleep(0.5)
        assert lock.lost is not None and "Lease" in lock.lost


def test_parquet_input_and_a_broken_object_that_is_retried_next_run(lake: dict[str, Any], capsys) -> None:
    raw, offline = lake["raw"], lake["offline"]
    (lake["tmp"] / "spec.json").write_text(json.dumps(spec_document(format="parquet")))
    buffer = io.BytesIO()
    pd.DataFrame({"id": ["P1"], "updated_at": pd.to_datetime(["2026-02-01T00:00:00Z"], utc=True),
                  "tenure": pd.array([4], dtype="Int64")}).to_parquet(buffer, index=False)
    raw.upload_blob("customers/a.parquet", buffer.getvalue())
    raw.upload_blob("customers/b.parquet", b"not parquet")
    raw.upload_blob("customers/_SUCCESS", b"")
    code, out, _ = _run(lake, capsys)
    assert code == 1
    assert "customers/b.parquet: not ingested (ValueError: " in out and "the next run retries it" in out
    assert "1 new objects ingested" in out and "1 failed" in out
    [frame] = _parquet(offline, "featuresets/").values()
    assert frame["customer_id"].tolist() == ["P1"] and frame["tenure_months"].tolist() == [4]
    markers = [b.name for b in offline.list_blobs(name_starts_with="ingestion-ledger/") if b.name.endswith(".json")]
    assert len(markers) == 1 and markers[0].startswith("ingestion-ledger/customer/customers/a.parquet/")
    code, out, _ = _run(lake, capsys)  # only the broken one is tried again
    assert code == 1 and "customers/a.parquet" not in out and "customers/b.parquet: not ingested" in out


def test_a_file_without_the_record_id_column_is_quarantined_whole(lake: dict[str, Any], capsys) -> None:
    lake["raw"].upload_blob("customers/x.csv", b"updated_at,tenure\n1,2\n3,4\n")
    code, out, _ = _run(lake, capsys)
    assert code == 0 and "2 rows, 0 written" in out
    assert not _parquet(lake["offline"], "featuresets/")  # no empty file for the feature set to read
    rejected = lake["raw"].download_blob("quarantine/customer/customers/x.csv.rejected.csv").readall().decode()
    assert "the file has no column 'id'" in rejected and len(rejected.splitlines()) == 3


def test_bad_specs_and_arguments_exit_2(lake: dict[str, Any], capsys, monkeypatch) -> None:
    no_output = lake["tmp"] / "aws.json"
    no_output.write_text(json.dumps({k: v for k, v in spec_document().items() if not k.startswith("output_")}))
    assert _run({**lake, "spec": str(no_output)}, capsys)[0] == 2
    assert _run({**lake, "spec": str(lake["tmp"] / "none.json")}, capsys)[0] == 2
    code, _, err = _run(lake, capsys, "--metrics-resource", "/subscriptions/x")
    assert code == 2 and "--metrics-region" in err
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    code, _, err = _run(lake, capsys)
    assert code == 2 and "--account-url is required" in err


def test_the_counts_as_azure_monitor_custom_metrics() -> None:
    from datetime import UTC, datetime

    from training.ingest import IngestionSpec
    from training.ingest_azure import monitor_bodies
    from training.ingest_run import ObjectResult, Summary

    spec = IngestionSpec.from_json(json.dumps(spec_document()), "spec")
    summary = Summary([ObjectResult("a", 3, 2, 1), ObjectResult("b", error="x")])
    bodies = monitor_bodies(spec, summary, "MLOps/Ingestion", datetime(2026, 1, 1, tzinfo=UTC))
    assert [b["data"]["baseData"]["metric"] for b in bodies] == ["RecordsWritten", "QuarantinedRows", "FailedObjects"]
    assert bodies[1] == {"time": "2026-01-01T00:00:00Z", "data": {"baseData": {
        "metric": "QuarantinedRows", "namespace": "MLOps/Ingestion", "dimNames": ["FeatureGroup"],
        "series": [{"dimValues": ["customer"], "min": 1.0, "max": 1.0, "sum": 1.0, "count": 1}]}}}
    assert bodies[2]["data"]["baseData"]["series"][0]["sum"] == 1.0


# --- Rendering (mlops_dsl/azure/feature_ingestion.py) ---------------------------------------------

def _features(**ingestion: Any):
    from mlops_dsl import Image, Ingestion, Platform
    from mlops_dsl.namespaces import parse
    from tests.test_azure import NAMESPACES
    from tests.test_ingestion import _store

    data, store = _store(**{"image": Image("training", target="azureml"), **ingestion})
    platform = Platform("churn", cloud="azure").add(data, store)
    assert isinstance(store.groups[0].ingestion, Ingestion)
    builds = platform.synth(parse(NAMESPACES)["dev"], image_tags={"training:azureml": "a" * 12})
    return next(b for b in builds if b.template == "features").stack, store


def _of(stack, kind: str) -> dict:
    return {r.name: r.body for r in stack.resources if r.type == kind}


def test_each_ingested_group_runs_the_azure_job_on_a_schedule_of_the_feature_store() -> None:
    from mlops_dsl.azure.feature_ingestion import spec_document
    from training.ingest import IngestionSpec

    stack, store = _features(schedule="rate(2 hours)")
    schedules = _of(stack, "azapi_resource")
    [name] = [n for n in schedules if n.endswith("_schedule")]
    properties = schedules[name]["body"]["properties"]
    assert properties["trigger"] == {"triggerType": "Recurrence", "frequency": "Hour", "interval": 2, "timeZone": "UTC"}
    job = properties["action"]["jobDefinition"]
    assert properties["action"]["actionType"] == "CreateJob" and job["jobType"] == "Command"
    assert "python -m training.ingest_azure --spec spec.json" in job["command"]
    assert job["identity"] == {"identityType": "Managed"}
    # The spec in the command is what the job reads: it parses, and it writes to the feature set's source path.
    spec = IngestionSpec.from_json(json.dumps(spec_document(store, store.groups[0])), "spec")
    assert (spec.output_bucket, spec.output_prefix) == ("processed", "featuresets/customer/source/")
    assert (spec.raw_bucket, spec.prefix, spec.quarantine_prefix) == ("raw", "customers/", "quarantine/customer/")
    clusters = _of(stack, "azurerm_machine_learning_compute_cluster")
    [cluster] = clusters.values()
    assert len(cluster["name"]) <= 16 and cluster["scale_settings"].body["min_node_count"] == 0
    assert cluster["local_auth_enabled"] is False and cluster["identity"].body["type"] == "UserAssigned"


def test_the_ingestion_cluster_reaches_and_may_pull_from_the_platform_registry_only() -> None:
    """The registry takes no public traffic: without a managed-network rule to it the cluster cannot pull
    the job's image; AcrPull is on the registry, not on the resource group."""
    stack, _ = _features()
    registry = "data.terraform_remote_state.data.outputs.container_registry_id"
    pull = _of(stack, "azurerm_role_assignment")["ingestion_customer_pull"]
    assert (pull["role_definition_name"], pull["scope"].text) == ("AcrPull", registry)
    rules = _of(stack, "azapi_resource")["features"]["body"]["properties"]["managedNetwork"]["outboundRules"]
    rule = rules["container-registry"]
    assert rule["type"] == "PrivateEndpoint" and rule["destination"]["subresourceTarget"] == "registry"
    assert rule["destination"]["serviceResourceId"].text == registry
    # the image the environment names is on that registry's host
    image = _of(stack, "azapi_resource")["ingestion_customer_environment_version"]["body"]["properties"]["image"]
    assert image.parts[0] == ""
    assert image.parts[1].text == "data.terraform_remote_state.data.outputs.registry_login_server"
    assert image.parts[2] == "/churn-dev/training-azureml:"  # the repository `mlops images` pushes to


def test_a_feature_store_without_ingestion_has_no_registry_rule() -> None:
    from mlops_dsl import DataInfrastructure, Feature, FeatureGroup, FeatureStore, Platform
    from mlops_dsl.namespaces import parse
    from tests.test_azure import NAMESPACES

    data = DataInfrastructure()
    store = FeatureStore(data, groups=[FeatureGroup("customer", record_id="id", event_time="ts", features=[
        Feature("id", "string"), Feature("ts", "fractional"), Feature("tenure", "integral")])])
    builds = Platform("churn", cloud="azure").add(data, store).synth(parse(NAMESPACES)["dev"], image_tags={})
    stack = next(b for b in builds if b.template == "features").stack
    rules = _of(stack, "azapi_resource")["features"]["body"]["properties"]["managedNetwork"]["outboundRules"]
    assert "container-registry" not in rules and not _of(stack, "azurerm_machine_learning_compute_cluster")


def test_the_job_identity_is_held_to_its_prefixes_by_conditions() -> None:
    stack, _ = _features()
    grants = _of(stack, "azurerm_role_assignment")
    raw, offline = grants["ingestion_customer_raw"], grants["ingestion_customer_offline"]
    assert raw["condition_version"] == offline["condition_version"] == "2.0"
    assert "blobs:path] StringStartsWith 'customers/'" in raw["condition"]
    assert "blobs:prefix] StringStartsWith 'customers/'" in raw["condition"]
    writes = raw["condition"].split(" AND ((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/"
                                    "containers/blobs/write'})")[1]
    assert "'quarantine/customer/'" in writes and "'customers/'" not in writes  # never writes raw data
    assert "'featuresets/customer/source/'" in offline["condition"] and "'ingestion-ledger/customer/'" in \
        offline["condition"]
    role = _of(stack, "azurerm_role_definition")["ingestion_blobs"]
    assert role["permissions"].body["actions"] == []  # no container management
    assert not any(a.endswith("/delete") for a in role["permissions"].body["data_actions"])


def test_new_data_reaches_the_job_through_event_grid_and_a_logic_app() -> None:
    stack, _ = _features()
    [topic] = _of(stack, "azurerm_eventgrid_system_topic").values()
    assert topic["topic_type"] == "Microsoft.Storage.StorageAccounts"
    [subscription] = _of(stack, "azurerm_eventgrid_system_topic_event_subscription").values()
    assert subscription["included_event_types"] == ["Microsoft.Storage.BlobCreated"]
    assert subscription["subject_filter"].body["subject_begins_with"] == "/blobServices/default/containers/raw/blobs/" \
                                                                          "customers/"
    assert "FlushWithClose" in subscription["advanced_filter"].body["string_in"].body["values"]
    assert "callback_url" in str(subscription["webhook_endpoint"].body["url"])
    [action] = _of(stack, "azurerm_logic_app_action_custom").values()
    text = str(action["body"])
    assert "SubscriptionValidationEvent" in text and "ManagedServiceIdentity" in text
    assert "/jobs/ingest-customer-" in text
    created = action["body"].args[0]["else"]["actions"]  # every path answers Event Grid; a refusal ends Failed
    assert created["accepted"]["inputs"]["statusCode"] == 202 and created["refused"]["inputs"]["statusCode"] == 500
    assert created["refused"]["runAfter"] == {"create-job": ["Failed", "TimedOut"]}
    assert created["failed"]["inputs"]["runStatus"] == "Failed"
    jobs = _of(stack, "azurerm_role_definition")["ingestion_jobs"]["permissions"].body["actions"]
    assert "Microsoft.MachineLearningServices/workspaces/jobs/write" in jobs and not any("*" in a for a in jobs)
    alerts = _of(stack, "azurerm_monitor_metric_alert")
    assert {a["criteria"].body["metric_name"] for a in alerts.values()} == {"QuarantinedRows", "Failed Runs",
                                                                           "RunsFailed"}
    failed = next(a for a in alerts.values() if a["criteria"].body["metric_name"] == "Failed Runs")
    assert failed["criteria"].body["dimension"].body == {"name": "ExperimentName", "operator": "Include",
                                                         "values": ["churn-ingestion"]}
    without, _ = _features(on_new_data=False)
    assert not _of(without, "azurerm_eventgrid_system_topic") and not _of(without, "azurerm_logic_app_workflow")


def test_ingestion_fields_azure_cannot_honour_are_blueprint_errors() -> None:
    from mlops_dsl import BlueprintError, Image

    with pytest.raises(BlueprintError, match=r"groups\[0\]\.ingestion\.instance_type: 'ml\.p3\.2xlarge' has no Azure"):
        _features(instance_type="ml.p3.2xlarge")
    with pytest.raises(BlueprintError, match=r"groups\[0\]\.ingestion\.image: target 'sagemaker': the Azure ML job "
                                             r"runs the image's azureml stage, which has the Azure SDKs"):
        _features(image=Image("training", target="sagemaker"))
    with pytest.raises(BlueprintError, match=r"groups\[0\]\.ingestion\.image: no target \(the Dockerfile's last stage, "
                                             r"the SageMaker image\): .*give Image\('training', target='azureml'\)"):
        _features(image=Image("training"))
    with pytest.raises(BlueprintError, match=r"groups\[0\]\.ingestion\.concurrency: 16: on Azure each object's rows"):
        _features(concurrency=16)
