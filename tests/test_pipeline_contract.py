"""The rendered SageMaker pipeline's steps run against the training image's code, as rendered.

The example blueprint's pipeline is rendered; each step's command line, paths, channels and
hyperparameters are taken from the definition (not retyped here) and run on small data with
`/opt/ml` laid out as SageMaker does: Split on the input prefix, a tuning child with the static
hyperparameters JSON-encoded and one draw from each range (plus the key SageMaker adds), then
Evaluate on the split's test part. The quality gate's JSON path is read from the report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from mlops_dsl import blueprints
from mlops_dsl.aws import training_config
from mlops_dsl.aws.pipeline_requests import steps
from mlops_dsl.namespaces import load
from mlops_dsl.templates.training import TrainingInfrastructure
from mlops_dsl.terraform.values import Call

from .conftest import ROOT

pytest.importorskip("sklearn", reason="the ml extra is not installed")
PROCESSING = "/opt/ml/processing"


def _platform():
    platform = next(p for p in blueprints.load([ROOT / "blueprints/customer_churn.py"]) if p.name == "customer-churn")
    training = next(t for t in platform.templates if isinstance(t, TrainingInfrastructure))
    return platform, training


def _definition() -> dict:
    platform, _ = _platform()
    dev = load(ROOT / "namespaces.yaml")["dev"]
    stack = next(b for b in platform.synth(dev, image_tags={"training": "a" * 12, "serving": "b" * 12})
                 if b.template == "training").stack
    pipeline = next(r for r in stack.resources if r.type == "aws_sagemaker_pipeline")
    call = pipeline.body["pipeline_definition"]
    assert isinstance(call, Call)
    return call.args[0]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def _local(command: list[str], root: Path) -> list[str]:
    """The step's command with SageMaker's processing root moved under `root`."""
    return [part.replace(PROCESSING, str(root)) for part in command]


def test_the_rendered_steps_run_on_the_training_code(tmp_path: Path) -> None:
    from training.data import generate_churn

    definition = _definition()
    by_name = {s["Name"]: s for s in steps(definition)}
    _, training = _platform()
    config = training_config.document(training, "customer-churn")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path / "tmp")}
    env.pop("SM_ROOT", None)
    (tmp_path / "tmp").mkdir()

    # Split: the input prefix, sharded as an export would be, and the rendered configuration.
    split_root = tmp_path / "split"
    (split_root / "data").mkdir(parents=True)
    (split_root / "config").mkdir()
    frame = generate_churn(1200, seed=5)
    for i, part in enumerate((frame.iloc[:600], frame.iloc[600:])):
        part.to_csv(split_root / "data" / f"part-0000{i}", index=False)
    (split_root / "config" / "training-config.json").write_text(json.dumps(config))
    command = by_name["Split"]["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
    assert command[:3] == ["python", "-m", "training"]
    result = _run(_local(command, split_root)[1:], env, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = {o["OutputName"]: o["S3Output"]["LocalPath"] for o in
               by_name["Split"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]}
    split_out = {name: Path(path.replace(PROCESSING, str(split_root))) for name, path in outputs.items()}
    assert (split_out["baseline"] / "baseline.json").is_file()

    # A tuning child: channels as the job definition names them, hyperparameters as SageMaker writes them.
    job = by_name["Tune"]["Arguments"]["TrainingJobDefinition"]
    ranges = by_name["Tune"]["Arguments"]["HyperParameterTuningJobConfig"]["ParameterRanges"]
    hyperparameters = dict(job["StaticHyperParameters"])
    for r in ranges.get("IntegerParameterRanges", []):
        hyperparameters[r["Name"]] = str((int(r["MinValue"]) + int(r["MaxValue"])) // 2)
    for r in ranges.get("ContinuousParameterRanges", []):
        hyperparameters[r["Name"]] = str((float(r["MinValue"]) + float(r["MaxValue"])) / 2)
    hyperparameters["_tuning_objective_metric"] = job["AlgorithmSpecification"]["MetricDefinitions"][0]["Name"]
    ml = Path("/dev/shm") / f"mlops-contract-{os.getpid()}"  # another filesystem than TMPDIR, as in SageMaker
    try:
        (ml / "input" / "config").mkdir(parents=True)
        (ml / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        channels = {c["ChannelName"] for c in job["InputDataConfig"]}
        assert channels == {"train", "test", "config"}
        for name, source in (("train", split_out["train"]), ("test", split_out["test"]),
                             ("config", split_root / "config")):
            target = ml / "input" / "data" / name
            target.mkdir(parents=True)
            for item in source.iterdir():
                (target / item.name).write_bytes(item.read_bytes())
        result = _run(["-m", "training", "train"], {**env, "SM_ROOT": str(ml)}, ROOT)
        assert result.returncode == 0, result.stdout + result.stderr + (
            (ml / "output" / "failure").read_text() if (ml / "output" / "failure").exists() else "")
        metrics = {m["Name"]: m["Regex"] for m in job["AlgorithmSpecification"]["MetricDefinitions"]}
        import re

        for name, regex in metrics.items():
            assert re.search(regex, result.stdout), f"{name} not printed: {result.stdout[-2000:]}"

        # SageMaker archives /opt/ml/model as model.tar.gz; Evaluate gets it at its `model` input.
        eval_root = tmp_path / "evaluate"
        (eval_root / "model").mkdir(parents=True)
        with tarfile.open(eval_root / "model" / "model.tar.gz", "w:gz") as tar:
            for item in (ml / "model").iterdir():
                tar.add(item, arcname=item.name)
    finally:
        subprocess.run(["rm", "-rf", str(ml)], check=False)
    (eval_root / "test").mkdir()
    for item in split_out["test"].iterdir():
        (eval_root / "test" / item.name).write_bytes(item.read_bytes())
    (eval_root / "config").mkdir()
    (eval_root / "config" / "training-config.json").write_text(json.dumps(config))
    command = by_name["Evaluate"]["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
    result = _run(_local(command, eval_root)[1:], env, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    report_dir = next(o["S3Output"]["LocalPath"] for o in
                      by_name["Evaluate"]["Arguments"]["ProcessingOutputConfig"]["Outputs"])
    report = json.loads((Path(report_dir.replace(PROCESSING, str(eval_root))) / "evaluation.json").read_text())
    path = by_name["QualityGate"]["Arguments"]["Conditions"][0]["LeftValue"]["Std:JsonGet"]["Path"].split(".")
    value = report
    for part in path:
        value = value[part]
    assert 0.5 < value <= 1.0
    assert report["rows"] == len(__import__("pandas").read_parquet(split_out["test"]))
