"""`python -m training train | split | evaluate | promote | production | generate-data`.

Exit codes: 0 done; 1 a gate failed, every search candidate failed, or promotion kept the old
model; 2 bad input (config or data), reported as `Error:` lines without a traceback.
"""

from __future__ import annotations

import functools
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .config import DEFAULT_CONFIG, ConfigError
from .config import load as load_config
from .data import DataError
from .model import SearchError

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_DATA = Path(".mlops/data/churn.csv")


def report(exc: DataError | ConfigError | SearchError) -> list[str]:
    """The `Error:` lines of a failure the user can act on."""
    return [f"Error: {p}" for p in exc.problems] if isinstance(exc, DataError) else [f"Error: {exc}"]


def user_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (DataError, ConfigError) as exc:
            click.echo("\n".join(report(exc)), err=True)
            sys.exit(2)
        except SearchError as exc:
            click.echo("\n".join(report(exc)), err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


config_option = click.option("--config", "config_path", type=click.Path(path_type=Path),
                             default=DEFAULT_CONFIG, show_default=True,
                             help="Training configuration: a .yaml/.json file, or a directory holding one.")
data_help = "A CSV or Parquet file, or a directory of them (shards, .csv.gz, partitioned Parquet), read whole."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train, evaluate and promote the platform's model."""


@main.command("generate-data")
@click.option("--rows", default=5000, show_default=True, type=click.IntRange(10))
@click.option("--seed", default=7, show_default=True)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=DEFAULT_DATA, show_default=True)
def generate_data(rows: int, seed: int, out: Path) -> None:
    """Write the deterministic sample churn data set (CSV, or Parquet by extension)."""
    from .data import generate_churn

    frame = generate_churn(rows, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    click.echo(f"wrote {rows} rows to {out} ({frame['churned'].mean():.1%} churned)")


@main.command()
@click.option("--data", type=click.Path(path_type=Path), help=f"{data_help} Default: the generated sample, "
              "made on first use.")
@config_option
@user_errors
def train(data: Path | None, config_path: Path) -> None:
    """Train, evaluate on held-out data, apply the gates, and record the run in MLflow.

    Inside a SageMaker training container (hyperparameters.json present) it follows the training
    contract instead: the configuration from the `config` channel, no registry, the model to
    /opt/ml/model.
    """
    from . import sagemaker

    if sagemaker.active():
        from .sagemaker_job import run

        sys.exit(run())
    from . import train as t
    from .data import generate_churn, load

    config = load_config(config_path)
    if data is None:
        data = DEFAULT_DATA
        if not data.exists():
            data.parent.mkdir(parents=True, exist_ok=True)
            generate_churn().to_csv(data, index=False)
            t.log(f"generated the sample data set at {data}")
    frame = load(data, config)
    fitted = t.fit(frame, config)
    result = t.record(config, fitted, str(data))
    click.echo(t.summary(result))
    if not fitted.passed:
        sys.exit(1)


@main.command("split")
@click.option("--data", required=True, type=click.Path(path_type=Path, exists=True), help=data_help)
@click.option("--output", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Writes train/part-00000.parquet, test/part-00000.parquet and baseline/baseline.json.")
@config_option
@user_errors
def split_command(data: Path, config_path: Path, output: Path) -> None:
    """Validate the data and split it by a stable hash of the id column (as `train` does)."""
    from .split_job import run

    run(data, load_config(config_path), output)


def _model_path(model: str, tmp: Path) -> str:
    """A model URI or directory; a SageMaker model.tar.gz is unpacked first."""
    path = Path(model)
    archive = path / "model.tar.gz" if path.is_dir() else path
    if archive.name.endswith(".tar.gz") and archive.is_file():
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        return str(tmp)
    return model


@main.command()
@click.option("--model", required=True, help="A models:/ URI, an MLflow model directory, or a model.tar.gz "
              "(or a directory holding one).")
@click.option("--data", required=True, type=click.Path(path_type=Path, exists=True), help=data_help)
@click.option("--output", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Directory for evaluation.json.")
@config_option
@user_errors
def evaluate(model: str, data: Path, output: Path, config_path: Path) -> None:
    """Score a model on labelled data and write evaluation.json ({"metrics": {...}, "rows": N})."""
    import mlflow

    from . import evaluation, tracking
    from . import train as t
    from .data import load

    config = load_config(config_path)
    frame = load(data, config)
    if model.startswith("models:/"):
        tracking.configure()
    with tempfile.TemporaryDirectory() as tmp:
        fitted = mlflow.sklearn.load_model(_model_path(model, Path(tmp)))
    results = {**evaluation.metrics(fitted, frame[config.features], frame[config.target]),
               **evaluation.latency_ms(fitted, frame[config.features])}
    t.write_json(output / "evaluation.json", {"metrics": results, "rows": len(frame)})
    click.echo(", ".join(f"{k} {v:.4f}" for k, v in results.items()))


@main.command()
@config_option
@user_errors
def promote(config_path: Path) -> None:
    """Make the candidate production if it is better.

    Exit 0 production changed; 1 production stayed (the candidate is not better, or already is
    production), or the registry failed; 2 nothing to promote or a bad configuration.
    """
    from mlflow.exceptions import MlflowException

    from .promote import PromotionError
    from .promote import promote as run

    config = load_config(config_path)
    try:
        decision = run(config)
    except PromotionError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except MlflowException as exc:
        click.echo(f"Error: the model registry failed, production was not changed: {exc}", err=True)
        sys.exit(1)
    click.echo(decision.reason)
    if not decision.promoted:
        sys.exit(1)


@main.command()
@config_option
@user_errors
def production(config_path: Path) -> None:
    """Print which model version is production."""
    from . import tracking

    config = load_config(config_path)
    tracking.configure()
    version = tracking.alias_version(config.platform, tracking.PRODUCTION)
    click.echo(f"production: {config.platform} version {version}" if version else
               f"production: no version of {config.platform} is production yet")


@main.command("ingest")
@click.option("--spec", "spec_path", required=True, help="The group's ingestion spec: a JSON file, a directory "
              "holding one, or s3://bucket/key (the FeatureStore stack's `ingestion_specs` output).")
@click.option("--endpoint-url", default=None, help="Send S3 and Feature Store calls here (the local emulator, "
              "e.g. http://127.0.0.1:4566). Default: AWS.")
@click.option("--region", default=None, help="Default: the environment's (AWS_REGION / AWS_DEFAULT_REGION).")
@click.option("--metrics-namespace", default=None, help="Also send the run's counts to CloudWatch under this "
              "namespace (RecordsWritten, QuarantinedRows, FailedObjects by FeatureGroup).")
def ingest(spec_path: str, endpoint_url: str | None, region: str | None, metrics_namespace: str | None) -> None:
    """Write a group's new raw objects to the Feature Store; quarantine bad rows; mark each object done.

    Exit 0 every new object processed; 1 an object failed (it is retried by the next run); 2 a bad spec.
    """
    from .ingest_job import main as run

    sys.exit(run(spec_path, endpoint_url, region, metrics_namespace))


@main.command("training-set")
@click.option("--labels", required=True, help="The labels: record id, event time and label columns (CSV or "
              "Parquet, a file or a directory, or an s3:// prefix).")
@click.option("--offline-store", required=True, help="The offline store's files: a directory, or the "
              "s3:// URI of the offline zone's feature-store/ prefix.")
@click.option("--group", "groups", multiple=True, required=True,
              help="A feature group as NAME:RECORD_ID:EVENT_TIME (NAME as the store knows it); repeatable.")
@click.option("--label-id", required=True, help="The labels' record id column.")
@click.option("--label-time", required=True, help="The labels' event time column.")
@click.option("--label", "label_column", required=True, help="The labels' label column (0 or 1).")
@click.option("--output", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Writes part-00000.parquet: the training set, the configuration's columns only.")
@click.option("--endpoint-url", default=None, help="For s3:// inputs: send S3 calls here (the local emulator).")
@click.option("--region", default=None, help="For s3:// inputs. Default: the environment's.")
@config_option
@user_errors
def training_set(labels: str, offline_store: str, groups: tuple[str, ...], label_id: str, label_time: str,
                 label_column: str, output: Path, endpoint_url: str | None, region: str | None,
                 config_path: Path) -> None:
    """Join each label with the features as of its event time (point in time), from the offline store."""
    from .s3_files import download_prefix
    from .training_set import GroupRef, LabelColumns, run

    refs = [GroupRef.parse(g) for g in groups]
    config = load_config(config_path)
    with tempfile.TemporaryDirectory() as tmp:
        local = [download_prefix(p, Path(tmp) / name, endpoint_url, region) if p.startswith("s3://") else Path(p)
                 for name, p in (("labels", labels), ("offline", offline_store))]
        if not local[0].exists():
            raise DataError([f"{labels}: no such file or directory"])
        rows, left_out = run(local[0], local[1], refs, LabelColumns(label_id, label_time, label_column), config,
                             output)
    click.echo(f"training set: {rows} rows -> {output / 'part-00000.parquet'}")
    for group, count in left_out.items():
        if count:
            click.echo(f"{group}: {count} labels left out: no features at or before their event time")
