"""The drift job at scale: shards and their merge, S3 (moto), Azure Blob (Azurite), metrics sinks."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

pd = pytest.importorskip("pandas", reason="the ml extra is not installed")
pytest.importorskip("scipy", reason="the ml extra is not installed")

from serving.drift import main  # noqa: E402
from serving.drift.metrics import CLOUDWATCH_BATCH, azure_monitor_bodies, cloudwatch_requests  # noqa: E402
from tests.test_drift import FEATURES, request_bodies  # noqa: E402
from training.baseline import baseline  # noqa: E402
from training.config import load  # noqa: E402
from training.data import generate_churn  # noqa: E402

CONFIG = load()
ROOT = Path(__file__).resolve().parent.parent
AZURITE = "azurite@3.35.0"  # the last release whose engines field accepts Node 20
NODE_DIR = ROOT / ".mlops" / "node"


@pytest.fixture(scope="module")
def base() -> dict:
    return baseline(generate_churn(4000, seed=11)[FEATURES], list(CONFIG.numeric), list(CONFIG.categorical))


def capture_files(seed: int, files: int = 8, rows: int = 250, shift: float = 1.0) -> dict[str, str]:
    """SageMaker's layout: <endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl, with one bad record."""
    out = {}
    for i in range(files):
        frame = generate_churn(rows, seed=seed + i)[FEATURES]
        frame["monthly_charges"] *= shift
        lines = request_bodies(frame, per_record=10)
        if i == 3:
            lines.append("{truncated")
        out[f"churn/AllTraffic/2026/11/22/{10 + i // 4:02d}/part-{i}.jsonl"] = "\n".join(lines) + "\n"
    return out


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for key, text in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_text(text)
    return root


def run(args: list[str], out: Path) -> tuple[int, dict]:
    code = main([*args, "--out", str(out)])
    return code, json.loads((out / "drift.json").read_text())


def test_shards_merge_to_exactly_the_single_pass(tmp_path: Path, base: dict) -> None:
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    data = write_tree(tmp_path / "capture", capture_files(100, shift=1.1))
    common = ["--baseline", str(tmp_path / "baseline.json")]
    code, whole = run([*common, "--data", str(data)], tmp_path / "whole")
    partials = []
    for i in range(3):
        partials.append(str(tmp_path / f"part-{i}.json"))
        assert main([*common, "--data", str(data), "--shard", f"{i}/3", "--partial", partials[-1]]) == 0
    merged_code, merged = run([*common, "--merge", *reversed(partials)], tmp_path / "merged")
    assert (code, merged_code) == (1, 1) and whole["drifted_features"] == ["monthly_charges"]
    assert whole["rows"] == merged["rows"] == 2000 and merged["unreadable_records"] == 1
    # Every count, statistic and p-value is identical; the mean (a sum of floats) to rounding.
    for name, feature in whole["features"].items():
        if "mean" in feature:
            assert merged["features"][name].pop("mean") == pytest.approx(feature.pop("mean"), rel=1e-12)
    assert merged["features"] == whole["features"]


def test_workers_split_the_decoding_and_merge_exactly(tmp_path: Path, base: dict) -> None:
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    data = write_tree(tmp_path / "capture", capture_files(700, files=5))
    common = ["--baseline", str(tmp_path / "baseline.json"), "--data", str(data)]
    assert main([*common, "--partial", str(tmp_path / "one.json")]) == 0
    assert main([*common, "--workers", "3", "--partial", str(tmp_path / "three.json")]) == 0
    one, three = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "three"))
    assert three["features"] == one["features"] and three["rows"] == one["rows"] == 1250


