"""Drift detection against the training baseline, on captured data in SageMaker's format or CSV."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas", reason="the ml extra is not installed")
pytest.importorskip("scipy", reason="the ml extra is not installed")

from serving.drift import compare, main, read_captured  # noqa: E402
from training.baseline import baseline  # noqa: E402
from training.config import load  # noqa: E402
from training.data import generate_churn  # noqa: E402

CONFIG = load()
FEATURES = CONFIG.features


@pytest.fixture(scope="module")
def base() -> dict:
    train = generate_churn(4000, seed=11)[FEATURES]
    return baseline(train, list(CONFIG.numeric), list(CONFIG.categorical))


def _shifted(rows: int = 3000) -> pd.DataFrame:
    frame = generate_churn(rows, seed=12)[FEATURES]
    frame["monthly_charges"] = frame["monthly_charges"] * 1.3
    frame.loc[frame.sample(frac=0.8, random_state=1).index, "contract"] = "Month-to-month"
    return frame


def test_a_fresh_sample_of_the_same_distribution_is_not_flagged(base: dict) -> None:
    report = compare(base, generate_churn(3000, seed=99)[FEATURES])
    assert report["drifted"] is False and report["drifted_features"] == []
    assert report["max_psi"] < 0.05


def test_a_shifted_sample_is_flagged_on_the_shifted_features(base: dict) -> None:
    report = compare(base, _shifted())
    assert report["drifted_features"] == ["contract", "monthly_charges"]
    charges = report["features"]["monthly_charges"]
    assert charges["psi"] >= 0.2 and charges["p_value"] < 0.01 and charges["ks"] > 0.1
    assert report["features"]["contract"]["chi2"] > 0
    assert report["features"]["tenure_months"]["drifted"] is False


def test_unseen_categories_and_missing_values_are_reported(base: dict) -> None:
    frame = generate_churn(2000, seed=5)[FEATURES]
    frame.loc[:499, "internet_service"] = "Satellite"
    frame.loc[:999, "tenure_months"] = float("nan")
    report = compare(base, frame)
    assert report["features"]["internet_service"]["unseen_categories"] == ["Satellite"]
    assert report["features"]["internet_service"]["drifted"] is True
    assert report["features"]["tenure_months"]["missing"] == pytest.approx(0.5)


def _capture_line(body: str, content_type: str, encoding: str) -> str:
    data = base64.b64encode(body.encode()).decode() if encoding == "BASE64" else body
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": data,
                              "encoding": encoding},
            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                               "data": '{"predictions": [0]}', "encoding": "JSON"},
        },
        "eventMetadata": {"eventId": "e", "inferenceTime": "2026-11-22T10:00:00Z"},
        "eventVersion": "0",
    })


def _write_capture(path: Path, frame: pd.DataFrame) -> Path:
    """Half the rows as CSV requests (some base64), half as MLflow JSON requests, as clients send them."""
    lines = []
    for i, (_, row) in enumerate(frame.iterrows()):
        values = ["" if pd.isna(v) else v for v in row.tolist()]
        if i % 2:
            body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": [values]}})
            lines.append(_capture_line(body, "application/json", "JSON"))
        else:
            body = ",".join(str(v) for v in values)
            lines.append(_capture_line(body, "text/csv", "BASE64" if i % 4 == 0 else "CSV"))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_sagemaker_capture_files_are_read_in_every_encoding(tmp_path: Path) -> None:
    frame = generate_churn(40, seed=3)[FEATURES]
    read = read_captured(_write_capture(tmp_path / "capture.jsonl", frame), FEATURES)
    assert len(read) == 40
    assert list(read.columns) == FEATURES
    assert pd.to_numeric(read["tenure_months"]).tolist() == frame["tenure_months"].astype(float).tolist()
    assert read["contract"].tolist() == frame["contract"].tolist()


def test_cli_writes_reports_and_exits_1_on_drift(tmp_path: Path, base: dict, capsys) -> None:
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    _write_capture(tmp_path / "drifted.jsonl", _shifted(600))
    code = main(["--baseline", str(tmp_path / "baseline.json"), "--data", str(tmp_path / "drifted.jsonl"),
                 "--out", str(tmp_path / "report")])
    assert code == 1
    assert "DRIFT in contract, monthly_charges" in capsys.readouterr().out
    report = json.loads((tmp_path / "report/drift.json").read_text())
    assert report["drifted_features"] == ["contract", "monthly_charges"]
    page = (tmp_path / "report/drift.html").read_text()
    assert "Drift in 2 of 9 features: contract, monthly_charges" in page and "data:image/png;base64," in page
    assert (tmp_path / "report/drift.png").read_bytes().startswith(b"\x89PNG")

    generate_churn(800, seed=42)[FEATURES].to_csv(tmp_path / "fresh.csv", index=False)
    assert main(["--baseline", str(tmp_path / "baseline.json"), "--data", str(tmp_path / "fresh.csv"),
                 "--out", str(tmp_path / "report2")]) == 0


@pytest.mark.parametrize(("write", "expected"), [
    (lambda p: p.write_text('{"captureData": {"endpointInput": {"data": "1,2"}}}\nnot json\n'),
     "capture.jsonl:2: not a SageMaker data-capture record"),
    (lambda p: p.write_text(""), "capture.jsonl: holds no rows"),
    (lambda p: None, "capture.jsonl: no such file"),
])
def test_bad_captured_data_is_a_clear_error(tmp_path: Path, base: dict, capsys, write, expected: str) -> None:
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    path = tmp_path / "capture.jsonl"
    write(path)
    assert main(["--baseline", str(tmp_path / "baseline.json"), "--data", str(path)]) == 2
    assert expected in capsys.readouterr().err


def test_a_csv_without_the_baseline_columns_and_a_bad_baseline(tmp_path: Path, base: dict, capsys) -> None:
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    assert main(["--baseline", str(tmp_path / "baseline.json"), "--data", str(tmp_path / "data.csv")]) == 2
    assert "missing column 'tenure_months' of the baseline" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["--baseline", str(tmp_path / "bad.json"), "--data", str(tmp_path / "data.csv")]) == 2
    assert "bad.json: not a training baseline" in capsys.readouterr().err


def test_thresholds_come_from_the_config_and_flags_override_them(tmp_path: Path, base: dict, capsys) -> None:
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    _shifted(1000).to_csv(tmp_path / "data.csv", index=False)
    args = ["--baseline", str(tmp_path / "baseline.json"), "--data", str(tmp_path / "data.csv"),
            "--out", str(tmp_path / "r")]
    (tmp_path / "lenient.yaml").write_text("psi: 5.0\np_value: 0.01\n")
    assert main([*args, "--config", str(tmp_path / "lenient.yaml")]) == 0
    assert json.loads((tmp_path / "r/drift.json").read_text())["thresholds"]["psi"] == 5.0
    assert main([*args, "--config", str(tmp_path / "lenient.yaml"), "--psi-threshold", "0.2"]) == 1
    (tmp_path / "bad.yaml").write_text("psi: high\n")
    assert main([*args, "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "bad.yaml: psi: expected a positive number; got 'high'" in capsys.readouterr().err
