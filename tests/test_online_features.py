"""Online features at inference: the server reads a request's record from the Feature Store runtime.

The runtime is botocore's own client, stubbed (Stubber checks each BatchGetRecord request against
the service model and the expected parameters), a socket that never answers (the bounded timeout),
and, where the emulator's runtime (mlops_dsl/emulator_featurestore.py) exists, moto's server with
a PutRecord before the request.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mlflow", reason="the ml extra is not installed")
boto3 = pytest.importorskip("boto3")
from botocore.stub import Stubber  # noqa: E402

from serving import online_features  # noqa: E402
from serving.app import Server  # noqa: E402
from serving.settings import SettingsError  # noqa: E402

from .test_serving import _call, _ready, save_trained  # noqa: E402

GROUP = "customer-churn-local-customer"
STORED = ["tenure_months", "monthly_charges", "total_charges", "support_calls", "contract", "payment_method",
          "internet_service"]
REQUEST_TIME = ["senior_citizen", "paperless_billing"]  # not in the group: the request carries them
CONFIG = {"groups": [{"name": GROUP, "record_id": "customer_id", "features": STORED}], "region": "eu-west-1",
          "timeout_ms": 200}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    return save_trained(tmp_path_factory.mktemp("online") / "model")


def _server(directory: Path, config: dict[str, Any] = CONFIG, **env: str) -> Server:
    # scikit-learn only: the compiled path is test_serving's; here it would only cost start-up time
    return asyncio.run(_ready(directory, ONLINE_FEATURES=json.dumps(config), SERVING_ENGINE="sklearn", **env))


def _stubbed(server: Server) -> Stubber:
    client = boto3.client("sagemaker-featurestore-runtime", region_name="eu-west-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    assert server.online is not None
    server.online._fetch = lambda identifiers: client.batch_get_record(Identifiers=identifiers)
    return Stubber(client)


def _record(x, i: int) -> list[dict[str, str]]:
    return [{"FeatureName": f, "ValueAsString": str(x.iloc[i][f])} for f in STORED if x.iloc[i][f] == x.iloc[i][f]]


def _id_request(x, rows: list[int]) -> bytes:
    return json.dumps({"dataframe_records": [
        {"customer_id": f"c-{i}", **{f: x.iloc[i][f].item() if hasattr(x.iloc[i][f], "item") else x.iloc[i][f]
                                     for f in REQUEST_TIME}} for i in rows]}).encode()


def test_a_request_with_only_the_id_gets_the_full_requests_answer(trained) -> None:
    _, directory, x = trained
    server = _server(directory)
    stub = _stubbed(server)
    stub.add_response("batch_get_record", {
        "Records": [{"FeatureGroupName": GROUP, "RecordIdentifierValueAsString": f"c-{i}", "Record": _record(x, i)}
                    for i in (0, 1)],
        "Errors": [], "UnprocessedIdentifiers": []},
        {"Identifiers": [{"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": ["c-0", "c-1"],
                          "FeatureNames": STORED}]})
    with stub:
        status, body, _ = asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [0, 1])))
    stub.assert_no_pending_responses()
    assert status == 200, body
    plain = asyncio.run(_ready(directory, SERVING_ENGINE="sklearn"))  # the same model, every column sent
    full = json.dumps({"dataframe_records": json.loads(x.head(2).to_json(orient="records"))}).encode()
    expected = asyncio.run(_call(plain, "POST", "/invocations", full))
    assert json.loads(body) == json.loads(expected[1])


def test_a_missing_record_is_a_404_naming_the_id_and_the_group(trained) -> None:
    _, directory, x = trained
    server = _server(directory)
    stub = _stubbed(server)
    stub.add_response("batch_get_record", {"Records": [
        {"FeatureGroupName": GROUP, "RecordIdentifierValueAsString": "c-0", "Record": _record(x, 0)}],
        "Errors": [], "UnprocessedIdentifiers": []})
    with stub:
        status, body, _ = asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [0, 3])))
    assert status == 404
    answer = json.loads(body)
    assert answer["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "'c-3'" in answer["message"] and GROUP in answer["message"] and "'c-0'" not in answer["message"]


def test_a_request_without_the_id_or_with_a_stored_feature_is_a_400(trained) -> None:
    _, directory, _ = trained
    server = _server(directory)
    _stubbed(server)  # no response queued: a request that reached the store would fail the stub
    no_id = json.dumps({"dataframe_records": [{f: 0 for f in REQUEST_TIME}]}).encode()
    status, body, _ = asyncio.run(_call(server, "POST", "/invocations", no_id))
    assert status == 400 and "missing column 'customer_id'" in json.loads(body)["message"]
    null_id = json.dumps({"dataframe_records": [{"customer_id": None, "senior_citizen": 0,
                                                 "paperless_billing": "Yes"}]}).encode()
    status, body, _ = asyncio.run(_call(server, "POST", "/invocations", null_id))
    assert status == 400 and "a record id is required" in json.loads(body)["message"]
    extra = json.dumps({"dataframe_records": [{"customer_id": "c-1", "senior_citizen": 0, "paperless_billing": "Yes",
                                               "tenure_months": 3}]}).encode()
    status, body, _ = asyncio.run(_call(server, "POST", "/invocations", extra))
    assert status == 400 and "unexpected column 'tenure_months'" in json.loads(body)["message"]


def test_a_store_that_refuses_is_a_503_and_the_server_keeps_serving(trained) -> None:
    _, directory, x = trained
    server = _server(directory)
    stub = _stubbed(server)
    stub.add_client_error("batch_get_record", "AccessDeniedException", "not allowed", 400)
    stub.add_response("batch_get_record", {"Records": [], "Errors": [
        {"FeatureGroupName": GROUP, "RecordIdentifierValueAsString": "c-0", "ErrorCode": "InternalFailure",
         "ErrorMessage": "try again"}], "UnprocessedIdentifiers": []})
    with stub:
        refused = asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [0])))
        failed = asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [0])))
    assert refused[0] == 503 and "AccessDeniedException" in json.loads(refused[1])["message"]
    assert failed[0] == 503 and "InternalFailure" in json.loads(failed[1])["message"]
    assert server.health("/ping")[0] == 200


def test_a_store_that_does_not_answer_is_a_504_within_the_bound(trained, monkeypatch) -> None:
    """A real boto3 client against a socket that accepts and never answers: botocore's read timeout."""
    _, directory, x = trained
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME",
                           f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
        server = _server(directory)
        began = time.monotonic()
        status, body, _ = asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [0])))
        took = time.monotonic() - began
    assert status == 504, body
    assert "within 200 ms" in json.loads(body)["message"]
    assert took < 3, f"{took:.1f} s: one attempt of 200 ms, not a retry storm"