def test_the_drift_job_imports_neither_training_nor_mlflow() -> None:
    """The serving image has no training/ package: the job must stand alone."""
    code = ("import sys, serving.drift.cli, serving.drift.sources, serving.drift.metrics; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('mlflow', 'training')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_a_partial_of_another_baseline_is_refused(tmp_path: Path, base: dict, capsys) -> None:
    data = write_tree(tmp_path / "capture", capture_files(5, files=1))
    other = baseline(generate_churn(3000, seed=1)[FEATURES], list(CONFIG.numeric), list(CONFIG.categorical))
    (tmp_path / "a.json").write_text(json.dumps(base))
    (tmp_path / "b.json").write_text(json.dumps(other))
    assert main(["--baseline", str(tmp_path / "b.json"), "--data", str(data), "--partial", str(tmp_path / "p")]) == 0
    assert main(["--baseline", str(tmp_path / "a.json"), "--merge", str(tmp_path / "p")]) == 2
    assert f"{tmp_path / 'p'}: not a partial result for this baseline (counted against a different baseline)" \
        in capsys.readouterr().err


def test_json_metrics_on_stdout(tmp_path: Path, base: dict, capsys) -> None:
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    data = write_tree(tmp_path / "capture", capture_files(200, files=2))
    code = main(["--baseline", str(tmp_path / "baseline.json"), "--data", str(data), "--out", str(tmp_path / "r"),
                 "--metrics", "json", "--dimension", "Endpoint=churn"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 0 and "no drift over 500 rows" in captured.err
    values = {(m["name"], m["dimensions"].get("Feature")): m["value"] for m in doc["metrics"]}
    assert doc["dimensions"] == {"Endpoint": "churn"}
    assert values[("DriftDetected", None)] == 0 and values[("RowsAnalysed", None)] == 500
    assert values[("UnreadableRecords", None)] == 0
    assert values[("FeatureDrift", "contract")] == 0 and 0 <= values[("FeatureEffect", "tenure_months")] < 0.2


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    moto = pytest.importorskip("moto", reason="the local extra (moto) is not installed")
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    with moto.mock_aws():
        yield


def test_an_s3_prefix_with_cloudwatch_metrics(tmp_path: Path, base: dict, aws: None) -> None:
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="capture", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="capture", Key="models/baseline.json", Body=json.dumps(base).encode())
    files = capture_files(300, shift=1.2)
    for key, text in files.items():
        s3.put_object(Bucket="capture", Key=f"datacapture/{key}", Body=text.encode())
    s3.put_object(Bucket="capture", Key="datacapture/churn/_SUCCESS", Body=b"")  # not a capture file: ignored
    code, report = run(["--baseline", "s3://capture/models/baseline.json", "--data", "s3://capture/datacapture/churn",
                        "--metrics", "cloudwatch", "--dimension", "Endpoint=churn"], tmp_path / "r")
    local_code, local = run(["--baseline", "s3://capture/models/baseline.json",
                             "--data", str(write_tree(tmp_path / "local", files))], tmp_path / "l")
    assert code == local_code == 1 and report["drifted_features"] == ["monthly_charges"]
    assert report["features"] == local["features"] and report["rows"] == 2000

    cloudwatch = boto3.client("cloudwatch")
    metrics = cloudwatch.list_metrics(Namespace="MLOps/Drift")["Metrics"]
    names = {(m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]))) for m in metrics}
    assert ("DriftDetected", (("Endpoint", "churn"),)) in names
    assert ("FeatureDrift", (("Endpoint", "churn"), ("Feature", "monthly_charges"))) in names
    stats = cloudwatch.get_metric_statistics(
        Namespace="MLOps/Drift", MetricName="DriftedFeatures", Dimensions=[{"Name": "Endpoint", "Value": "churn"}],
        StartTime=pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1), EndTime=pd.Timestamp.now(tz="UTC")
        + pd.Timedelta(minutes=5), Period=3600, Statistics=["Maximum"])
    assert [p["Maximum"] for p in stats["Datapoints"]] == [1.0]


