"""`mlops smoke` and `mlops loadtest`, against real predictions and nothing beyond 127.0.0.1.

The smoke tests run moto's server in this process with the emulator's fixes (emulator_server.patch),
so InvokeEndpoint reaches a local `python -m serving serve` of the pinned artifact: a tiny trained
model registered straight into moto (no terraform), and a broken one whose answers have a row too
few. The load tests send 20 requests/s for 2 s against a locally served model. Each test is meant to
take under 10 s; the slowest part is a model server's start (about 3 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlops_dsl import loadtest as lt
from mlops_dsl import smoke
from mlops_dsl.cli import main

from .conftest import ROOT

mlflow = pytest.importorskip("mlflow", reason="the ml extra is not installed")
pytest.importorskip("moto", reason="moto (pip install '.[local]') is not installed")

BLUEPRINT = str(ROOT / "blueprints" / "customer_churn.py")
ENDPOINT = "customer-churn-local-serving"
BUCKET = "customer-churn-local-models-123456789012"


class RowShort:
    """A classifier whose answers have one row too few for more than one row: a broken model that still
    loads and warms up (on one row). Module-level, so the model server can unpickle it from here."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.classes_ = inner.classes_

    def predict(self, frame: Any) -> Any:
        return self.inner.predict(frame)[: max(1, len(frame) - 1)]

    def predict_proba(self, frame: Any) -> Any:
        return self.inner.predict_proba(frame)[: max(1, len(frame) - 1)]


