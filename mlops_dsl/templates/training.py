"""TrainingInfrastructure: registries, an execution role, and the scheduled, gated training workflow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .base import NAME_PATTERN, NAME_RULE, Spec, Template
from .constraints import Constraint, InstanceOf, Interval, ListOf, NoneOK, Options, Pattern
from .data import DataInfrastructure
from .features import FeatureStore
from .image import Image

INSTANCE_TYPE = Pattern(r"ml\.[a-z0-9]+\.[a-z0-9]+", "a SageMaker instance type of the ml. family, e.g. ml.m5.xlarge")
# EventBridge schedule expressions: cron with six fields, rate(N unit), or at(yyyy-mm-ddThh:mm:ss).
SCHEDULE = Pattern(
    r"cron\(\S+( \S+){5}\)|rate\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\)"
    r"|at\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\)",
    "a schedule expression: cron(min hour day month weekday year), rate(N unit) or at(...)",
)
PARAM_NAME = Pattern(r"[A-Za-z_][A-Za-z0-9_.-]{0,255}", "a hyperparameter name")
SCALINGS = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
COLUMN = Pattern(r"[A-Za-z_][A-Za-z0-9_]{0,127}", "a column name (letters, digits, underscores)")
# The metrics `python -m training evaluate` writes to evaluation.json, where higher is better: the
# quality gate reads one of them.
GATE_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1")
# The training image reports its cross-validated score under this name: the only honest tuning
# objective, because `validation:<metric>` is the held-out score the gate and promotion read.
CV_OBJECTIVE = "validation:cv_roc_auc"
# The model families of the training image (training/config.py FAMILIES; a test keeps them equal).
FAMILIES = ("hist_gradient_boosting", "gradient_boosting", "random_forest", "logistic_regression")


@dataclass(frozen=True)
class IntegerRange(Spec):
    name: str
    low: int
    high: int
    scaling: str = "Auto"

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "name": [PARAM_NAME], "low": [Interval(int, None, None)], "high": [Interval(int, None, None)],
        "scaling": [Options(SCALINGS)],
    }

    def check_combinations(self) -> list[str]:
        return [] if self.low < self.high else [f"low ({self.low}) must be below high ({self.high})"]


@dataclass(frozen=True)
class ContinuousRange(Spec):
    name: str
    low: float
    high: float
    scaling: str = "Auto"

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "name": [PARAM_NAME], "low": [Interval(float, None, None)], "high": [Interval(float, None, None)],
        "scaling": [Options(SCALINGS)],
    }

    def check_combinations(self) -> list[str]:
        problems = [] if self.low < self.high else [f"low ({self.low}) must be below high ({self.high})"]
        if self.scaling == "Logarithmic" and self.low <= 0:
            problems.append(f"Logarithmic scaling needs low > 0, got {self.low}")
        return problems


@dataclass(frozen=True)
class CategoricalRange(Spec):
    name: str
    values: tuple[str, ...] | list[str]

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "name": [PARAM_NAME],
        "values": [ListOf(Pattern(r".{1,256}", "1 to 256 characters"), min_len=1, max_len=30, unique=True)],
    }


@dataclass(frozen=True)
class Tuning(Spec):
    """A hyperparameter search run instead of a single training job."""

    objective_metric: str
    ranges: tuple[IntegerRange | ContinuousRange | CategoricalRange, ...] | list
    max_jobs: int = 20
    """Training jobs in the whole search. Default 20: enough for Bayesian search on a few ranges."""
    max_parallel_jobs: int = 2
    """Jobs at once. Default 2: Bayesian search learns from finished jobs, so less is smarter."""
    strategy: str = "Bayesian"

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "objective_metric": [Pattern(r"[A-Za-z0-9_:./-]{1,255}", "a metric name")],
        "ranges": [ListOf(InstanceOf(Spec), min_len=1, max_len=30)],
        "max_jobs": [Interval(int, 1, 500)],
        "max_parallel_jobs": [Interval(int, 1, 100)],
        "strategy": [Options(("Bayesian", "Random", "Hyperband", "Grid"))],
    }

    def check_combinations(self) -> list[str]:
        problems = []
        if self.max_parallel_jobs > self.max_jobs:
            problems.append(f"max_parallel_jobs ({self.max_parallel_jobs}) must not exceed max_jobs ({self.max_jobs})")
        names = [r.name for r in self.ranges]
        for dupe in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"ranges: {dupe!r} is given more than once")
        return problems


@dataclass(frozen=True)
class Search(Spec):
    """A random search the training job runs itself, when no SageMaker tuning job does.

    Each finished candidate is checkpointed, so with spot training an interrupted job resumes
    where it stopped instead of starting over.
    """

    ranges: tuple[IntegerRange | ContinuousRange | CategoricalRange, ...] | list
    iterations: int = 10
    """Candidates drawn from the ranges. Default 10."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "ranges": [ListOf(InstanceOf(Spec), min_len=1, max_len=30)],
        "iterations": [Interval(int, 1, 500)],
    }

    def check_combinations(self) -> list[str]:
        names = [r.name for r in self.ranges]
        return [f"ranges: {dupe!r} is given more than once" for dupe in sorted({n for n in names
                                                                               if names.count(n) > 1})]