@pytest.mark.parametrize("raw, message", [
    ("{", "not JSON"),
    ('{"groups": []}', "'groups', a non-empty list"),
    ('{"groups": [{"name": "g", "record_id": "id"}]}', "groups[0] needs"),
    ('{"groups": [{"name": "g", "record_id": "id", "features": ["a"]}], "timeout_ms": 0}', "timeout_ms"),
])
def test_a_bad_setting_is_refused_naming_the_variable(raw: str, message: str) -> None:
    with pytest.raises(SettingsError, match="ONLINE_FEATURES") as caught:
        online_features.load({"ONLINE_FEATURES": raw})
    assert message in str(caught.value)


def test_the_settings_refuse_a_bad_value_before_the_server_binds(monkeypatch) -> None:
    from serving import settings

    monkeypatch.setenv("ONLINE_FEATURES", '{"groups": 3}')
    with pytest.raises(SettingsError, match="ONLINE_FEATURES"):
        settings.load()


def _emulator_runtime() -> bool:
    try:
        from mlops_dsl import emulator_featurestore  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _emulator_runtime(), reason="the emulator has no Feature Store runtime yet")
def test_against_the_emulator_a_put_record_then_an_id_only_request(trained, monkeypatch) -> None:
    from moto.server import ThreadedMotoServer

    from mlops_dsl import emulator_server

    _, directory, x = trained
    emulator_server.patch()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        url = f"http://127.0.0.1:{port}"
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": url}.items():
            monkeypatch.setenv(key, value)
        sagemaker = boto3.client("sagemaker", region_name="eu-west-1", endpoint_url=url)
        boto3.client("s3", region_name="eu-west-1", endpoint_url=url).create_bucket(
            Bucket="offline", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        sagemaker.create_feature_group(
            FeatureGroupName=GROUP, RecordIdentifierFeatureName="customer_id", EventTimeFeatureName="event_time",
            FeatureDefinitions=[{"FeatureName": "customer_id", "FeatureType": "String"},
                                {"FeatureName": "event_time", "FeatureType": "Fractional"},
                                *[{"FeatureName": f, "FeatureType": "Integral" if f in ("tenure_months",
                                   "support_calls") else "String" if x[f].dtype == object else "Fractional"}
                                  for f in STORED]],
            OnlineStoreConfig={"EnableOnlineStore": True}, RoleArn="arn:aws:iam::123456789012:role/fs",
            OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://offline/feature-store"}})
        runtime = boto3.client("sagemaker-featurestore-runtime", region_name="eu-west-1", endpoint_url=url)
        row = x.iloc[0]
        runtime.put_record(FeatureGroupName=GROUP, Record=[
            {"FeatureName": "customer_id", "ValueAsString": "c-0"},
            {"FeatureName": "event_time", "ValueAsString": str(time.time())},
            *[{"FeatureName": f, "ValueAsString": str(int(row[f]) if f in ("tenure_months", "support_calls")
                                                      else row[f])} for f in STORED if row[f] == row[f]]])
        server = _server(directory, {**CONFIG, "timeout_ms": 2000})
        status, body, _ = asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [0])))
        assert status == 200, body
        plain = asyncio.run(_ready(directory, SERVING_ENGINE="sklearn"))
        full = json.dumps({"dataframe_records": json.loads(x.head(1).to_json(orient="records"))}).encode()
        assert json.loads(body) == json.loads(asyncio.run(_call(plain, "POST", "/invocations", full))[1])
        status, body, _ = asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [5])))
        assert status == 404 and "'c-5'" in json.loads(body)["message"]
    finally:
        moto.stop()
        os.environ.pop("AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME", None)


def test_a_record_id_the_model_scores_is_reported_on_ping(trained) -> None:
    """ONLINE_FEATURES is checked against the model's columns when it loads, not on the first request."""
    _, directory, _ = trained
    config = {"groups": [{"name": GROUP, "record_id": "tenure_months", "features": STORED}]}
    server = _server(directory, config)
    status, body = server.health("/ping")
    assert status == 503 and "record_id 'tenure_months'" in body["error"] and "model input" in body["error"]