class Raises(RowShort):
    """A classifier that loads and then fails every prediction (its server never gets ready)."""

    def predict_proba(self, frame: Any) -> Any:
        raise RuntimeError("this model is broken")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A good and a broken MLflow model, each packaged as model.tar.gz (and its digest)."""
    from mlflow.models import infer_signature

    from mlops_dsl import packaging
    from training.config import load as load_config
    from training.data import generate_churn, validate
    from training.model import build_pipeline

    config = replace(load_config(), family="random_forest")
    base = tmp_path_factory.mktemp("models")
    frame = validate(generate_churn(400, seed=3), config, "sample")
    x = frame[config.features]
    model = build_pipeline(config, {"n_estimators": 5}).fit(x, frame[config.target])
    signature = infer_signature(x.head(5), model.predict(x.head(5)))
    out: dict[str, Any] = {"x": x}
    for name, fitted in (("good", model), ("broken", RowShort(model)), ("raises", Raises(model))):
        directory = base / name
        mlflow.sklearn.save_model(fitted, directory, signature=signature, input_example=x.head(5),
                                  serialization_format="cloudpickle", pip_requirements=["scikit-learn"])
        archive = base / f"{name}.tar.gz"
        out[name] = (directory, archive, packaging.archive(directory, archive))
    return out


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory):
    """moto's server with the emulator's fixes, in this process, on a free port of 127.0.0.1."""
    import boto3
    from moto.server import ThreadedMotoServer

    from mlops_dsl import emulator_server

    emulator_server.patch()
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    base = tmp_path_factory.mktemp("namespaces")
    namespaces = base / "namespaces.yaml"
    url = f"http://127.0.0.1:{port}"
    namespaces.write_text((ROOT / "namespaces.yaml").read_text().replace("http://127.0.0.1:4566", url))
    from mlops_dsl import namespaces as ns_module

    region = ns_module.load(namespaces)["local"].aws.region
    clients = {s: boto3.client(s, region_name=region, endpoint_url=url) for s in ("s3", "sagemaker")}
    clients["s3"].create_bucket(Bucket=BUCKET, **({} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}))
    yield clients, namespaces
    emulator_server.SERVED.stop()
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _deploy(emulator: Any, model: tuple[Path, Path, str], tag: str) -> None:
    """Upload the artifact, pin it for both variants, and (re)create the endpoint serving it."""
    from mlops_dsl.pins import Pin

    (s3, sagemaker), namespaces = (emulator[0]["s3"], emulator[0]["sagemaker"]), emulator[1]
    _, archive, sha256 = model
    key = f"packages/{sha256}/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=archive.read_bytes())
    pin = Pin(version=1, group="customer-churn-local", image="abcdef012345", sha256=sha256, artifact=f"s3://{BUCKET}/{key}")
    pins = namespaces.parent / "models" / "local.yaml"
    pins.parent.mkdir(exist_ok=True)
    pins.write_text("customer-churn:\n" + "\n".join(pin.line(v) for v in ("champion", "challenger")) + "\n")
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/serving:abcdef012345"
    variants = []
    for variant in ("champion", "challenger"):
        name = f"{ENDPOINT}-{variant}-{tag}"
        sagemaker.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/serving",
                               PrimaryContainer={"Image": image, "ModelDataUrl": f"s3://{BUCKET}/{key}"})
        variants.append({"VariantName": variant, "ModelName": name, "InitialInstanceCount": 1,
                         "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0})
    sagemaker.create_endpoint_config(EndpointConfigName=f"{ENDPOINT}-{tag}", ProductionVariants=variants)
    with contextlib.suppress(sagemaker.exceptions.ClientError):  # the first deployment has none to replace
        sagemaker.delete_endpoint(EndpointName=ENDPOINT)
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=f"{ENDPOINT}-{tag}")


def _mlops(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# --- the answer's checks, without a server ---------------------------------------------------------

def test_check_answer_accepts_a_healthy_answer_and_names_each_fault() -> None:
    good = json.dumps({"predictions": [0, 1], "probabilities": [[0.3, 0.7], [0.9, 0.1]]}).encode()
    assert smoke.check_answer(good, 2, (0, 1)) is None
    assert "1 predictions for 2 rows" in smoke.check_answer(b'{"predictions": [0]}', 2, (0, 1))
    assert "not one of the model's classes" in smoke.check_answer(b'{"predictions": [0, 7]}', 2, (0, 1))
    assert "sum 0.800000" in smoke.check_answer(
        json.dumps({"predictions": [0, 1], "probabilities": [[0.3, 0.7], [0.5, 0.3]]}).encode(), 2, (0, 1))
    assert "3 probabilities for 2 classes" in smoke.check_answer(
        json.dumps({"predictions": [0], "probabilities": [[0.2, 0.3, 0.5]]}).encode(), 1, (0, 1))
    assert "not JSON" in smoke.check_answer(b"<html>", 1, None)


def test_the_schedule_is_open_loop() -> None:
    """A sender taking 400 ms still gets its 20 requests started within the second they are due in (a
    closed loop of one would need 8 s): the bound of 4 s leaves a busy machine three seconds of slack
    and still fails a closed loop twice over."""
    started: list[float] = []

    def slow() -> None:
        started.append(time.monotonic())
        time.sleep(0.4)

    report = lt.run(slow, rps=20, duration=1.0)
    assert report.planned == report.sent == 20 and report.errors == 0
    assert started[-1] - started[0] < 4.0
    assert all(latency >= 400 for latency in report.latencies_ms)
    assert lt.planned(20, 2, 7) == 7


def test_a_failing_sender_counts_as_errors_and_breaches_the_error_rate() -> None:
    def fails() -> None:
        raise RuntimeError("HTTP 500")

    report = lt.run(fails, rps=50, duration=0.2)
    assert report.errors == report.planned == 10
    assert report.breaches(None, 0.01) == ["error rate 1.0000 is over --max-error-rate 0.01"]
    assert "RuntimeError: HTTP 500" in report.lines()[-1]


# --- smoke, through the emulator, against real predictions ------------------------------------------

def test_smoke_passes_on_a_good_model_in_local(trained: dict[str, Any], emulator: Any) -> None:
    _deploy(emulator, trained["good"], "good")
    result = _mlops("smoke", "-n", "local", "--namespaces", str(emulator[1]), "--blueprint", BLUEPRINT)
    assert result.exit_code == 0, result.output
    assert f"endpoint {ENDPOINT} variant champion (version 1): ok" in result.output
    assert f"endpoint {ENDPOINT} variant challenger (version 1): ok" in result.output


def test_loadtest_of_the_namespace_endpoint_sends_the_pinned_example(trained: dict[str, Any], emulator: Any) -> None:
    """No --url: the namespace's endpoint, through the emulator, with the pinned package's input example."""
    _deploy(emulator, trained["good"], "load")
    result = _mlops("loadtest", "-n", "local", "--rps", "20", "--duration", "1", "--variant", "challenger",
                    "--max-error-rate", "0", "--namespaces", str(emulator[1]), "--blueprint", BLUEPRINT)
    assert result.exit_code == 0, result.output
    assert f"load test of endpoint {ENDPOINT} variant challenger" in result.output
    assert "requests: 20 of 20 sent" in result.output and "errors: 0 (0.00%)" in result.output


def test_smoke_fails_on_a_model_that_raises(trained: dict[str, Any], emulator: Any) -> None:
    _deploy(emulator, trained["raises"], "raises")
    result = _mlops("smoke", "-n", "local", "--namespaces", str(emulator[1]), "--blueprint", BLUEPRINT)
    assert result.exit_code == 1, result.output
    assert f"endpoint {ENDPOINT} variant champion (version 1): FAILED: " in result.output
    assert "ModelError" in result.output and "this model is broken" in result.output


def test_smoke_fails_on_a_broken_model_naming_endpoint_and_variant(trained: dict[str, Any], emulator: Any) -> None:
    _deploy(emulator, trained["broken"], "broken")
    result = _mlops("smoke", "-n", "local", "--namespaces", str(emulator[1]), "--blueprint", BLUEPRINT)
    assert result.exit_code == 1, result.output
    assert f"endpoint {ENDPOINT} variant champion (version 1): FAILED: 4 predictions for 5 rows" in result.output
    assert "smoke test failed for 2 of 2" in result.output


def test_smoke_fails_when_the_artifact_is_not_the_pinned_one(trained: dict[str, Any], emulator: Any) -> None:
    _deploy(emulator, trained["good"], "swapped")
    s3 = emulator[0]["s3"]
    s3.put_object(Bucket=BUCKET, Key=f"packages/{trained['good'][2]}/model.tar.gz",
                  Body=trained["broken"][1].read_bytes())  # the object changed after it was pinned
    result = _mlops("smoke", "-n", "local", "--namespaces", str(emulator[1]), "--blueprint", BLUEPRINT)
    assert result.exit_code == 1, result.output
    assert f"not the pinned {trained['good'][2]}" in result.output


# --- smoke on Azure: each pinned deployment through the endpoint's scoring URI (a fake of Azure) -------

def test_smoke_on_azure_scores_each_pinned_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_dsl import cli_smoke
    from mlops_dsl.azureml.arm import Client, Response

    endpoint_id = ("/subscriptions/0/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/"
                   "onlineEndpoints/financial-behavior-dev-serving")
    scored: list[str] = []

    def transport(method: str, url: str, headers: Any, body: bytes | None) -> Response:
        if url.endswith("/score"):
            deployment = headers["azureml-model-deployment"]
            scored.append(deployment)
            answer = {"predictions": [1]} if deployment.startswith("blue") else {"predictions": [1, 0]}
            return Response(200, {}, answer)
        if "/listKeys" in url:
            return Response(200, {}, {"primaryKey": "key"})
        return Response(200, {}, {"properties": {"scoringUri": "https://e.inference.ml.azure.com/score",
                                                 "authMode": "Key"}})

    monkeypatch.setattr(cli_smoke, "_azure_client", lambda: Client(transport=transport, bearer=lambda: "token"))
    result = _mlops("smoke", "-n", "dev", "--platform", "financial-behavior", "--endpoint-id", endpoint_id,
                    "--namespaces", str(ROOT / "namespaces.yaml"))
    assert scored == ["blue-v7-9b2e61", "green-v8-9b2e61"]
    assert result.exit_code == 1, result.output
    assert "deployment blue-v7-9b2e61: ok" in result.output
    assert "deployment green-v8-9b2e61: FAILED: smoke test of deployment green-v8-9b2e61: 2 predictions for 1 rows" \
        in result.output
    missing = _mlops("smoke", "-n", "dev", "--platform", "financial-behavior", "--namespaces",
                     str(ROOT / "namespaces.yaml"))
    assert missing.exit_code == 2 and "--endpoint-id: platform 'financial-behavior' is on Azure" in missing.output


# --- loadtest, against a locally served model ---------------------------------------------------------

@pytest.fixture(scope="module")
def served(trained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory):
    """`python -m serving serve` of the good model on a free port; its URL and a request file."""
    directory = trained["good"][0]
    port = _free_port()
    env = {**os.environ, "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "serving", "serve", "--model", str(directory), "--host",
                                "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    request = tmp_path_factory.mktemp("request") / "request.json"
    request.write_text(json.dumps({"dataframe_split": json.loads((directory / "input_example.json").read_text())}))
    yield f"http://127.0.0.1:{port}/invocations", request
    process.terminate()
    process.wait(timeout=10)


def _loadtest(url: str, request: Path, *extra: str) -> Any:
    return _mlops("loadtest", "-n", "local", "--rps", "20", "--duration", "2", "--url", url,
                  "--request", str(request), *extra)


def test_loadtest_sends_the_planned_requests_and_passes_generous_limits(served: tuple[str, Path]) -> None:
    """Never faster than asked. How close to the rate a real server on a busy test machine gets is not
    this test's subject (CI saw 8.7/s of 20 while the other worker trained): the schedule itself is
    tested above, and the figures belong in benchmarks/serve.py."""
    result = _loadtest(*served, "--max-p99-ms", "60000", "--max-error-rate", "0")
    assert result.exit_code == 0, result.output
    assert "requests: 40 of 40 sent" in result.output
    achieved = float(re.search(r"\(([\d.]+)/s achieved\)", result.output)[1])
    assert 0 < achieved <= 21, result.output
    assert "latency: p50 " in result.output and ", p99 " in result.output
    assert "errors: 0 (0.00%)" in result.output


def test_loadtest_exits_1_over_an_impossible_p99(served: tuple[str, Path]) -> None:
    result = _loadtest(*served, "--max-p99-ms", "0.001", "--max-requests", "10")
    assert result.exit_code == 1, result.output
    assert "requests: 10 of 10 sent" in result.output
    assert "is over --max-p99-ms 0.001" in result.output


@pytest.mark.parametrize("url", ["http://10.0.0.1:8080/invocations", "https://127.0.0.1:8080/invocations",
                                 "http://127.0.0.1.example.com/invocations", "http://user@localhost:8080/",
                                 "http://example.com/invocations"])
def test_loadtest_refuses_a_url_that_is_not_local(url: str, tmp_path: Path) -> None:
    request = tmp_path / "r.json"
    request.write_text("{}")
    result = _loadtest(url, request)
    assert result.exit_code == 2, result.output
    assert f"--url {url}: refused" in result.output


def test_loadtest_bounds_duration_and_rate() -> None:
    for option, value in (("--duration", "601"), ("--rps", "5000")):
        args = ["loadtest", "-n", "local", "--rps", "1", "--duration", "1", "--url", "http://127.0.0.1:9/"]
        args[args.index(option) + 1] = value
        result = _mlops(*args)
        assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output
