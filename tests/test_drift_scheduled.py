"""The drift job as the scheduled Processing job runs it: the served package's model.tar.gz as the
baseline, a window of capture hours, and a drifted run that does not fail the job."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import datetime
from pathlib import Path

import pytest

pytest.importorskip("pandas", reason="the ml extra is not installed")
pytest.importorskip("scipy", reason="the ml extra is not installed")

import tests.test_drift_job as job
from mlops_dsl.packaging import archive
from serving.drift import main
from serving.drift.sources import hour_of
from tests.test_drift_job import capture_files, run, write_tree

aws, base = job.aws, job.base  # the fixtures: moto's S3, a baseline of 4,000 generated rows


def package(tmp_path: Path, base: dict, with_baseline: bool = True) -> Path:
    """A model.tar.gz as mlops_dsl.packaging builds it: the MLflow model directory, baseline.json beside it."""
    model = tmp_path / "model"
    (model / "model").mkdir(parents=True)
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "model" / "weights.bin").write_bytes(b"\0" * 4096)
    if with_baseline:
        (model / "baseline.json").write_text(json.dumps(base))
    out = tmp_path / ("model.tar.gz" if with_baseline else "no-baseline.tar.gz")
    archive(model, out)
    return out


def test_the_package_s_baseline_gives_the_report_of_its_baseline_json(tmp_path: Path, base: dict) -> None:
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    data = str(write_tree(tmp_path / "capture", capture_files(700, files=2, shift=1.2)))
    code, from_package = run(["--baseline", str(package(tmp_path, base)), "--data", data], tmp_path / "p")
    plain_code, plain = run(["--baseline", str(tmp_path / "baseline.json"), "--data", data], tmp_path / "j")
    assert code == plain_code == 1
    assert from_package["features"] == plain["features"] and from_package["drifted_features"] == ["monthly_charges"]


def test_a_package_on_s3(tmp_path: Path, base: dict, aws: None) -> None:
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="models", Key="champion/7/model.tar.gz", Body=package(tmp_path, base).read_bytes())
    data = str(write_tree(tmp_path / "capture", capture_files(710, files=1)))
    code, report = run(["--baseline", "s3://models/champion/7/model.tar.gz", "--data", data], tmp_path / "r")
    assert code == 0 and report["rows"] == 250


def test_a_package_without_baseline_or_not_an_archive_is_bad_input(tmp_path: Path, base: dict, capsys) -> None:
    data = str(write_tree(tmp_path / "capture", capture_files(720, files=1)))
    bare = package(tmp_path, base, with_baseline=False)
    assert main(["--baseline", str(bare), "--data", data, "--exit-zero-on-drift"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {bare}: the package has no baseline.json (members: MLmodel, model/weights.bin)")
    fake = tmp_path / "fake.tar.gz"
    fake.write_bytes(b"not gzip at all")
    assert main(["--baseline", str(fake), "--data", data]) == 2
    assert capsys.readouterr().err.startswith(f"Error: {fake}: not a readable model.tar.gz (")


def test_a_member_named_with_a_leading_dot_slash_is_found(tmp_path: Path, base: dict) -> None:
    """`tar -C model -czf model.tar.gz .` names members ./baseline.json: SageMaker accepts both."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        body = json.dumps(base).encode()
        info = tarfile.TarInfo("./baseline.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    (tmp_path / "dot.tgz").write_bytes(buffer.getvalue())
    data = str(write_tree(tmp_path / "capture", capture_files(730, files=1)))
    assert run(["--baseline", str(tmp_path / "dot.tgz"), "--data", data], tmp_path / "r")[0] == 0


def test_since_hours_reads_the_whole_hours_before_until(tmp_path: Path, base: dict, capsys) -> None:
    """capture_files writes files 0-3 under hour 10 and 4-7 under hour 11 of 2026-11-22 (250 rows each)."""
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    data = str(write_tree(tmp_path / "capture", capture_files(740)))
    common = ["--baseline", str(tmp_path / "baseline.json"), "--data", data, "--since-hours"]
    assert run([*common, "1", "--until", "2026-11-22T12"], tmp_path / "a")[1]["rows"] == 1000
    assert run([*common, "2", "--until", "2026-11-22T12"], tmp_path / "b")[1]["rows"] == 2000
    assert run([*common, "1", "--until", "2026-11-22T11"], tmp_path / "c")[1]["rows"] == 1000
    # The window is half-open: the current hour, still being written, belongs to the next run.
    capsys.readouterr()
    assert main([*common, "1", "--until", "2026-11-22T10", "--out", str(tmp_path / "d")]) == 0
    assert not (tmp_path / "d").exists()
    assert ("no capture object of the 1 hour(s) before 2026-11-22T10:00 UTC among 8 listed "
            "(0 without a yyyy/mm/dd/hh key): nothing to compare") in capsys.readouterr().err


def test_since_hours_defaults_to_the_current_hour(tmp_path: Path, base: dict, monkeypatch, capsys) -> None:
    import serving.drift.cli as cli

    (tmp_path / "baseline.json").write_text(json.dumps(base))
    data = str(write_tree(tmp_path / "capture", capture_files(750)))
    monkeypatch.setattr(cli, "current_hour", lambda: datetime(2026, 11, 22, 11))
    code, report = run(["--baseline", str(tmp_path / "baseline.json"), "--data", data, "--since-hours", "1"],
                       tmp_path / "r")
    assert code == 0 and report["rows"] == 1000  # hour 10 only


def test_window_options_are_checked(tmp_path: Path, base: dict, capsys) -> None:
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    data = str(write_tree(tmp_path / "capture", capture_files(760, files=1)))
    assert main(["--baseline", str(tmp_path / "baseline.json"), "--data", data, "--until", "2026-11-22T12"]) == 2
    assert "--until ends a --since-hours window" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["--baseline", "b.json", "--data", data, "--since-hours", "1", "--until", "2026-11-22 12:00"])
    assert exit_.value.code == 2
    assert "expected an hour YYYY-MM-DDTHH (UTC)" in capsys.readouterr().err


