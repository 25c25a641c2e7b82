"""training/config.yaml: load and validate, with errors that name the key and the value.

The same schema arrives as YAML (the example in this directory, `make train`) or as JSON (the
platform's configuration, which the SageMaker pipeline renders from the blueprint and passes as a
channel or a processing input: a directory holding that one file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FAMILIES = ("hist_gradient_boosting", "gradient_boosting", "random_forest", "logistic_regression")
CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
DEFAULT_CONFIG = Path(__file__).resolve().parent / "config.yaml"


class ConfigError(ValueError):
    """A malformed configuration; the message names the file, the key and the value."""


@dataclass(frozen=True)
class Gates:
    min_roc_auc: float | None = None
    min_accuracy: float | None = None
    max_latency_ms: float | None = None


@dataclass(frozen=True)
class Promotion:
    margin: float = 0.0
    bootstrap_samples: int = 1000
    alpha: float = 0.05


@dataclass(frozen=True)
class TrainingConfig:
    platform: str
    target: str
    id_column: str | None
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    family: str
    n_iter: int
    cv_folds: int
    spaces: dict[str, dict[str, Any]]  # every family's space: a `model` hyperparameter switches both
    search_rows: int | None = None  # cross-validate on a sample of at most this many rows; refit on all
    test_size: float = 0.2
    seed: int = 42
    gates: Gates = field(default_factory=Gates)
    promotion: Promotion = field(default_factory=Promotion)

    @property
    def space(self) -> dict[str, Any]:
        """The search space of the chosen family (empty: its defaults, cross-validated once)."""
        return self.spaces.get(self.family, {})

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def columns(self) -> list[str]:
        return [c for c in (self.id_column, *self.features, self.target) if c]


def _get(doc: dict[str, Any], path: str, kind: type | tuple[type, ...], source: str, default: Any = ...) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is not ...:
                return default
            raise ConfigError(f"{source}: {path}: required")
        node = node[part]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(node, int) and not isinstance(node, bool):
        node = float(node)
    if not isinstance(node, kind) or (isinstance(node, bool) and kind in (int, float)):
        names = " or ".join({"NoneType": "null", "float": "a number", "int": "an integer", "str": "a string",
                             "list": "a list", "dict": "a mapping"}.get(k.__name__, k.__name__) for k in kinds)
        raise ConfigError(f"{source}: {path}: expected {names}; got {node!r}")
    return node


def _columns(doc: dict[str, Any], path: str, source: str) -> tuple[str, ...]:
    value = _get(doc, path, list, source)
    if not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{source}: {path}: expected a list of column names; got {value!r}")
    return tuple(value)


def parse(doc: Any, source: str = "training/config.yaml") -> TrainingConfig:
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a mapping; got {doc!r}")
    family = _get(doc, "model.family", str, source)
    if family not in FAMILIES:
        raise ConfigError(f"{source}: model.family: expected one of {', '.join(FAMILIES)}; got {family!r}")
    spaces = _get(doc, "model.search.space", dict, source, default={})
    for name, space in spaces.items():
        if name not in FAMILIES:
            raise ConfigError(f"{source}: model.search.space.{name}: not a model family; expected one of "
                              f"{', '.join(FAMILIES)}")
        if not isinstance(space, dict):
            raise ConfigError(f"{source}: model.search.space.{name}: expected a mapping; got {space!r}")
    numeric, categorical = _columns(doc, "data.numeric", source), _columns(doc, "data.categorical", source)
    target = _get(doc, "data.target", str, source)
    id_column = _get(doc, "data.id_column", (str, type(None)), source, default=None)
    names = [*numeric, *categorical, target, *([id_column] if id_column else [])]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{source}: data: column {dupes[0]!r} is listed more than once")
    config = TrainingConfig(
        platform=_get(doc, "platform", str, source),
        target=target,
        id_column=id_column,
        numeric=numeric,
        categorical=categorical,
        family=family,
        n_iter=_get(doc, "model.search.n_iter", int, source, default=10),
        cv_folds=_get(doc, "model.search.cv_folds", int, source, default=3),
        search_rows=_get(doc, "model.search.max_rows", (int, type(None)), source, default=None),
        spaces=spaces,
        test_size=_get(doc, "split.test_size", float, source, default=0.2),
        seed=_get(doc, "split.seed", int, source, default=42),
        gates=Gates(**{k: _get(doc, f"gates.{k}", (float, type(None)), source, default=None)
                       for k in ("min_roc_auc", "min_accuracy", "max_latency_ms")}),
        promotion=Promotion(
            margin=_get(doc, "promotion.margin", float, source, default=0.0),
            bootstrap_samples=_get(doc, "promotion.bootstrap_samples", int, source, default=1000),
            alpha=_get(doc, "promotion.alpha", float, source, default=0.05),
        ),
    )
    if not 0 < config.test_size < 1:
        raise ConfigError(f"{source}: split.test_size: expected a share between 0 and 1; got {config.test_size}")
    if config.search_rows is not None and config.search_rows < 100:
        raise ConfigError(f"{source}: model.search.max_rows: expected null or at least 100; got {config.search_rows}")
    if config.cv_folds < 2 or config.n_iter < 1:
        raise ConfigError(f"{source}: model.search: cv_folds must be >= 2 and n_iter >= 1; "
                          f"got {config.cv_folds} and {config.n_iter}")
    for family_name, space in spaces.items():
        for name, spec in space.items():
            number = (int, float)
            ok = (isinstance(spec, list) and spec) or (
                isinstance(spec, dict) and {"low", "high"} <= set(spec) and set(spec) <= {"low", "high", "log"}
                and isinstance(spec["low"], number) and isinstance(spec["high"], number)
                and spec["low"] < spec["high"] and (not spec.get("log") or spec["low"] > 0))
            if not ok:
                raise ConfigError(f"{source}: model.search.space.{family_name}.{name}: expected a list of choices "
                                  f"or {{low, high[, log]}} with low < high (and low > 0 with log); got {spec!r}")
    return config


def resolve(path: str | Path) -> Path:
    """The configuration file itself, or the one .json/.yaml/.yml file of a directory (a SageMaker
    channel or processing input holds the file the pipeline rendered, under a name it chose)."""
    path = Path(path)
    if not path.is_dir():
        return path
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in CONFIG_SUFFIXES)
    if len(found) != 1:
        held = ", ".join(p.name for p in found) or "none"
        raise ConfigError(f"{path}: expected exactly one .json, .yaml or .yml configuration file; found {held}")
    return found[0]


def load(path: str | Path = DEFAULT_CONFIG) -> TrainingConfig:
    path = resolve(path)
    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse(doc, str(path))
