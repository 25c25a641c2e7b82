"""The training pipeline on small data: end to end, gates, bad input, registry aliases, promotion
and the image (the SageMaker contract: test_sagemaker_training.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

mlflow = pytest.importorskip("mlflow", reason="the ml extra (pip install -e '.[ml]') is not installed")

from training import tracking  # noqa: E402
from training.cli import main  # noqa: E402
from training.config import Gates, load  # noqa: E402
from training.data import generate_churn  # noqa: E402
from training.evaluation import check_gates  # noqa: E402
from training.promote import compare  # noqa: E402

from .conftest import ROOT, check_image  # noqa: E402

SMALL = {"n_iter": 2, "cv_folds": 2}


def _config(tmp: Path, **changes) -> Path:
    """The shipped config with a small search (and any changes), so each run takes seconds."""
    doc = yaml.safe_load((ROOT / "training/config.yaml").read_text())
    doc["model"]["search"].update(SMALL)
    doc["model"]["search"]["space"]["gradient_boosting"] = {"n_estimators": {"low": 20, "high": 40},
                                                            "max_depth": [2, 3]}
    doc["model"]["search"]["space"]["hist_gradient_boosting"].update({"max_iter": {"low": 20, "high": 60}})
    doc["gates"]["max_latency_ms"] = 1000  # on a shared, busy machine p99 is the neighbours' (tests set it to fail)
    for dotted, value in changes.items():
        node = doc
        *path, last = dotted.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SM_ROOT", raising=False)
    generate_churn(800, seed=3).to_csv(tmp_path / "data.csv", index=False)
    return tmp_path


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_train_end_to_end(workdir: Path) -> None:
    result = _run("train", "--data", "data.csv", "--config", str(_config(workdir)))
    assert result.exit_code == 0, result.output
    assert "registered as version 1 with alias 'candidate'" in result.output
    tracking.configure()
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("customer-churn", "candidate")
    run = client.get_run(version.run_id)
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "latency_p50_ms", "latency_p99_ms",
            "cv_roc_auc"} <= set(run.data.metrics)
    assert run.data.metrics["roc_auc"] > 0.7 and run.data.tags["gate_status"] == "passed"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {"plots/confusion_matrix.png", "plots/roc_curve.png", "plots/precision_recall_curve.png",
                         "plots/feature_importance.png"}
    baseline = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/baseline.json")
    tenure = baseline["features"]["tenure_months"]
    assert tenure["type"] == "numeric" and abs(sum(tenure["histogram"]["frequencies"]) - 1) < 1e-9
    assert set(baseline["features"]["contract"]["frequencies"]) == {"Month-to-month", "One year", "Two year"}
    model = mlflow.pyfunc.load_model("models:/customer-churn@candidate")
    assert model.metadata.signature is not None and model.metadata.get_input_schema().input_names()[0] == \
        "tenure_months"
    # The signature declares numeric features as doubles (they may be missing), as clients must send them.
    sample = pd.read_csv("data.csv").drop(columns=["customer_id", "churned"]).head(3)
    numeric = ["tenure_months", "monthly_charges", "total_charges", "support_calls", "senior_citizen"]
    assert len(model.predict(sample.astype(dict.fromkeys(numeric, "float64")))) == 3
    assert (workdir / ".mlops/mlflow.db").exists() and (workdir / ".mlops/mlartifacts").is_dir()


def test_each_gate_reports_by_how_much_it_failed() -> None:
    results = {"roc_auc": 0.8, "accuracy": 0.75, "latency_p99_ms": 12.0}
    failed = check_gates(Gates(min_roc_auc=0.85, min_accuracy=0.8, max_latency_ms=10), results)
    assert [g.message for g in failed] == [
        "gate min_roc_auc failed: roc_auc 0.8000 is 0.0500 below 0.85",
        "gate min_accuracy failed: accuracy 0.7500 is 0.0500 below 0.8",
        "gate max_latency_ms failed: latency_p99_ms 12.00 ms is 2.00 ms above 10 ms",
    ]
    assert all(g.passed for g in check_gates(Gates(0.7, 0.7, 20), results))
    assert check_gates(Gates(), results) == []


@pytest.mark.parametrize(("gate", "value", "expected"), [
    ("min_roc_auc", 0.999, "gate min_roc_auc failed: roc_auc"),
    ("max_latency_ms", 0.0001, "gate max_latency_ms failed: latency_p99_ms"),
])
def test_a_failing_gate_records_a_failed_run_and_registers_nothing(workdir: Path, gate: str, value: float,
                                                                   expected: str) -> None:
    result = _run("train", "--data", "data.csv", "--config", str(_config(workdir, **{f"gates.{gate}": value})))
    assert result.exit_code == 1
    assert expected in result.output and "not registered: a gate failed" in result.output
    tracking.configure()
    runs = mlflow.search_runs(experiment_names=["customer-churn"], output_format="list")
    assert [r.info.status for r in runs] == ["FAILED"] and runs[0].data.tags["failed_gates"] == gate
    assert mlflow.MlflowClient().search_registered_models() == []


BAD_DATA = [
    (lambda f: f.drop(columns=["tenure_months"]),
     "data.csv: missing column 'tenure_months' (training/config.yaml data section)"),
    (lambda f: f.assign(favourite_colour="blue"),
     "data.csv: unexpected column 'favourite_colour'; add it to training/config.yaml or drop it"),
    (lambda f: f.assign(monthly_charges=f["monthly_charges"].astype(object).where(f.index != 16, "abc")),
     "data.csv: column 'monthly_charges', row 17: expected a number; got 'abc'"),
    (lambda f: f.assign(churned=np.where(f.index == 4, 2, f["churned"])),
     "data.csv: column 'churned' (the target), row 5: expected 0 or 1; got '2' (the target must be binary)"),
    (lambda f: f.assign(churned=0),
     "data.csv: column 'churned' (the target) holds only the class 0; training needs both 0 and 1"),
    (lambda f: f.head(0), "data.csv: the file has a header but no rows"),
]


@pytest.mark.parametrize(("change", "expected"), BAD_DATA)
def test_bad_input_is_a_clear_error_and_logs_nothing(workdir: Path, change, expected: str) -> None:
    change(pd.read_csv("data.csv")).to_csv("data.csv", index=False)
    result = _run("train", "--data", "data.csv", "--config", str(_config(workdir)))
    assert result.exit_code == 2
    assert f"Error: {expected}" in result.output
    assert "Traceback" not in result.output
    assert not (workdir / ".mlops").exists()  # no run, no model


@pytest.mark.parametrize(("content", "expected"), [
    ("", "data.csv: the file is empty"),
    ('customer_id,tenure_months\n"C1,3\n', "data.csv: not a well-formed CSV file"),
    ("a,b\n1,2,3,4\n", "data.csv: not a well-formed CSV file: the header has 2 fields, but line 2 has 4"),
    ("a,b\n1,2\n3\n", "data.csv: not a well-formed CSV file: the header has 2 fields, but line 3 has 1"),
    ("a,b\n\xff\xfe,1\n", "data.csv: not UTF-8 text"),
])
def test_broken_files_are_clear_errors(workdir: Path, content: str, expected: str) -> None:
    Path("data.csv").write_bytes(content.encode("latin-1"))
    result = _run("train", "--data", "data.csv", "--config", str(_config(workdir)))
    assert result.exit_code == 2 and f"Error: {expected}" in result.output


def test_parquet_input_and_missing_file(workdir: Path) -> None:
    frame = pd.read_csv("data.csv")
    frame.assign(support_calls=frame["support_calls"].astype(str).where(frame.index != 2, "many")).to_parquet(
        "data.parquet")
    result = _run("train", "--data", "data.parquet", "--config", str(_config(workdir)))
    assert result.exit_code == 2 and "column 'support_calls', row 3: expected a number; got 'many'" in result.output
    result = _run("train", "--data", "nope.csv", "--config", str(_config(workdir)))
    assert result.exit_code == 2 and "Error: nope.csv: no such file" in result.output


def test_bad_config_is_a_clear_error(workdir: Path) -> None:
    result = _run("train", "--config", str(_config(workdir, **{"model.family": "xgboost"})))
    assert result.exit_code == 2
    assert ("model.family: expected one of hist_gradient_boosting, gradient_boosting, random_forest, "
            "logistic_regression; got 'xgboost'") in result.output


def test_promote_both_ways(workdir: Path) -> None:
    weak = _config(workdir, **{"model.family": "random_forest", "gates.min_roc_auc": 0.5,
                               "gates.min_accuracy": 0.5,
                               "model.search.space.random_forest": {"n_estimators": [1], "max_depth": [1]}})
    assert _run("promote", "--config", str(weak)).exit_code == 2  # nothing trained yet
    assert _run("train", "--data", "data.csv", "--config", str(weak)).exit_code == 0
    first = _run("promote", "--config", str(weak))
    assert first.exit_code == 0 and "version 1 is production: there was no production model yet" in first.output
    again = _run("promote", "--config", str(weak))  # production stayed: exit 1, as for a candidate that loses
    assert again.exit_code == 1 and "version 1 already is production" in again.output

    assert _run("train", "--data", "data.csv", "--config", str(weak)).exit_code == 0  # the same model again
    kept = _run("promote", "--config", str(weak))
    assert kept.exit_code == 1 and "kept version 1 as production: candidate 2" in kept.output

    strong = _config(workdir)
    assert _run("train", "--data", "data.csv", "--config", str(strong)).exit_code == 0
    promoted = _run("promote", "--config", str(strong))
    assert promoted.exit_code == 0 and "version 3 is production" in promoted.output, promoted.output
    assert _run("production").output.strip() == "production: customer-churn version 3"
    client = mlflow.MlflowClient()
    report = mlflow.artifacts.load_dict(
        f"runs:/{client.get_model_version('customer-churn', '3').run_id}/promotion/comparison.json")
    assert report["decision"] == "promoted" and report["delta"] >= report["margin"] and report["p_value"] < 0.05


def test_a_registry_error_during_promotion_is_an_error(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not "no candidate" or "no production model yet", which would promote without comparing."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    result = CliRunner().invoke(main, ["promote", "--config", str(_config(workdir))])
    assert result.exit_code == 1
    assert "Error: the model registry failed, production was not changed: API request to http://127.0.0.1:9" in \
        result.output


def test_failed_search_candidates_are_reported(workdir: Path) -> None:
    config = _config(workdir, **{"model.family": "logistic_regression", "gates.min_roc_auc": 0.5,
                                 "model.search.space.logistic_regression": {"C": [1.0, -1.0]}})
    result = _run("train", "--data", "data.csv", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "1 search candidates failed (search/failed_candidates.txt):" in result.output
    assert "candidate 2 {'C': -1.0}: InvalidParameterError: The 'C' parameter" in result.output
    everything_fails = _config(workdir, **{"model.family": "logistic_regression",
                                           "model.search.space.logistic_regression": {"C": [-1.0, -2.0]}})
    result = _run("train", "--data", "data.csv", "--config", str(everything_fails))
    assert result.exit_code == 1
    assert "Error: all 2 candidates failed; the first: candidate 1 {'C': -1.0}: InvalidParameterError" in \
        result.output


def test_the_signature_comes_from_the_schema_not_the_example_rows(workdir: Path) -> None:
    frame = pd.read_csv("data.csv")
    frame["payment_method"] = frame["payment_method"].astype(object)
    frame.loc[:60, "payment_method"] = np.nan  # missing in the input example's rows
    frame.to_csv("data.csv", index=False)
    assert _run("train", "--data", "data.csv", "--config", str(_config(workdir))).exit_code == 0
    tracking.configure()
    schema = mlflow.pyfunc.load_model("models:/customer-churn@candidate").metadata.get_input_schema()
    types = {c.name: c.type.name for c in schema.inputs}
    assert types["payment_method"] == "string" and types["tenure_months"] == "double"


def test_the_search_runs_on_a_sample_and_the_best_is_refitted_on_all_rows(workdir: Path) -> None:
    result = _run("train", "--data", "data.csv", "--config", str(_config(workdir, **{"model.search.max_rows": 300})))
    assert result.exit_code == 0, result.output
    train_rows = int(next(line for line in result.output.splitlines() if line.startswith("best: "))
                     .rsplit("refitting on ", 1)[1].split()[0])
    assert f"on 300 rows (a sample of {train_rows}: model.search.max_rows)" in result.output
    assert 600 < train_rows < 700  # 80% of 800 ids


def test_too_few_rows_of_a_class_to_train_is_a_clear_error(workdir: Path) -> None:
    frame = pd.read_csv("data.csv")
    frame = frame[(frame["churned"] == 0) | (frame.index < 40)]  # a handful of churners, most held out or not
    frame.to_csv("data.csv", index=False)
    result = _run("train", "--data", "data.csv", "--config", str(_config(workdir, **{"model.search.cv_folds": 12})))
    assert result.exit_code == 2
    assert "Error: column 'churned' (the target): the training split holds" in result.output
    assert "it needs at least 12 rows of each class (max(model.search.cv_folds, 10))" in result.output
    assert not (workdir / ".mlops").exists()


def test_paired_bootstrap_decides_on_the_same_rows() -> None:
    config = load()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    informative = y + rng.normal(0, 0.6, 600)
    noise = rng.normal(0, 1, 600)
    assert compare(config, y, informative, noise)["candidate_is_better"] is True
    same = compare(config, y, informative, informative)
    assert same["candidate_is_better"] is False and same["delta"] == 0


def test_image_is_pinned_and_hadolint_clean() -> None:
    check_image("training")
