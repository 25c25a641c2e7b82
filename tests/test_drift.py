"""Drift detection against the training baseline: reading captures, the decision, the command line."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas", reason="the ml extra is not installed")
np = pytest.importorskip("numpy", reason="the ml extra is not installed")
pytest.importorskip("scipy", reason="the ml extra is not installed")

from serving.drift import Profile, Thresholds, compare, main  # noqa: E402
from serving.drift.capture import Reader  # noqa: E402
from training.baseline import baseline  # noqa: E402
from training.config import load  # noqa: E402
from training.data import generate_churn  # noqa: E402

CONFIG = load()
FEATURES = CONFIG.features


@pytest.fixture(scope="module")
def base() -> dict:
    train = generate_churn(4000, seed=11)[FEATURES]
    return baseline(train, list(CONFIG.numeric), list(CONFIG.categorical))


@pytest.fixture
def base_file(tmp_path: Path, base: dict) -> Path:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(base))
    return path


def profile_of(base: dict, frame: pd.DataFrame) -> Profile:
    profile = Profile(base)
    profile.add({c: frame[c].to_numpy(dtype=float if base["features"][c]["type"] == "numeric" else object)
                 for c in base["features"]}, len(frame))
    return profile


def _shifted(rows: int = 3000) -> pd.DataFrame:
    frame = generate_churn(rows, seed=12)[FEATURES]
    frame["monthly_charges"] = frame["monthly_charges"] * 1.3
    frame.loc[frame.sample(frac=0.8, random_state=1).index, "contract"] = "Month-to-month"
    return frame


def capture_line(body: str, content_type: str, encoding: str) -> str:
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


def _cells(frame: pd.DataFrame) -> list[list]:
    return [["" if pd.isna(v) else v for v in row] for row in frame.itertuples(index=False)]


def request_bodies(frame: pd.DataFrame, per_record: int = 1) -> list[str]:
    """Capture lines in every format the server accepts, in turn: CSV (plain, base64, with header),
    dataframe_split (with and without columns), dataframe_records, instances, columnar inputs."""
    lines = []
    for i, start in enumerate(range(0, len(frame), per_record)):
        part = frame.iloc[start:start + per_record]
        cells = _cells(part)
        nulls = [[None if v == "" else v for v in row] for row in cells]
        kind = i % 8
        if kind < 3:
            header = [",".join(FEATURES)] if kind == 2 else []
            body = "\n".join(header + [",".join(str(v) for v in row) for row in cells])
            lines.append(capture_line(body, "text/csv", "BASE64" if kind == 1 else "CSV"))
            continue
        if kind == 3:
            doc = {"dataframe_split": {"columns": FEATURES, "data": nulls}}
        elif kind == 4:
            doc = {"dataframe_split": {"data": nulls}}
        elif kind == 5:
            doc = {"dataframe_records": [dict(zip(FEATURES, row, strict=True)) for row in nulls]}
        elif kind == 6:
            doc = {"instances": nulls}
        else:
            doc = {"inputs": {c: [row[j] for row in nulls] for j, c in enumerate(FEATURES)}}
        lines.append(capture_line(json.dumps(doc), "application/json", "JSON"))
    return lines


def write_capture(path: Path, frame: pd.DataFrame, per_record: int = 1, extra: tuple[str, ...] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([*request_bodies(frame, per_record), *extra]) + "\n")
    return path


def test_a_fresh_sample_of_the_same_distribution_is_not_flagged(base: dict) -> None:
    report = compare(profile_of(base, generate_churn(3000, seed=99)[FEATURES]))
    assert report["drifted"] is False and report["drifted_features"] == []


def test_a_shifted_sample_is_flagged_on_the_shifted_features(base: dict) -> None:
    report = compare(profile_of(base, _shifted()))
    assert report["drifted_features"] == ["contract", "monthly_charges"]
    charges = report["features"]["monthly_charges"]
    assert charges["test"] == "ks" and charges["effect"] > 0.1 and charges["p_adjusted"] < 0.01
    assert report["features"]["contract"]["test"] == "chi2"
    assert report["features"]["tenure_months"]["drifted"] is False


def test_unseen_categories_and_missing_values_are_counted_and_flagged(base: dict) -> None:
    frame = generate_churn(2000, seed=5)[FEATURES]
    frame.loc[:499, "internet_service"] = "Satellite"
    frame.loc[:999, "tenure_months"] = float("nan")
    report = compare(profile_of(base, frame))
    service = report["features"]["internet_service"]
    assert service["unseen"] == 500 and service["unseen_categories"] == ["Satellite"] and service["drifted"]
    tenure = report["features"]["tenure_months"]
    assert tenure["missing"] == pytest.approx(0.5) and tenure["baseline_missing"] == 0 and tenure["drifted"]
    # Missing share alone: the present values are a fair sample, but half of them are gone.
    assert tenure["effect"] < 0.05 and tenure["missing_effect"] == pytest.approx(0.5)


def test_a_binary_feature_is_a_discrete_distribution(base: dict) -> None:
    assert base["features"]["senior_citizen"]["kind"] == "discrete"
    assert base["features"]["senior_citizen"]["values"] == [0.0, 1.0]
    frame = generate_churn(3000, seed=8)[FEATURES]
    frame["senior_citizen"] = (np.random.default_rng(0).random(len(frame)) < 0.9).astype(int)
    report = compare(profile_of(base, frame))
    assert report["drifted_features"] == ["senior_citizen"]
    assert report["features"]["senior_citizen"]["effect"] == pytest.approx(0.74, abs=0.03)


def test_thresholds_of_zero_are_honoured(base: dict) -> None:
    profile = profile_of(base, _shifted())
    assert compare(profile, Thresholds(alpha=0.0, min_effect=0.0))["drifted"] is False  # p < 0 never holds
    assert compare(profile, Thresholds(alpha=0.01, min_effect=0.9))["drifted"] is False
    assert compare(profile, Thresholds(alpha=0.01, min_effect=0.0))["drifted_features"] == \
        ["contract", "monthly_charges"]


def test_sagemaker_capture_files_are_read_in_every_format_the_server_accepts(tmp_path: Path, base: dict) -> None:
    frame = generate_churn(80, seed=3)[FEATURES]
    direct = profile_of(base, frame)
    via_capture = Profile(base)
    reader = Reader(via_capture)
    path = write_capture(tmp_path / "capture.jsonl", frame, per_record=2)
    reader.capture(str(path), path.open("rb"))
    reader.flush()
    assert (via_capture.rows, via_capture.records, via_capture.unreadable) == (80, 40, 0)
    assert via_capture.state()["features"] == direct.state()["features"]


def test_unreadable_records_are_counted_skipped_and_reported(tmp_path: Path, base_file: Path, capsys) -> None:
    bad = ("not json",
           json.dumps({"captureData": {"endpointOutput": {}}}),
           capture_line("1,2", "text/csv", "CSV"),
           capture_line("x", "application/xml", "CSV"),
           capture_line("x", "text/csv", "CSV").replace('"encoding": "CSV"', '"encoding": "BASE64"'))
    write_capture(tmp_path / "in/capture.jsonl", generate_churn(300, seed=4)[FEATURES], extra=bad)
    assert main(["--baseline", str(base_file), "--data", str(tmp_path / "in"), "--out", str(tmp_path / "r")]) == 0
    assert "over 300 rows (5 unreadable records skipped)" in capsys.readouterr().out
    report = json.loads((tmp_path / "r/drift.json").read_text())
    assert report["unreadable_records"] == 5 and report["records"] == 305
    reasons = report["unreadable_examples"]
    assert reasons[0].endswith("capture.jsonl:301: not a SageMaker data-capture record "
                               "(Expecting value: line 1 column 1 (char 0))")
    assert "capture.jsonl:302: not a SageMaker data-capture record ('endpointInput')" in reasons[1]
    assert "capture.jsonl:303: a body the server rejects (CSV row 1 has 2 fields" in reasons[2]
    assert "capture.jsonl:304: a body the server rejects (unsupported content type 'application/xml'" in reasons[3]
    assert "capture.jsonl:305: not a SageMaker data-capture record (endpointInput.data is not base64" in reasons[4]
    assert "5 unreadable records skipped" in (tmp_path / "r/drift.html").read_text()


def test_cli_writes_reports_and_exits_1_on_drift(tmp_path: Path, base_file: Path, capsys) -> None:
    write_capture(tmp_path / "drifted/2026/11/22/10/a.jsonl", _shifted(600), per_record=10)
    code = main(["--baseline", str(base_file), "--data", str(tmp_path / "drifted"), "--out", str(tmp_path / "report")])
    assert code == 1
    assert "DRIFT in contract, monthly_charges over 600 rows" in capsys.readouterr().out
    report = json.loads((tmp_path / "report/drift.json").read_text())
    assert report["drifted_features"] == ["contract", "monthly_charges"]
    page = (tmp_path / "report/drift.html").read_text()
    assert "Drift in 2 of 9 features: contract, monthly_charges" in page and "data:image/png;base64," in page
    assert (tmp_path / "report/drift.png").read_bytes().startswith(b"\x89PNG")

    generate_churn(800, seed=42).to_csv(tmp_path / "fresh.csv", index=False)  # a table with extra columns
    assert main(["--baseline", str(base_file), "--data", str(tmp_path / "fresh.csv"),
                 "--out", str(tmp_path / "report2")]) == 0


def test_a_csv_table_skips_rows_with_text_in_numeric_columns(tmp_path: Path, base_file: Path) -> None:
    frame = generate_churn(200, seed=6)[FEATURES].astype(object)
    frame.loc[5, "tenure_months"] = "twelve"
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert main(["--baseline", str(base_file), "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r/drift.json").read_text())
    assert report["rows"] == 199 and report["unreadable_records"] == 1
    assert report["unreadable_examples"] == [f"{tmp_path / 't.csv'}:7: a numeric column holds text"]


@pytest.mark.parametrize(("setup", "expected"), [
    (lambda d: (d / "capture.jsonl").write_text("not json\n"),
     "no readable rows in 1 records (" ),
    (lambda d: (d / "capture.jsonl").write_text(""), "no readable rows in 0 records"),
    (lambda d: None, "no .jsonl, .json or .csv files"),
    (lambda d: (d / "t.csv").write_text("a,b\n1,2\n"), "t.csv:1: a CSV header without the baseline's column"),
])
def test_input_without_readable_rows_is_a_clear_error(tmp_path: Path, base_file: Path, capsys, setup,
                                                      expected: str) -> None:
    data = tmp_path / "in"
    data.mkdir()
    setup(data)
    assert main(["--baseline", str(base_file), "--data", str(data), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and expected in err and "Traceback" not in err


def test_bad_baselines_and_paths_are_clear_errors(tmp_path: Path, base: dict, base_file: Path, capsys) -> None:
    (tmp_path / "data.csv").write_text(",".join(FEATURES) + "\n")
    assert main(["--baseline", str(base_file), "--data", str(tmp_path / "nowhere")]) == 2
    assert f"{tmp_path / 'nowhere'}: no such file or directory" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["--baseline", str(tmp_path / "bad.json"), "--data", str(tmp_path / "data.csv")]) == 2
    assert "bad.json: not a training baseline" in capsys.readouterr().err
    old = {**base, "version": 1}
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert main(["--baseline", str(tmp_path / "old.json"), "--data", str(tmp_path / "data.csv")]) == 2
    assert "old.json: baseline version 1; this job reads version 2 (retrain to write one)" in capsys.readouterr().err


def test_thresholds_come_from_the_config_and_flags_override_them(tmp_path: Path, base_file: Path, capsys) -> None:
    _shifted(1000).to_csv(tmp_path / "data.csv", index=False)
    args = ["--baseline", str(base_file), "--data", str(tmp_path / "data.csv"), "--out", str(tmp_path / "r")]
    (tmp_path / "lenient.yaml").write_text("alpha: 0.01\nmin_effect: 0.9\n")
    assert main([*args, "--config", str(tmp_path / "lenient.yaml")]) == 0
    assert json.loads((tmp_path / "r/drift.json").read_text())["thresholds"] == {"alpha": 0.01, "min_effect": 0.9}
    assert main([*args, "--config", str(tmp_path / "lenient.yaml"), "--min-effect", "0"]) == 1
    assert main([*args, "--config", str(tmp_path / "lenient.yaml"), "--min-effect", "0", "--alpha", "0"]) == 0
    assert json.loads((tmp_path / "r/drift.json").read_text())["thresholds"] == {"alpha": 0.0, "min_effect": 0.0}
    (tmp_path / "bad.yaml").write_text("alpha: high\n")
    assert main([*args, "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "bad.yaml: alpha: expected a number from 0 to 1; got 'high'" in capsys.readouterr().err
    assert main([*args, "--alpha", "-1"]) == 2
    assert "--alpha: expected a number from 0 to 1; got -1.0" in capsys.readouterr().err


def test_unseen_category_names_are_bounded_and_their_total_exact(base: dict) -> None:
    frame = generate_churn(1000, seed=9)[FEATURES]
    frame["contract"] = [f"new-{i % 150}" for i in range(len(frame))]
    halves = [profile_of(base, frame.iloc[:500]), profile_of(base, frame.iloc[500:])]
    halves[0].merge(halves[1])
    contract = compare(halves[0])["features"]["contract"]
    assert contract["unseen"] == 1000 and len(contract["unseen_categories"]) == 20
    assert len(halves[0].features["contract"].unseen) == 100  # the rest pooled, still counted


def test_sparse_columns_are_pooled_before_the_chi_square_test() -> None:
    from scipy.stats import chi2_contingency, fisher_exact

    from serving.drift.stats import contingency

    base, live = np.array([500, 480, 3, 1, 40]), np.array([510, 470, 2, 0, 30])
    pooled = np.array([[500, 480, 44], [510, 470, 32]])  # 3+1 and 2+0 expect < 5: pooled, then with the 40/30
    assert contingency(base, live) == pytest.approx(chi2_contingency(pooled, correction=False).pvalue)
    small = np.array([[8, 1], [1, 8]])  # expected 4.5 per cell: Fisher's exact test
    assert contingency(small[0], small[1]) == pytest.approx(fisher_exact(small).pvalue)
    assert contingency(np.array([9, 1]), np.array([1, 9])) == pytest.approx(
        chi2_contingency(np.array([[9, 1], [1, 9]]), correction=False).pvalue)  # expected 5: chi-square