@dataclass(frozen=True)
class Dataset(Spec):
    """What the model learns from: the columns of the training data and how it is held out.

    Rendered into the training configuration every job of the pipeline reads, so the job trains
    on this platform's features, never on the example configuration inside the image.
    """

    target: str
    """The binary (0/1) label column."""
    id_column: str
    """One id per entity: the held-out split hashes it, so every row of an entity lands on one side."""
    numeric: tuple[str, ...] | list[str] = ()
    categorical: tuple[str, ...] | list[str] = ()
    test_size: float = 0.2
    """Share of entities held out for evaluation, the quality gate and promotion. Default 0.2."""
    cv_folds: int = 5
    """Folds of the cross-validation that scores each candidate. Default 5."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "target": [COLUMN],
        "id_column": [COLUMN],
        "numeric": [ListOf(COLUMN, max_len=1000, unique=True)],
        "categorical": [ListOf(COLUMN, max_len=1000, unique=True)],
        "test_size": [Interval(float, 0.05, 0.5)],
        "cv_folds": [Interval(int, 2, 20)],
    }

    def check_combinations(self) -> list[str]:
        problems = []
        if not self.numeric and not self.categorical:
            problems.append("numeric and categorical: at least one feature column is needed")
        names = [self.target, self.id_column, *self.numeric, *self.categorical]
        for dupe in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"column {dupe!r} appears in more than one of target, id_column, numeric and categorical")
        return problems

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


@dataclass(frozen=True)
class Labels(Spec):
    """The labels as their own data set: one row per (record id, event time, label), CSV or Parquet
    under `prefix` of `zone`. The pipeline's first step joins each label with the feature groups'
    values as of its event time (point in time, from the offline store) into the training set."""

    prefix: str
    """Key prefix of the label files in the zone, ending with '/': e.g. "labels/churn/"."""
    record_id: str
    """The labels' column holding the feature groups' record id."""
    event_time: str
    """The labels' column holding when the label was true (seconds since the epoch or ISO-8601)."""
    label: str
    """The labels' column holding the 0/1 label; it becomes the dataset's target."""
    zone: str = "raw"
    """The data zone the labels arrive in. Default 'raw': labels are raw data like any other."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "prefix": [Pattern(r"[A-Za-z0-9][A-Za-z0-9_.=-]*(/[A-Za-z0-9][A-Za-z0-9_.=-]*)*/",
                           "an S3 key prefix ending with '/' (letters, digits, '_', '.', '=', '-')")],
        "record_id": [COLUMN],
        "event_time": [COLUMN],
        "label": [COLUMN],
        "zone": [Pattern(r"[a-z][a-z0-9-]{0,15}", "a zone name")],
    }

    def check_combinations(self) -> list[str]:
        names = [self.record_id, self.event_time, self.label]
        return [f"record_id, event_time and label must be three columns; {dupe!r} is more than one of them"
                for dupe in sorted({n for n in names if names.count(n) > 1})]


@dataclass(frozen=True)
class QualityGate(Spec):
    """The metric a trained model must reach before it is registered."""

    metric: str = "roc_auc"
    threshold: float = 0.75

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "metric": [Options(GATE_METRICS)],
        "threshold": [Interval(float, None, None)],
    }


@dataclass(eq=False, repr=False)
class TrainingInfrastructure(Template):
    data: DataInfrastructure
    features: FeatureStore | None = None

    image: Image = Image("training")
    """The training image; its tag is the content hash of the build context."""
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_size_gb: int = 30
    max_runtime_seconds: int = 86400
    """Longest a training job may run. Default one day."""
    spot: bool = False
    """Managed spot training with checkpoints: cheaper, may be interrupted. Default False."""
    max_wait_seconds: int | None = None
    """With spot: how long to wait for capacity plus run. Default: twice max_runtime_seconds."""
    dataset: Dataset | None = None
    """The training data's columns. Required on AWS, where the pipeline renders the job's configuration."""
    hyperparameters: dict[str, str | int | float | bool] = field(default_factory=dict)
    """Static hyperparameters of every job (`model` picks the family), JSON-encoded as SageMaker's SDK does."""
    tuning: Tuning | None = None
    """A SageMaker tuning job over the ranges. Its objective must be the cross-validated metric."""
    search: Search | None = None
    """Without tuning: a random search inside the one training job (checkpointed under spot)."""
    gate: QualityGate = QualityGate()
    evaluation_instance_type: str = "ml.m5.large"
    schedule: str | None = "cron(0 3 ? * MON *)"
    """When the pipeline runs on its own. Default: Mondays 03:00 UTC. None: only on demand or drift."""
    keep_images: int = 30
    """Images kept per repository; older ones expire. Default 30."""
    serving_image: Image = Image("serving")
    """The image registered model packages run on; ModelServing deploys the same one."""
    labels: Labels | None = None
    """Train on labels joined with the feature store (point in time) instead of a prepared data set
    under `training/`. Needs `features`; every dataset feature must be a feature of one of its groups."""

    name: str = field(default="training", kw_only=True)

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "data": [InstanceOf(DataInfrastructure)],
        "features": [InstanceOf(FeatureStore), NoneOK()],
        "image": [InstanceOf(Image)],
        "instance_type": [INSTANCE_TYPE],
        "instance_count": [Interval(int, 1, 100)],
        "volume_size_gb": [Interval(int, 1, 16384)],
        "max_runtime_seconds": [Interval(int, 60, 28 * 86400)],
        "spot": [Options((True, False))],
        "max_wait_seconds": [Interval(int, 60, 28 * 86400), NoneOK()],
        "hyperparameters": [InstanceOf(dict)],
        "dataset": [InstanceOf(Dataset), NoneOK()],
        "tuning": [InstanceOf(Tuning), NoneOK()],
        "search": [InstanceOf(Search), NoneOK()],
        "gate": [InstanceOf(QualityGate)],
        "evaluation_instance_type": [INSTANCE_TYPE],
        "schedule": [SCHEDULE, NoneOK()],
        "keep_images": [Interval(int, 1, 1000)],
        "serving_image": [InstanceOf(Image)],
        "labels": [InstanceOf(Labels), NoneOK()],
        "name": [Pattern(NAME_PATTERN, NAME_RULE)],
    }

    def _check_combinations(self) -> list[str]:
        problems = []
        where = f"TrainingInfrastructure '{self.name}'"
        if self.max_wait_seconds is not None and not self.spot:
            problems.append(f"{where}: max_wait_seconds applies to spot training only; set spot=True or remove it")
        if self.spot and self.max_wait_seconds is not None and self.max_wait_seconds < self.max_runtime_seconds:
            problems.append(f"{where}: max_wait_seconds ({self.max_wait_seconds}) must be at least "
                            f"max_runtime_seconds ({self.max_runtime_seconds})")
        if self.image.repository == self.serving_image.repository:
            problems.append(f"{where}: image and serving_image must be different images; both are "
                            f"{self.image.context!r}")
        if self.features is not None and self.features.data is not self.data:
            problems.append(f"{where}: features reads DataInfrastructure '{self.features.data.name}', but training "
                            f"reads '{self.data.name}'; both must use the same one")
        for key, value in self.hyperparameters.items():
            if not isinstance(key, str) or not isinstance(value, (str, int, float, bool)):
                problems.append(f"{where}: hyperparameters[{key!r}] must be a str, int, float or bool keyed by a "
                                f"string. Got {value!r} instead.")
            elif key.startswith(("_", "sagemaker_")):
                problems.append(f"{where}: hyperparameters[{key!r}]: names starting with '_' or 'sagemaker_' are "
                                f"SageMaker's own, and the training image ignores them")
        family = self.hyperparameters.get("model")
        if family is not None and family not in FAMILIES:
            problems.append(f"{where}: hyperparameters['model'] must be one of {', '.join(FAMILIES)}. "
                            f"Got {family!r} instead.")
        if self.instance_count > 1:
            problems.append(f"{where}: instance_count is {self.instance_count}, but the training code is not "
                            f"distributed: every instance would train the same model and write the same files "
                            f"into one artifact. Use one larger instance (instance_type) instead")
        if self.tuning is not None and self.tuning.objective_metric != CV_OBJECTIVE:
            held_out = self.tuning.objective_metric == f"validation:{self.gate.metric}"
            why = (" is the held-out score the quality gate and promotion read; selecting on it overfits the held-out "
                   "split" if held_out else " is not a metric the training image reports for every candidate")
            problems.append(f"{where}: tuning.objective_metric {self.tuning.objective_metric!r}{why}. "
                            f"Tune on the cross-validated {CV_OBJECTIVE!r}")
        if self.tuning is not None and self.search is not None:
            problems.append(f"{where}: tuning and search are alternatives: a tuning job runs one candidate per "
                            f"training job, a search runs them all in one job. Set one of them")
        if self.tuning is not None:
            fixed = sorted(set(self.hyperparameters) & {r.name for r in self.tuning.ranges})
            if fixed:
                problems.append(f"{where}: {fixed[0]!r} is both a static hyperparameter and a tuning range")
        problems += self._label_problems(where)
        return problems

    def _label_problems(self, where: str) -> list[str]:
        """Labels need the feature store, a dataset whose features its groups hold, and a zone that exists."""
        if self.labels is None:
            return []
        if self.features is None:
            return [f"{where}: labels are joined with the feature store's groups; set features=FeatureStore(...)"]
        problems = []
        if self.labels.zone not in self.data.zones:
            problems.append(f"{where}: labels.zone {self.labels.zone!r} is not one of the zones of "
                            f"DataInfrastructure '{self.data.name}' ({', '.join(self.data.zones)})")
        if self.dataset is not None:
            held = {f.name for g in self.features.groups for f in g.features}
            missing = [c for c in self.dataset.features if c not in held]
            if missing:
                problems.append(f"{where}: dataset features {', '.join(map(repr, missing))} are in none of the "
                                f"feature groups of FeatureStore '{self.features.name}'; the training set takes "
                                f"every feature from the store")
        return problems

    @property
    def images(self) -> dict[str, Image]:
        """The images whose repositories this template creates, by role."""
        return {"training": self.image, "serving": self.serving_image}

    @property
    def effective_max_wait(self) -> int:
        return self.max_wait_seconds or 2 * self.max_runtime_seconds
