"""What a smoke test sends and what it accepts: the pinned package's input example, and the checks
an answer of this platform's server (serving/formats.py answer) must pass.

The example is the one MLflow saved with the model (`input_example.json`, named by the MLmodel file's
`saved_input_example_info`), so the request is exactly what the model was trained to take, with no
data in the stack. The package is the pinned model.tar.gz, whose digest must be the pin's `sha256`:
a smoke test of a different artifact would prove nothing about the pinned one. The model's classes
come from loading it with the serving code (serving/model.py), the way the endpoint loads it.

Everything here is plain: no AWS call. The commands (cli_smoke.py) fetch the package and invoke the
endpoints; `check_answer` says what is wrong with an answer, or None.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from .errors import OperationError

EXAMPLE_FILE = "input_example.json"
PROBABILITY_TOLERANCE = 1e-6


class SmokeFailed(OperationError):
    """An endpoint or its package is not as a healthy model is (exit 1)."""


@dataclass(frozen=True)
class Example:
    """The request body (`{"dataframe_split": <input_example.json>}`), its row count, and the model's
    classes (None when the model has no `classes_`: only the shape is then checked)."""

    body: bytes
    rows: int
    classes: tuple[Any, ...] | None


def unpack(stream: IO[bytes], directory: Path, expected_sha256: str | None, source: str) -> None:
    """Stream a model.tar.gz into `directory`, checking its digest against the pin's on the way."""
    digest = hashlib.sha256()

    class _Digesting:
        def read(self, size: int = -1) -> bytes:
            chunk = stream.read(size)
            digest.update(chunk)
            return chunk

    try:
        with tarfile.open(fileobj=_Digesting(), mode="r|gz") as archive:  # type: ignore[call-overload]
            archive.extractall(directory, filter="data")
        while _Digesting().read(1 << 20):  # the rest of the gzip stream, for the digest
            pass
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SmokeFailed(f"{source}: not a readable model.tar.gz ({exc})") from None
    if expected_sha256 and digest.hexdigest() != expected_sha256:
        raise SmokeFailed(f"{source}: its sha256 is {digest.hexdigest()}, not the pinned {expected_sha256} "
                          "(the object changed after it was pinned)")


def example(directory: Path, source: str) -> Example:
    """The input example of the MLflow model in `directory` and the model's classes."""
    try:
        meta = yaml.safe_load((directory / "MLmodel").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SmokeFailed(f"{source}: no readable MLmodel file at the archive's root ({exc})") from None
    name = (meta.get("saved_input_example_info") or {}).get("artifact_path", EXAMPLE_FILE)
    try:
        document = json.loads((directory / name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SmokeFailed(f"{source}: no input example ({name}: {exc}); log the model with input_example=... "
                          "(training/train.py does)") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list) or not data:
        raise SmokeFailed(f"{source}: {name} is not a pandas split example with rows (columns/data)")
    return Example(json.dumps({"dataframe_split": document}).encode(), len(data), _classes(directory, source))


def _serving_model() -> Any:
    """serving/model.py of this checkout (beside mlops_dsl/, or in the working directory): `serving` is
    not an installed package, the image copies it."""
    try:
        from serving import model
    except ImportError:
        for root in (Path(__file__).resolve().parents[1], Path.cwd()):
            if (root / "serving" / "model.py").is_file():
                sys.path.insert(0, str(root))
                break
        try:
            from serving import model
        except ImportError as exc:
            raise OperationError(f"the smoke test loads the pinned model with the serving code ({exc}): run "
                                 "it from the repository's checkout, with the ml extra (pip install -e "
                                 "'.[aws,ml]')") from None
    return model


def _classes(directory: Path, source: str) -> tuple[Any, ...] | None:
    serving_model = _serving_model()
    try:
        loaded = serving_model.load(str(directory))
    except Exception as exc:  # an unloadable package fails its smoke test, whatever the reason
        raise SmokeFailed(f"{source}: the model does not load ({type(exc).__name__}: {exc})") from None
    classes = getattr(loaded.model, "classes_", None)
    return tuple(c.item() if hasattr(c, "item") else c for c in classes) if classes is not None else None


def check_answer(body: bytes, rows: int, classes: Sequence[Any] | None) -> str | None:
    """What is wrong with a JSON answer to `rows` rows: one prediction per row, each among the model's
    classes, and per row one probability per class summing to 1. None when it is right."""
    try:
        answer = json.loads(body)
    except ValueError:
        return f"the answer is not JSON: {body[:200]!r}"
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list):
        return f"expected a JSON object with a `predictions` list, got {body[:200]!r}"
    if len(predictions) != rows:
        return f"{len(predictions)} predictions for {rows} rows of the input example"
    if classes is not None:
        unknown = [p for p in predictions if p not in classes]
        if unknown:
            return f"prediction {unknown[0]!r} is not one of the model's classes {list(classes)}"
    probabilities = answer.get("probabilities")
    if probabilities is None:
        return None
    return _probability_problem(probabilities, rows, classes)


def _probability_problem(probabilities: Any, rows: int, classes: Sequence[Any] | None) -> str | None:
    if not isinstance(probabilities, list) or len(probabilities) != rows:
        return f"expected {rows} rows of probabilities, got {str(probabilities)[:200]}"
    for i, row in enumerate(probabilities):
        if not isinstance(row, list) or not all(isinstance(p, (int, float)) for p in row):
            return f"probabilities of row {i} are not a list of numbers: {str(row)[:200]}"
        if classes is not None and len(row) != len(classes):
            return f"row {i} has {len(row)} probabilities for {len(classes)} classes"
        if any(not 0.0 <= p <= 1.0 for p in row) or not math.isclose(sum(row), 1.0, abs_tol=PROBABILITY_TOLERANCE):
            return f"probabilities of row {i} are not a distribution (sum {sum(row):.6f}): {row}"
    return None


def describe(results: Iterable[tuple[str, str | None]]) -> list[str]:
    """One line per target: `ok` or what was wrong."""
    return [f"{target}: {'ok' if problem is None else 'FAILED: ' + problem}" for target, problem in results]


__all__ = ["EXAMPLE_FILE", "Example", "SmokeFailed", "check_answer", "describe", "example", "unpack"]
