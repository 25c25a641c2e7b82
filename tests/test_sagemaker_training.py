"""The training container contract as SageMaker applies it, run as the image runs it.

The harness lays out /opt/ml as SageMaker does, on another filesystem than TMPDIR (/dev/shm vs
/tmp, as /opt/ml/model is its own mount in a job): a tuning child's hyperparameters (json-encoded
by the pipeline, plus the keys SageMaker adds), a sharded `train` channel, a separate `test`
channel and the platform's configuration as the `config` channel. Each test runs
`python -m training train` in a subprocess with SM_ROOT pointing at that tree.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

mlflow = pytest.importorskip("mlflow", reason="the ml extra (pip install -e '.[ml]') is not installed")

from training.data import generate_churn  # noqa: E402
from training.split import held_out  # noqa: E402

from .conftest import ROOT  # noqa: E402

SHM = Path("/dev/shm")
# The platform's own configuration, as the pipeline renders it from the blueprint: another
# platform name and fewer features than the example baked into the image (no senior_citizen), so
# a job that read the baked-in example would fail on the data.
PLATFORM_CONFIG = {
    "platform": "churn-prod",
    "data": {"target": "churned", "id_column": "customer_id",
             "numeric": ["tenure_months", "monthly_charges", "total_charges", "support_calls"],
             "categorical": ["contract", "payment_method", "internet_service", "paperless_billing"]},
    "split": {"test_size": 0.2, "seed": 42},
    "model": {"family": "hist_gradient_boosting", "search": {"n_iter": 2, "cv_folds": 2, "space": {
        "hist_gradient_boosting": {"learning_rate": {"low": 0.05, "high": 0.3, "log": True},
                                   "max_iter": {"low": 20, "high": 60},
                                   "max_leaf_nodes": {"low": 7, "high": 31, "log": True}},
        "random_forest": {"n_estimators": {"low": 10, "high": 30}, "min_samples_leaf": [1, 5]}}}},
    "gates": {"min_roc_auc": 0.7, "min_accuracy": 0.6, "max_latency_ms": 1000},
}
# A tuning child's hyperparameters.json: ours json-encoded, as the pipeline renders them, and the
# keys SageMaker adds (values as SageMaker writes them).
TUNING_CHILD = {
    "model": json.dumps("random_forest"), "bootstrap": json.dumps(False), "max_depth": json.dumps(6),
    "max_features": "sqrt",  # a plain string, not JSON: kept as it is
    "cv_folds": json.dumps(2),
    "_tuning_objective_metric": "validation:cv_roc_auc",
    "sagemaker_estimator_class_name": json.dumps("Estimator"),
    "sagemaker_estimator_module": json.dumps("sagemaker.estimator"),
}


@pytest.fixture
def sm_root(tmp_path: Path) -> Iterator[Path]:
    if not SHM.is_dir() or os.stat(SHM).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the temporary directory")
    root = SHM / f"opt-ml-{os.getpid()}-{tmp_path.name}"
    yield root
    subprocess.run(["rm", "-rf", str(root)], check=False)


def _frame(rows: int = 900, seed: int = 3) -> pd.DataFrame:
    return generate_churn(rows, seed=seed).drop(columns=["senior_citizen"])


def layout(root: Path, hyperparameters: dict[str, str], frame: pd.DataFrame | None = None,
           config: dict | None = PLATFORM_CONFIG, test: bool = True) -> pd.DataFrame:
    """/opt/ml as SageMaker lays it out: train in three shards (CSV without extension, gzip CSV,
    Parquet), the test part as its own channel, the configuration as a channel of one file."""
    frame = _frame() if frame is None else frame
    (root / "input/config").mkdir(parents=True)
    (root / "input/config/hyperparameters.json").write_text(json.dumps(hyperparameters))
    for name in ("train", "test", "config"):
        (root / "input/data" / name).mkdir(parents=True)
    probe = yaml.safe_load(yaml.safe_dump(config or PLATFORM_CONFIG))
    from training.config import parse

    is_test = held_out(frame, parse(probe)) if test else pd.Series(False, index=frame.index).to_numpy()
    train, held = frame[~is_test], frame[is_test]
    third = len(train) // 3
    train.iloc[:third].to_csv(root / "input/data/train/part-00000", index=False)
    with gzip.open(root / "input/data/train/part-00001.csv.gz", "wt") as handle:
        train.iloc[third:2 * third].to_csv(handle, index=False)
    train.iloc[2 * third:].to_parquet(root / "input/data/train/part-00002.parquet", index=False)
    (root / "input/data/train/_SUCCESS").write_text("")
    if test:
        held.to_parquet(root / "input/data/test/part-00000.parquet", index=False)
    if config is not None:
        (root / "input/data/config/training.json").write_text(json.dumps(config))
    return frame


def environment(root: Path, tmp: Path) -> dict[str, str]:
    (tmp / "tmp").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SM_"))}
    return {**env, "SM_ROOT": str(root), "TMPDIR": str(tmp / "tmp"), "PYTHONPATH": str(ROOT)}


def train(root: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    """`python -m training train`, as the image's ENTRYPOINT and CMD run it, from an empty directory."""
    return subprocess.run([sys.executable, "-m", "training", "train"], cwd=tmp, env=environment(root, tmp),
                          capture_output=True, text=True, timeout=300, check=False)


