"""ModelServing: a real-time endpoint with weighted variants, safe deployments, scaling, alarms
and a scheduled drift job that notifies, and may start a bounded retraining."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import ClassVar

from .base import NAME_PATTERN, NAME_RULE, Spec, Template
from .constraints import Constraint, InstanceOf, Interval, ListOf, NoneOK, Options, Pattern
from .data import LOG_RETENTION_DAYS
from .features import FeatureStore
from .image import Image
from .serving_api import Api, OnlineFeatures, online_feature_problems
from .training import INSTANCE_TYPE, SCHEDULE, TrainingInfrastructure

MAX_ROLLBACK_ALARMS = 10
# CloudWatch: "An alarm's total current evaluation period can be no longer than one day, so this
# number multiplied by Period cannot be more than 86,400 seconds" (PutMetricAlarm, EvaluationPeriods).
MAX_ALARM_EVALUATION_HOURS = 24
S3_PREFIX = Pattern(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?", "an s3:// bucket and prefix")


def schedule_interval_hours(expression: str) -> int | None:
    """The whole number of hours between two runs of an EventBridge Scheduler expression, or None
    when it has no fixed whole-hour interval (an at(), every 90 minutes, weekdays only, ...).

    The drift job reads the capture of exactly that many hours, and the alarms count runs in periods
    of that length, so the schedule must have one: rate(N hours|days), rate(N minutes) with N a
    multiple of 60, or a cron of every day at one minute past every hour, every N hours (N dividing
    24), or once a day.
    """
    rate = re.fullmatch(r"rate\(([1-9][0-9]*) (minute|minutes|hour|hours|day|days)\)", expression)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if unit.startswith("minute"):
            return value // 60 if value % 60 == 0 else None
        return value if unit.startswith("hour") else 24 * value
    cron = re.fullmatch(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)", expression)
    if not cron:
        return None
    minute, hour, day, month, weekday, year = cron.groups()
    every_day = day in ("*", "?") and month == "*" and weekday in ("*", "?") and year in ("*", "?")
    if not (every_day and re.fullmatch(r"[0-5]?[0-9]", minute)):
        return None
    if hour == "*":
        return 1
    step = re.fullmatch(r"(?:\*|0)/([1-9][0-9]?)", hour)
    if step:
        n = int(step.group(1))
        return n if 24 % n == 0 else None
    return 24 if re.fullmatch(r"1?[0-9]|2[0-3]", hour) else None

VARIANT_NAME = Pattern(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,19}", "1 to 20 letters, digits and hyphens")
# ProductionVariantServerlessConfig (botocore's SageMaker model): MemorySizeInMB 1024 to 6144, which the
# Serverless Inference guide allows in 1 GB steps; MaxConcurrency and ProvisionedConcurrency 1 to 200.
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
MAX_SERVERLESS_CONCURRENCY = 200
MAX_MULTI_MODEL_MODELS = 50


@dataclass(frozen=True)
class Serverless(Spec):
    """SageMaker Serverless Inference for a variant: compute sized by memory, billed per request,
    scaled to zero between requests (cold starts) unless provisioned concurrency keeps some warm."""

    memory_size_mb: int = 2048
    """Memory of each concurrent invocation's environment; vCPUs grow with it. Default 2048."""
    max_concurrency: int = 5
    """Invocations served at once; more are throttled (429). Default 5. The account's regional total
    across serverless endpoints is a service quota (1000 by default)."""
    provisioned_concurrency: int | None = None
    """Environments kept warm (no cold start), billed while they exist. Default None: none."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "memory_size_mb": [Options(SERVERLESS_MEMORY_MB)],
        "max_concurrency": [Interval(int, 1, MAX_SERVERLESS_CONCURRENCY)],
        "provisioned_concurrency": [Interval(int, 1, MAX_SERVERLESS_CONCURRENCY), NoneOK()],
    }

    def check_combinations(self) -> list[str]:
        if self.provisioned_concurrency is not None and self.provisioned_concurrency > self.max_concurrency:
            return [f"provisioned_concurrency ({self.provisioned_concurrency}) must not exceed max_concurrency "
                    f"({self.max_concurrency}): SageMaker refuses a configuration that keeps more environments "
                    f"warm than it may run"]
        return []


@dataclass(frozen=True)
class MultiModel(Spec):
    """A SageMaker multi-model endpoint variant: one fleet serves the pinned versions of several
    models, each loaded on its first invocation (`TargetModel`) and evicted when `max_loaded` are
    held. Each name is a pin slot of the platform (a key of models/<namespace>.yaml, promoted with
    `mlops models promote --variant NAME`)."""

    models: tuple[str, ...] | list[str] = ()
    max_loaded: int = 4
    """The bound on models the container holds in memory at once (MLOPS_MULTI_MODEL_MAX_LOADED): a
    load past it is answered 507, and SageMaker unloads an unused model and loads again (README:
    Multi-model serving). Default 4."""
    model_cache: bool = True
    """SageMaker's ModelCacheSetting: keep loaded models between invocations. False (Disabled) for
    many models each invoked rarely, where caching only costs memory. Default True."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "models": [ListOf(VARIANT_NAME, min_len=1, max_len=MAX_MULTI_MODEL_MODELS, unique=True)],
        "max_loaded": [Interval(int, 1, 1000)],
        "model_cache": [Options((True, False))],
    }