def test_s3_errors_are_clear(tmp_path: Path, base: dict, aws: None, capsys) -> None:
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    assert main(["--baseline", str(tmp_path / "baseline.json"), "--data", "s3://no-such-bucket/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: s3://no-such-bucket/x: cannot list (") and "NoSuchBucket" in err


def test_cloudwatch_requests_respect_the_api_limit(base: dict) -> None:
    report = {"drifted": True, "drifted_features": ["f0"], "rows": 1, "unreadable_records": 0,
              "features": {f"f{i}": {"drifted": i == 0, "effect": 0.1, "missing": 0.0, "unseen": 0}
                           for i in range(400)}}
    requests = cloudwatch_requests(report, "NS", {"Endpoint": "e"}, pd.Timestamp("2026-12-01", tz="UTC"))
    assert [len(r["MetricData"]) for r in requests] == [CLOUDWATCH_BATCH, 604]
    first = requests[0]["MetricData"][4]
    assert first["MetricName"] == "FeatureDrift" and first["Value"] == 1.0
    assert first["Dimensions"] == [{"Name": "Endpoint", "Value": "e"}, {"Name": "Feature", "Value": "f0"}]


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, dict]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.path, self.headers["Authorization"], body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_azure_monitor_custom_metrics_are_posted(tmp_path: Path, base: dict, monkeypatch, capsys) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    resource = "/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w"
    monkeypatch.setenv("AZURE_MONITOR_ENDPOINT", f"http://127.0.0.1:{server.server_port}{resource}/metrics")
    monkeypatch.setenv("AZURE_MONITOR_TOKEN", "t0ken")
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    data = write_tree(tmp_path / "capture", capture_files(400, files=2, shift=1.3))
    try:
        assert main(["--baseline", str(tmp_path / "baseline.json"), "--data", str(data), "--out", str(tmp_path / "r"),
                     "--metrics", "azure-monitor", "--dimension", "Endpoint=churn"]) == 1
    finally:
        server.shutdown()
    posts = {body["data"]["baseData"]["metric"]: (path, auth, body) for path, auth, body in _Collector.received}
    path, auth, body = posts["FeatureDrift"]
    assert path == f"{resource}/metrics" and auth == "Bearer t0ken"
    data = body["data"]["baseData"]
    assert data["namespace"] == "MLOps/Drift" and data["dimNames"] == ["Endpoint", "Feature"]
    series = {tuple(s["dimValues"]): s for s in data["series"]}
    assert series[("churn", "monthly_charges")] == {"dimValues": ["churn", "monthly_charges"], "min": 1.0,
                                                    "max": 1.0, "sum": 1.0, "count": 1}
    assert len(body["time"]) == 20 and body["time"].endswith("Z")
    monkeypatch.delenv("AZURE_MONITOR_TOKEN")
    assert main(["--baseline", str(tmp_path / "baseline.json"), "--data", str(tmp_path / "capture"),
                 "--metrics", "azure-monitor", "--out", str(tmp_path / "r")]) == 2
    assert "the azure-monitor sink needs AZURE_MONITOR_ENDPOINT and AZURE_MONITOR_TOKEN" in capsys.readouterr().err


def test_azure_monitor_bodies_have_one_series_per_feature(base: dict) -> None:
    report = {"drifted": False, "drifted_features": [], "rows": 7, "unreadable_records": 2,
              "features": {"a": {"drifted": False, "effect": 0.01, "missing": 0.5}}}
    bodies = {b["data"]["baseData"]["metric"]: b for b in
              azure_monitor_bodies(report, "NS", {}, pd.Timestamp("2026-12-01T10:00:00", tz="UTC"))}
    assert set(bodies) == {"DriftDetected", "DriftedFeatures", "RowsAnalysed", "UnreadableRecords", "FeatureDrift",
                           "FeatureEffect", "FeatureMissingShare"}
    assert bodies["UnreadableRecords"] == {"time": "2026-12-01T10:00:00Z", "data": {"baseData": {
        "metric": "UnreadableRecords", "namespace": "NS", "dimNames": [],
        "series": [{"dimValues": [], "min": 2.0, "max": 2.0, "sum": 2.0, "count": 1}]}}}