def failure(root: Path) -> str:
    return (root / "output/failure").read_text()


def test_a_tuning_child_trains_on_every_shard_and_writes_its_model(sm_root: Path, tmp_path: Path) -> None:
    frame = layout(sm_root, TUNING_CHILD)
    result = train(sm_root, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (sm_root / "output/failure").exists()
    metrics = dict(line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("validation:"))
    assert {"validation:roc_auc", "validation:accuracy", "validation:cv_roc_auc"} <= set(metrics)
    assert 0.7 < float(metrics["validation:roc_auc"]) <= 1
    test_rows = int(held_out(frame, _parsed()).sum())
    assert f"train channel: {len(frame) - test_rows} rows; test channel: {test_rows} rows" in result.stderr
    # The model crossed into the other filesystem, with its baseline; SageMaker tars this directory.
    model_dir = sm_root / "model"
    assert {"MLmodel", "baseline.json", "requirements.txt"} <= {p.name for p in model_dir.iterdir()}
    loaded = mlflow.sklearn.load_model(str(model_dir))
    clf = loaded.named_steps["classifier"]
    assert type(clf).__name__ == "RandomForestClassifier"  # `model` switched the family ...
    assert (clf.bootstrap, clf.max_depth, clf.max_features) == (False, 6, "sqrt")  # "false" decoded to False
    assert clf.n_estimators == 100  # a trial trains exactly what the tuner chose, defaults for the rest
    assert "searching 1 candidates x 2 folds of random_forest" in result.stderr
    baseline = json.loads((model_dir / "baseline.json").read_text())
    assert set(baseline["features"]) == {*PLATFORM_CONFIG["data"]["numeric"], *PLATFORM_CONFIG["data"]["categorical"]}
    inputs = json.loads(yaml.safe_load((model_dir / "MLmodel").read_text())["signature"]["inputs"])
    assert {c["name"]: c["type"] for c in inputs}["contract"] == "string"
    assert "pytest" not in (model_dir / "requirements.txt").read_text()
    assert (sm_root / "checkpoints/search-candidates.jsonl").is_file()

    # The Evaluate step: the packed model and the test part, configuration as a processing input directory.
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:
        for item in model_dir.iterdir():
            tar.add(item, arcname=item.name)
    (tmp_path / "model").mkdir()
    (tmp_path / "model.tar.gz").rename(tmp_path / "model/model.tar.gz")
    evaluated = subprocess.run(
        [sys.executable, "-m", "training", "evaluate", "--model", str(tmp_path / "model"),
         "--data", str(sm_root / "input/data/test"), "--output", str(tmp_path / "evaluation"),
         "--config", str(sm_root / "input/data/config")],
        cwd=tmp_path, env=environment(sm_root, tmp_path), capture_output=True, text=True, timeout=120, check=False)
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads((tmp_path / "evaluation/evaluation.json").read_text())
    assert report["rows"] == test_rows
    assert abs(report["metrics"]["roc_auc"] - float(metrics["validation:roc_auc"])) < 1e-5


def _parsed():
    from training.config import parse

    return parse(PLATFORM_CONFIG)


def test_without_a_test_channel_the_id_hash_holds_rows_out(sm_root: Path, tmp_path: Path) -> None:
    frame = layout(sm_root, {"model": json.dumps("random_forest")}, test=False)
    result = train(sm_root, tmp_path)
    assert result.returncode == 0, result.stderr
    held = int(held_out(frame, _parsed()).sum())
    assert f"train channel: {len(frame)} rows; holding out 20% of ids" in result.stderr
    assert f"refitting on {len(frame) - held} rows" in result.stderr and "validation:roc_auc=" in result.stdout
    # `model` switched the family and the search space: random_forest's, from the config channel.
    assert "searching 2 candidates x 2 folds of random_forest" in result.stderr
    clf = mlflow.sklearn.load_model(str(sm_root / "model")).named_steps["classifier"]
    assert 10 <= clf.n_estimators <= 30 and clf.min_samples_leaf in (1, 5)


@pytest.mark.parametrize(("hyperparameters", "config", "expected", "code"), [
    ({"model": '"random_forest"', "learning_rate": "0.1"}, PLATFORM_CONFIG,
     "'learning_rate': not a parameter of the random_forest classifier; valid: bootstrap, ccp_alpha,", 2),
    ({}, None, "no training configuration: the pipeline passes it as the 'config' channel", 2),
    ({"model": '"xgboost"'}, PLATFORM_CONFIG, "model: expected one of hist_gradient_boosting,", 2),
    ({"max_depth": "0"}, PLATFORM_CONFIG, "all 1 candidates failed; the first: candidate 1 {'max_depth': 0}", 1),
])
def test_a_refused_job_says_why_in_the_failure_file(sm_root: Path, tmp_path: Path, hyperparameters: dict,
                                                    config: dict | None, expected: str, code: int) -> None:
    layout(sm_root, hyperparameters, config=config)
    result = train(sm_root, tmp_path)
    assert result.returncode == code
    assert expected in failure(sm_root) and "Traceback" not in result.stderr
    assert not (sm_root / "model").exists() or not any((sm_root / "model").iterdir())


def test_bad_data_in_a_shard_is_named_by_file_and_row(sm_root: Path, tmp_path: Path) -> None:
    layout(sm_root, {})
    shard = sm_root / "input/data/train/part-00000"
    rows = pd.read_csv(shard, dtype=str, keep_default_na=False)
    rows.loc[6, "monthly_charges"] = "1e400"
    rows.to_csv(shard, index=False)
    result = train(sm_root, tmp_path)
    assert result.returncode == 2
    assert (f"{shard}: column 'monthly_charges', row 7: expected a finite number; got '1e400' "
            "(out of range for a 64-bit float)") in failure(sm_root)


def test_any_failure_writes_the_failure_file(sm_root: Path, tmp_path: Path) -> None:
    layout(sm_root, {"n_iter": "1"})
    (sm_root / "model").write_text("not a directory")  # the model cannot be written: an OSError after training
    result = train(sm_root, tmp_path)
    assert result.returncode == 1
    assert failure(sm_root).startswith(("FileExistsError", "NotADirectoryError"))
    assert len(failure(sm_root).encode()) <= 1024


def _best(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if line.startswith("best: "))


def test_a_spot_job_killed_mid_search_resumes_and_picks_the_same_model(sm_root: Path, tmp_path: Path) -> None:
    config = json.loads(json.dumps(PLATFORM_CONFIG))
    config["model"]["search"]["n_iter"] = 6
    layout(sm_root, {}, config=config)
    checkpoint = sm_root / "checkpoints/search-candidates.jsonl"

    uninterrupted = train(sm_root, tmp_path)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert len(checkpoint.read_text().splitlines()) == 1 + 6
    checkpoint.unlink()
    subprocess.run(["rm", "-rf", str(sm_root / "model")], check=True)

    # A spot interruption: the job is killed (SIGKILL, no chance to clean up) after k candidates.
    job = subprocess.Popen([sys.executable, "-m", "training", "train"], cwd=tmp_path,
                           env=environment(sm_root, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not checkpoint.exists() or len(checkpoint.read_text().splitlines()) < 3):
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.communicate()
    finished = len(checkpoint.read_text().splitlines()) - 1
    assert 2 <= finished < 6, f"killed after {finished} candidates"
    with checkpoint.open("a") as handle:
        handle.write('{"params": {"learning_rate": 0.1')  # torn by the kill

    resumed = train(sm_root, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{finished} finished before, from the checkpoint" in resumed.stderr
    fitted = [line for line in resumed.stderr.splitlines() if line.startswith("[") and line.endswith(" s)")]
    assert len(fitted) == 6 - finished  # only the remaining candidates were fitted
    assert _best(resumed.stderr) == _best(uninterrupted.stderr)
    assert len(checkpoint.read_text().splitlines()) == 1 + 6


def test_a_checkpoint_of_other_data_is_not_used(sm_root: Path, tmp_path: Path) -> None:
    layout(sm_root, {})
    checkpoint = sm_root / "checkpoints/search-candidates.jsonl"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_text('{"fingerprint": "of another data set"}\n'
                          '{"params": {"learning_rate": 0.1}, "result": {"scores": [0.99, 0.99]}}\n')
    result = train(sm_root, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "from other data or another search; starting the search over" in result.stderr
    assert "finished before" not in result.stderr


def test_only_the_first_host_of_a_multi_instance_job_trains(sm_root: Path, tmp_path: Path) -> None:
    layout(sm_root, {})
    (sm_root / "input/config/resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"], "network_interface_name": "eth0"}))
    result = train(sm_root, tmp_path)
    assert result.returncode == 0
    assert "algo-2: this training runs on one instance; the first host trains and writes the model" in result.stderr
    assert not (sm_root / "model").exists()  # nothing that could clash with algo-1's files in the archive