@dataclass(frozen=True)
class Variant(Spec):
    """One model behind the endpoint. Traffic share = weight / sum of the weights."""

    name: str
    weight: float = 1.0
    model_data: str | None = None
    """Key of the model archive in the `models` zone. Default: `<variant>/model.tar.gz`."""
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = 1
    online_features: OnlineFeatures | None = None
    """Requests carry the record id; the server reads the named groups' features from the online store
    (README: Online features at inference). Needs ModelServing(features=...). Default None."""
    serverless: Serverless | None = None
    """Serve this variant with Serverless Inference (README: Inference modes). Default None: instances.
    A serverless variant has no instance_type or initial_instance_count: leave both unset."""
    multi_model: MultiModel | None = None
    """Serve several pinned models from this variant's fleet (README: Inference modes). Default None."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "name": [VARIANT_NAME],
        "weight": [Interval(float, 1e-6, None)],
        "model_data": [Pattern(r"[^\s]{1,1000}\.tar\.gz", "an S3 key ending in .tar.gz"), NoneOK()],
        "instance_type": [INSTANCE_TYPE],
        "initial_instance_count": [Interval(int, 1, 100)],
        "online_features": [InstanceOf(OnlineFeatures), NoneOK()],
        "serverless": [InstanceOf(Serverless), NoneOK()],
        "multi_model": [InstanceOf(MultiModel), NoneOK()],
    }

    @property
    def model_key(self) -> str:
        return self.model_data or f"{self.name}/model.tar.gz"

    def check_combinations(self) -> list[str]:
        problems = []
        if self.serverless is not None and self.multi_model is not None:
            problems.append("serverless and multi_model are exclusive: SageMaker Serverless Inference does not "
                            "host multi-model endpoints")
        if self.serverless is not None:
            defaults = {f.name: f.default for f in fields(self)}
            for name in ("instance_type", "initial_instance_count"):
                if getattr(self, name) != defaults[name]:
                    problems.append(f"{name} ({getattr(self, name)!r}) is set on a serverless variant, which has no "
                                    f"instances: SageMaker sizes it by serverless.memory_size_mb and scales it by "
                                    f"serverless.max_concurrency; leave {name} unset")
        return problems


@dataclass(frozen=True)
class BlueGreen(Spec):
    """Blue/green update: a new fleet, traffic shifted ALL_AT_ONCE, as a CANARY, or LINEAR steps,
    rolled back automatically when an alarm fires during the shift or the bake time."""

    traffic: str = "ALL_AT_ONCE"
    """ALL_AT_ONCE works from one instance up; CANARY and LINEAR need two or more per variant."""
    canary_percent: int = 10
    linear_step_percent: int = 20
    wait_seconds: int = 300
    """Wait between traffic steps, watching the alarms. Default 5 minutes."""
    termination_wait_seconds: int = 300
    """Bake time on the new fleet before the old one is removed. Default 5 minutes."""
    max_execution_timeout_seconds: int = 3600

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "traffic": [Options(("ALL_AT_ONCE", "CANARY", "LINEAR"))],
        "canary_percent": [Interval(int, 1, 50)],
        "linear_step_percent": [Interval(int, 10, 50)],
        "wait_seconds": [Interval(int, 0, 3600)],
        "termination_wait_seconds": [Interval(int, 0, 3600)],
        "max_execution_timeout_seconds": [Interval(int, 600, 14400)],
    }

    def total_wait(self) -> int:
        steps = {"ALL_AT_ONCE": 1, "CANARY": 2, "LINEAR": math.ceil(100 / self.linear_step_percent)}[self.traffic]
        return steps * self.wait_seconds + self.termination_wait_seconds

    def check_combinations(self) -> list[str]:
        if self.max_execution_timeout_seconds <= self.total_wait():
            return [f"max_execution_timeout_seconds ({self.max_execution_timeout_seconds}) must exceed the sum of "
                    f"the waits ({self.total_wait()} s for {self.traffic} with wait_seconds={self.wait_seconds} and "
                    f"termination_wait_seconds={self.termination_wait_seconds})"]
        return []


@dataclass(frozen=True)
class Rolling(Spec):
    """Rolling update: instances replaced in batches, rolled back when an alarm fires."""

    batch_percent: int = 25
    wait_seconds: int = 300
    max_execution_timeout_seconds: int = 3600
    rollback_batch_percent: int = 100

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "batch_percent": [Interval(int, 5, 50)],
        "wait_seconds": [Interval(int, 0, 3600)],
        "max_execution_timeout_seconds": [Interval(int, 600, 28800)],
        "rollback_batch_percent": [Interval(int, 5, 100)],
    }

    def total_wait(self) -> int:
        return math.ceil(100 / self.batch_percent) * self.wait_seconds

    def check_combinations(self) -> list[str]:
        if self.max_execution_timeout_seconds <= self.total_wait():
            return [f"max_execution_timeout_seconds ({self.max_execution_timeout_seconds}) must exceed the sum of "
                    f"the waits ({self.total_wait()} s)"]
        return []


@dataclass(frozen=True)
class AutoScaling(Spec):
    min_capacity: int = 1
    max_capacity: int = 4
    target_invocations_per_instance: float = 1000.0
    """Invocations per instance per minute the scaling policy aims for."""
    scale_in_cooldown_seconds: int = 300
    scale_out_cooldown_seconds: int = 60

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "min_capacity": [Interval(int, 1, 100)],
        "max_capacity": [Interval(int, 1, 100)],
        "target_invocations_per_instance": [Interval(float, 1, None)],
        "scale_in_cooldown_seconds": [Interval(int, 0, 3600)],
        "scale_out_cooldown_seconds": [Interval(int, 0, 3600)],
    }

    def check_combinations(self) -> list[str]:
        if self.min_capacity > self.max_capacity:
            return [f"min_capacity ({self.min_capacity}) must not exceed max_capacity ({self.max_capacity})"]
        return []


@dataclass(frozen=True)
class Alarms(Spec):
    p99_latency_ms: float = 500.0
    """p99 model latency that counts as unhealthy. Default 500 ms."""
    error_rate_percent: float = 1.0
    """Share of invocations answered with a 5xx that counts as unhealthy. Default 1%."""
    idle_hours: int = 6
    """Alert when the endpoint gets no invocation for this many hours. Default 6."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "p99_latency_ms": [Interval(float, 1, 600000)],
        "error_rate_percent": [Interval(float, 0.01, 100)],
        "idle_hours": [Interval(int, 1, 24)],
    }