# --- Azure Blob against Azurite -------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def azurite() -> Iterator[str]:
    """A connection string to a fresh in-memory Azurite; installed under .mlops/node on first use."""
    pytest.importorskip("azure.storage.blob", reason="azure-storage-blob is not installed (make setup)")
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js (node and npm) is not installed: Azurite cannot run")
    binary = NODE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR), AZURITE],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"npm install {AZURITE} failed (run make setup with network access): {done.stderr[-500:]}")
    port = _free_port()
    process = subprocess.Popen([str(binary), "--inMemoryPersistence", "--skipApiVersionCheck", "--silent",
                                "--blobHost", "127.0.0.1", "--blobPort", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"Azurite exited: {process.stderr.read().decode()[-500:]}")
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("Azurite did not listen within 30 s")
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    try:
        yield (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};"
               f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_an_azure_blob_prefix(tmp_path: Path, base: dict, azurite: str, monkeypatch, capsys) -> None:
    from azure.storage.blob import BlobServiceClient

    container = BlobServiceClient.from_connection_string(azurite).create_container("capture")
    container.upload_blob("models/baseline.json", json.dumps(base).encode())
    files = capture_files(500, shift=1.2)
    for key, text in files.items():
        container.upload_blob(f"datacapture/{key}", text.encode())
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    code, report = run(["--baseline", "azure://capture/models/baseline.json",
                        "--data", "azure://capture/datacapture/"], tmp_path / "r")
    local_code, local = run(["--baseline", "azure://capture/models/baseline.json",
                             "--data", str(write_tree(tmp_path / "local", files))], tmp_path / "l")
    assert code == local_code == 1 and report["drifted_features"] == ["monthly_charges"]
    assert report["features"] == local["features"] and report["unreadable_records"] == 1
    partial = tmp_path / "p.json"
    assert main(["--baseline", "azure://capture/models/baseline.json", "--data", "azure://capture/datacapture/churn",
                 "--shard", "1/2", "--partial", str(partial)]) == 0
    assert json.loads(partial.read_text())["rows"] == 1000
    assert main(["--baseline", str(tmp_path / "none.json"), "--data", "azure://nothere/x"]) == 2
    assert main(["--baseline", "azure://capture/models/baseline.json", "--data", "azure://nothere/x"]) == 2
    assert "Error: azure://nothere/x: cannot list (" in capsys.readouterr().err
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    assert main(["--baseline", "azure://capture/models/baseline.json", "--data", "azure://capture/x"]) == 2
    assert "azure:// inputs need AZURE_STORAGE_CONNECTION_STRING" in capsys.readouterr().err


def test_the_job_runs_as_a_module(tmp_path: Path, base: dict) -> None:
    """`python -m serving.drift`, as the SageMaker Processing job starts it."""
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    data = write_tree(tmp_path / "capture", capture_files(600, files=1))
    done = subprocess.run([sys.executable, "-m", "serving.drift", "--baseline", str(tmp_path / "baseline.json"),
                           "--data", str(data), "--out", str(tmp_path / "r"), "--metrics", "json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["metrics"][2] == {"name": "RowsAnalysed", "dimensions": {}, "value": 250.0,
                                                     "unit": "Count"}


def test_an_object_that_vanishes_after_listing_is_counted_and_skipped(tmp_path: Path, base: dict, aws: None,
                                                                      monkeypatch) -> None:
    import boto3

    from serving.drift import cli, sources

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="capture", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for key, text in capture_files(800, files=2).items():
        s3.put_object(Bucket="capture", Key=key, Body=text.encode())

    def list_then_delete(uri: str) -> list:
        blobs = sources.list_blobs(uri)
        s3.delete_object(Bucket="capture", Key=blobs[0].uri.removeprefix("s3://capture/"))
        return blobs

    monkeypatch.setattr(cli, "list_blobs", list_then_delete)
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    code, report = run(["--baseline", str(tmp_path / "baseline.json"), "--data", "s3://capture/churn/"],
                       tmp_path / "r")
    assert code == 0 and report["rows"] == 250 and report["unreadable_records"] == 1
    assert report["unreadable_examples"][0].startswith(
        "s3://capture/churn/AllTraffic/2026/11/22/10/part-0.jsonl: cannot read (")
    assert "NoSuchKey" in report["unreadable_examples"][0]