def test_hours_come_from_the_capture_layout_only() -> None:
    assert hour_of("s3://b/data-capture/ep/champion/2026/12/01/09/x-1.jsonl") == datetime(2026, 12, 1, 9)
    assert hour_of("s3://b/data-capture/ep/champion/2026/13/01/09/x.jsonl") is None  # not a date
    assert hour_of("s3://b/data-capture/ep/champion/2026/12/01/x.jsonl") is None  # no hour
    assert hour_of("s3://b/2026/12/01/09/deeper/x.jsonl") is None  # the hour must hold the file


def test_exit_zero_on_drift_keeps_the_verdict_in_the_report_and_metrics(tmp_path: Path, base: dict,
                                                                     capsys) -> None:
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    data = str(write_tree(tmp_path / "capture", capture_files(770, files=2, shift=1.2)))
    args = ["--baseline", str(tmp_path / "baseline.json"), "--data", data, "--metrics", "json"]
    assert run(args, tmp_path / "interactive")[0] == 1
    capsys.readouterr()
    code, report = run([*args, "--exit-zero-on-drift"], tmp_path / "job")
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert code == 0 and report["drifted"] is True
    assert metrics[0] == {"name": "DriftDetected", "dimensions": {}, "value": 1.0, "unit": "None"}


def test_an_empty_window_still_says_no_drift_to_the_metrics(tmp_path: Path, base: dict, capsys) -> None:
    """CloudWatch evaluates the latest datapoints that exist: an idle hour must count as not drifted."""
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    data = str(write_tree(tmp_path / "capture", capture_files(741)))
    capsys.readouterr()
    assert main(["--baseline", str(tmp_path / "baseline.json"), "--data", data, "--since-hours", "1",
                 "--until", "2026-11-22T10", "--out", str(tmp_path / "d"), "--metrics", "json",
                 "--dimension", "Variant=champion"]) == 0
    out = capsys.readouterr()
    sent = json.loads(out.out)
    values = {m["name"]: m["value"] for m in sent["metrics"]}
    assert values == {"DriftDetected": 0.0, "DriftedFeatures": 0.0, "RowsAnalysed": 0.0, "UnreadableRecords": 0.0}
    assert sent["dimensions"] == {"Variant": "champion"}
    assert "metrics say no drift over 0 rows" in out.err