@dataclass(eq=False, repr=False)
class ModelServing(Template):
    training: TrainingInfrastructure
    image: Image = Image("serving")
    variants: tuple[Variant, ...] | list[Variant] = (Variant("champion"),)
    shadow: Variant | None = None
    """A variant that gets a copy of the traffic; its answers are captured, never returned."""
    deployment: BlueGreen | Rolling | None = BlueGreen()
    """None: no guarded update (SageMaker replaces the endpoint's configuration all at once, without
    alarm rollback); only for a serverless variant, which a guarded deployment excludes."""
    autoscaling: AutoScaling | None = AutoScaling()
    """Scale each variant on its invocations per instance. None: a fixed capacity of each variant's
    initial_instance_count (for an environment without Application Auto Scaling, such as the
    local emulator)."""
    alarms: Alarms = Alarms()
    data_capture_percent: int = 100
    """Share of requests captured for the drift job. 0: no capture (required for serverless)."""
    capture_zone: str = "experiments"
    """Data zone that receives captured requests and responses for monitoring."""
    monitoring_schedule: str | None = "cron(0 * ? * * *)"
    """When the drift job (`python -m serving.drift`, a SageMaker Processing job per variant)
    compares the capture of the hours since its last run with the baseline of the package the
    variant serves: an EventBridge Scheduler expression with a fixed whole-hour interval
    (see schedule_interval_hours). Default hourly. None: no drift job (data is still captured)."""
    drift_instance_type: str = "ml.m5.large"
    """Instance of each variant's drift job. Default ml.m5.large (2 vCPUs, 8 GiB: an hour of
    capture of a busy endpoint is decoded in seconds; README: Drift)."""
    model_monitor: bool = False
    """Also run SageMaker Model Monitor's data-quality job on the schedule. Default False: Model
    Monitor is closed to new customers since 2026-07-30; only accounts that already use it may."""
    model_monitor_baseline: str | None = None
    """s3:// prefix holding Model Monitor's statistics.json and constraints.json (from its
    suggest-baseline job). Required with model_monitor: the training pipeline writes the drift job's
    baseline.json, not Model Monitor's files."""
    retrain_on_drift: bool = False
    """Start the training pipeline after retrain_after_drifted_runs drifted runs in a row, at most
    once per retrain_cooldown_hours, never while an execution runs. Default False: drift notifies
    the alarm topic, and a person decides (a retraining costs a tuning run). Only in the namespace
    that owns the registry, the only one with a pipeline."""
    retrain_after_drifted_runs: int = 3
    """Consecutive drifted runs of one variant before retraining starts. Default 3 (three hours
    with the hourly schedule): one odd hour of traffic does not retrain."""
    retrain_cooldown_hours: int = 24
    """After a retraining starts, drift starts no other for this long. Default 24."""
    log_retention_days: int = 365
    features: FeatureStore | None = None
    """The FeatureStore whose groups variants read with online_features (a dependency). Default None."""
    api: Api | None = None
    """An HTTPS API for applications in front of the endpoint (README: An inference API). Default None."""

    name: str = field(default="serving", kw_only=True)

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "training": [InstanceOf(TrainingInfrastructure)],
        "image": [InstanceOf(Image)],
        "variants": [ListOf(InstanceOf(Variant), min_len=1, max_len=10)],
        "shadow": [InstanceOf(Variant), NoneOK()],
        "deployment": [InstanceOf(BlueGreen), InstanceOf(Rolling), NoneOK()],
        "autoscaling": [InstanceOf(AutoScaling), NoneOK()],
        "alarms": [InstanceOf(Alarms)],
        "data_capture_percent": [Interval(int, 0, 100)],
        "capture_zone": [Pattern(r"[a-z][a-z0-9-]{0,15}", "a zone name")],
        "monitoring_schedule": [SCHEDULE, NoneOK()],
        "drift_instance_type": [INSTANCE_TYPE],
        "model_monitor": [Options((True, False))],
        "model_monitor_baseline": [S3_PREFIX, NoneOK()],
        "retrain_on_drift": [Options((True, False))],
        "retrain_after_drifted_runs": [Interval(int, 1, MAX_ALARM_EVALUATION_HOURS)],
        "retrain_cooldown_hours": [Interval(int, 1, 24 * 365)],
        "log_retention_days": [Options(LOG_RETENTION_DAYS)],
        "features": [InstanceOf(FeatureStore), NoneOK()],
        "api": [InstanceOf(Api), NoneOK()],
        "name": [Pattern(NAME_PATTERN, NAME_RULE)],
    }

    def _check_combinations(self) -> list[str]:
        where = f"ModelServing '{self.name}'"
        problems = []
        names = [v.name for v in self.variants] + ([self.shadow.name] if self.shadow else [])
        for dupe in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"{where}: variant name {dupe!r} is used more than once")
        if self.shadow is not None and len(self.variants) != 1:
            problems.append(f"{where}: shadow testing needs exactly one production variant; got {len(self.variants)}")
        if isinstance(self.deployment, BlueGreen) and self.deployment.traffic in ("CANARY", "LINEAR"):
            for i, v in enumerate(self.variants):
                if v.initial_instance_count < 2:
                    problems.append(f"{where}: variants[{i}].initial_instance_count must be at least 2 for "
                                    f"{self.deployment.traffic} traffic shifting, which moves part of the "
                                    f"capacity first. Got {v.initial_instance_count} instead.")
        # Each variant has two rollback alarms (p99 latency, 5xx rate); AutoRollbackConfiguration takes
        # at most 10 (botocore's AlarmList: 1 to 10 items).
        if 2 * len(self.variants) > MAX_ROLLBACK_ALARMS:
            problems.append(f"{where}: {len(self.variants)} variants need {2 * len(self.variants)} rollback alarms; "
                            f"an endpoint's deployment takes at most {MAX_ROLLBACK_ALARMS}, so at most "
                            f"{MAX_ROLLBACK_ALARMS // 2} variants")
        if isinstance(self.deployment, Rolling) and len(self.variants) > 1:
            problems.append(f"{where}: a Rolling deployment cannot update an endpoint with several variants "
                            f"(SageMaker's deployment guardrails exclude multi-variant endpoints from rolling "
                            f"updates); use BlueGreen or one variant")
        problems += self._check_monitoring(where)
        problems += online_feature_problems(self)
        problems += self._check_modes(where)
        for i, v in enumerate(self.variants if self.autoscaling is not None else ()):
            assert self.autoscaling is not None
            if v.initial_instance_count < self.autoscaling.min_capacity:
                problems.append(f"{where}: variants[{i}].initial_instance_count ({v.initial_instance_count}) must be "
                                f"at least autoscaling.min_capacity ({self.autoscaling.min_capacity}): an update "
                                f"resets the variant to its initial count")
            if v.initial_instance_count > self.autoscaling.max_capacity:
                problems.append(f"{where}: variants[{i}].initial_instance_count ({v.initial_instance_count}) must not "
                                f"exceed autoscaling.max_capacity ({self.autoscaling.max_capacity})")
        if self.image != self.training.serving_image:
            problems.append(f"{where}: image {self.image.context!r} must be the serving_image of "
                            f"TrainingInfrastructure '{self.training.name}' ({self.training.serving_image.context!r}), "
                            f"which registered models are built for")
        if self.capture_zone not in self.training.data.zones:
            problems.append(f"{where}: capture_zone {self.capture_zone!r} is not one of the data zones "
                            f"({', '.join(self.training.data.zones)})")
        if "models" not in self.training.data.zones:
            problems.append(f"{where}: serving reads model archives from the 'models' data zone, which "
                            f"DataInfrastructure '{self.training.data.name}' does not declare")
        return problems

    def _check_monitoring(self, where: str) -> list[str]:
        """The schedule, the drift job's retraining and the Model Monitor opt-in, together."""
        problems = []
        schedule = self.monitoring_schedule
        hours = None if schedule is None else schedule_interval_hours(schedule)
        if schedule is not None and hours is None:
            problems.append(f"{where}: monitoring_schedule {schedule!r} has no fixed whole-hour interval, which the "
                            f"drift job's window and alarms count in; use rate(N hours), rate(N days) or a daily "
                            f"cron such as cron(0 * ? * * *) (hourly), cron(0 */6 ? * * *) or cron(30 2 ? * * *)")
        if self.retrain_on_drift and schedule is None:
            problems.append(f"{where}: retrain_on_drift needs a monitoring_schedule, whose drift runs trigger it; "
                            f"set retrain_on_drift=False or give a schedule")
        if self.retrain_on_drift and hours is not None and \
                hours * self.retrain_after_drifted_runs > MAX_ALARM_EVALUATION_HOURS:
            problems.append(f"{where}: retrain_after_drifted_runs ({self.retrain_after_drifted_runs}) runs of "
                            f"{hours} hour(s) ({schedule}) span {hours * self.retrain_after_drifted_runs} hours; a "
                            f"CloudWatch alarm evaluates at most {MAX_ALARM_EVALUATION_HOURS}, so at most "
                            f"{MAX_ALARM_EVALUATION_HOURS // hours} runs with this schedule")
        if self.model_monitor and schedule is None:
            problems.append(f"{where}: model_monitor runs on the monitoring_schedule; give one")
        if self.model_monitor and schedule is not None and not schedule.startswith("cron("):
            problems.append(f"{where}: model_monitor: Model Monitor accepts only cron schedules (hourly, every N "
                            f"hours, daily); got {schedule!r}")
        if self.model_monitor and self.model_monitor_baseline is None:
            problems.append(f"{where}: model_monitor needs model_monitor_baseline, an s3:// prefix with Model "
                            f"Monitor's statistics.json and constraints.json: the training pipeline writes the drift "
                            f"job's baseline.json into each model package, not Model Monitor's files")
        if self.model_monitor_baseline is not None and not self.model_monitor:
            problems.append(f"{where}: model_monitor_baseline is set but model_monitor is False; set both or neither")
        return problems

    @property
    def serverless(self) -> bool:
        """Whether the endpoint is served by Serverless Inference (its one variant is serverless)."""
        return any(v.serverless is not None for v in self.variants)

    @property
    def multi_model(self) -> bool:
        return any(v.multi_model is not None for v in self.variants)

    def _check_modes(self, where: str) -> list[str]:
        """Serverless and multi-model variants and what they exclude, each error naming the field and
        why. Serverless exclusions: the Serverless Inference guide's feature exclusions (VPC
        configuration, network isolation, data capture, Model Monitor, multiple production variants,
        multi-model endpoints) and deployment guardrails' (rolling updates); the rest follow from them."""
        problems = []
        if self.shadow is not None and (self.shadow.serverless or self.shadow.multi_model):
            problems.append(f"{where}: shadow: a shadow variant runs on instances beside the production one; "
                            f"serverless and multi_model are for production variants")
        if self.serverless:
            why = "a serverless endpoint"
            if len(self.variants) > 1:
                problems.append(f"{where}: variants: {why} has exactly one production variant (Serverless "
                                f"Inference excludes several); got {len(self.variants)}")
            if self.shadow is not None:
                problems.append(f"{where}: shadow: {why} has no shadow variant (it is a second variant)")
            if self.deployment is not None:
                problems.append(f"{where}: deployment: {why} takes no guarded deployment: rolling updates exclude "
                                f"serverless endpoints, and canary or linear shifts move instances it does not "
                                f"have; set deployment=None (SageMaker replaces it all at once)")
            if self.autoscaling is not None:
                problems.append(f"{where}: autoscaling: {why} scales itself up to serverless.max_concurrency; "
                                f"instance autoscaling does not apply; set autoscaling=None")
            if self.data_capture_percent:
                problems.append(f"{where}: data_capture_percent ({self.data_capture_percent}): Serverless "
                                f"Inference does not capture data; set data_capture_percent=0")
            if self.monitoring_schedule is not None:
                problems.append(f"{where}: monitoring_schedule: the drift job reads captured data, which a "
                                f"serverless endpoint does not write; set monitoring_schedule=None")
            if self.retrain_on_drift or self.model_monitor:
                field_name = "retrain_on_drift" if self.retrain_on_drift else "model_monitor"
                problems.append(f"{where}: {field_name}: needs drift monitoring of captured data, which a "
                                f"serverless endpoint does not write")
        elif self.data_capture_percent == 0 and self.monitoring_schedule is not None:
            problems.append(f"{where}: data_capture_percent is 0 but the drift job (monitoring_schedule "
                            f"{self.monitoring_schedule!r}) reads captured data; capture some or set "
                            f"monitoring_schedule=None")
        if not self.serverless and self.deployment is None:
            problems.append(f"{where}: deployment: None is only for a serverless variant; an endpoint on "
                            f"instances rolls out under BlueGreen or Rolling")
        if self.multi_model:
            if len(self.variants) > 1 or self.shadow is not None:
                problems.append(f"{where}: variants: a multi-model variant is the endpoint's only variant here "
                                f"(its models are chosen per request by TargetModel, not by weight); got "
                                f"{len(self.variants)} variant(s){' and a shadow' if self.shadow else ''}")
            if self.monitoring_schedule is not None:
                problems.append(f"{where}: monitoring_schedule: the drift job compares a variant with the "
                                f"baseline of the one package it serves; a multi-model variant serves several "
                                f"(Model Monitor excludes multi-model endpoints too); set monitoring_schedule=None")
            if self.retrain_on_drift or self.model_monitor:
                field_name = "retrain_on_drift" if self.retrain_on_drift else "model_monitor"
                problems.append(f"{where}: {field_name}: needs drift monitoring, which a multi-model variant "
                                f"does not have")
            slots = {m for v in self.variants if v.multi_model for m in v.multi_model.models}
            for v in self.variants:
                if v.name in slots:
                    problems.append(f"{where}: variants: {v.name!r} is both the multi-model variant and one of "
                                    f"its models; give the variant another name")
        return problems
