"""Monthly cost estimates of rendered stacks, as plain data.

Why from rendered resources: the estimate must match what Terraform applies, overrides and all,
so it reads the resources a stack declares (or a saved plan's before and after values), never the
blueprint. Every resource is reduced to `{"type", "name", "values"}` with plain JSON values, so the
same estimator prices a freshly rendered Stack and the two sides of `terraform show -json`.

What is priced is listed in `estimate()`; everything else is named as not estimated. Prices come
from a `PriceBook` (mlops_dsl/cost_prices.py); a price the book lacks is a line in `missing`, never
a guess and never a crash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from .terraform import Block, Call, Expr, Interp, Stack

HOURS_PER_MONTH = 730.0  # the usual planning month (AWS and Azure price calculators use 730)
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
WEEKS_PER_MONTH = DAYS_PER_MONTH / 7
# Stated assumptions, printed with every estimate.
LOG_GB_PER_ENDPOINT = 5.0  # CloudWatch Logs ingestion per SageMaker endpoint per month (AWS)
LOG_GB_PER_WORKSPACE = 5.0  # Log Analytics ingestion per workspace per month (Azure)

ASSUMPTIONS = [
    f"a month is {HOURS_PER_MONTH:g} hours; on-demand list prices in USD, no savings plans, reservations, "
    "free tier or taxes",
    "endpoints: every variant runs all month at its capacity range (autoscaling min..max, else its "
    "initial instance count); an endpoint configuration without an endpoint costs nothing",
    "scheduled jobs: runs per month from the schedule expression x each job's maximum runtime x instance "
    "count (a tuning step: its maximum number of training jobs, each up to the maximum runtime; "
    "parallelism changes the wall-clock time, not the instance-hours); the minimum assumes jobs that end "
    "at once, so a job's range is 0..its bound",
    f"logs: {LOG_GB_PER_ENDPOINT:g} GB/month of CloudWatch Logs ingestion per SageMaker endpoint and "
    f"{LOG_GB_PER_WORKSPACE:g} GB/month of Log Analytics ingestion per workspace (measure and adjust)",
    "interface VPC endpoints: billed per endpoint per availability zone (subnet) per hour; data processed "
    "per GB is not estimated",
    "KMS: the monthly fee per customer managed key; requests and rotated backing keys are not estimated",
    "NAT gateways: none are rendered (aws/network.py reaches AWS services through VPC endpoints)",
    "not estimated: S3 and Blob storage, request and data-transfer charges, ECR/ACR storage, SNS/SQS/"
    "Step Functions/EventBridge requests, CloudWatch alarms, metrics and dashboards, Feature Store requests, Key Vault "
    "operations and HSM keys, storage volumes of instances",
]


ASSUMED_ZONES = 2  # the fewest zones a platform can have (DataInfrastructure.availability_zones)


class PriceBook(Protocol):
    """Where prices come from: `price(cloud, service, key, region)` -> a row, or None if unknown."""

    def price(self, cloud: str, service: str, key: str, region: str) -> PriceRow | None: ...

    def hint(self, cloud: str) -> str: ...


@dataclass(frozen=True)
class PriceRow:
    usd: float | None  # None: the source was read and the price could not be found there
    unit: str  # "hour", "month", "GB"
    source: str
    date: str


@dataclass
class Line:
    """One priced item: `quantity` units per month at `unit_usd`, between the min and max quantity."""

    item: str
    resource: str
    service: str
    key: str
    quantity_min: float
    quantity_max: float
    unit: str
    unit_usd: float | None = None
    source: str = ""

    @property
    def monthly_min(self) -> float:
        return (self.unit_usd or 0.0) * self.quantity_min

    @property
    def monthly_max(self) -> float:
        return (self.unit_usd or 0.0) * self.quantity_max


@dataclass
class StackCost:
    stack: str
    cloud: str
    region: str
    lines: list[Line] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def monthly_min(self) -> float:
        return sum(line.monthly_min for line in self.lines)

    @property
    def monthly_max(self) -> float:
        return sum(line.monthly_max for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "cloud": self.cloud, "region": self.region,
                "monthly_min_usd": round(self.monthly_min, 2), "monthly_max_usd": round(self.monthly_max, 2),
                "complete": not self.missing,
                "lines": [{**asdict(line), "monthly_min_usd": round(line.monthly_min, 2),
                           "monthly_max_usd": round(line.monthly_max, 2)} for line in self.lines],
                "missing": list(self.missing), "notes": list(self.notes)}


# --- plain resources ------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A Terraform value as JSON data: expressions become `${...}` text, jsonencode() its JSON text."""
    if isinstance(value, Expr):
        return "${" + value.text + "}"
    if isinstance(value, Interp):
        return "".join(p if isinstance(p, str) else "${" + p.text + "}" for p in value.parts)
    if isinstance(value, Call):
        args = [plain(a) for a in value.args]
        if value.name == "jsonencode" and len(args) == 1:
            return json.dumps(args[0], sort_keys=True)
        return "${" + value.name + "(...)}"
    if isinstance(value, Block):
        return {k: plain(v) for k, v in value.body.items()}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def stack_resources(stack: Stack) -> list[dict[str, Any]]:
    """The stack's resources as plain data; `count` repeats a resource when it is a literal number."""
    out = []
    for r in stack.resources:
        copies = r.count if isinstance(r.count, int) and not isinstance(r.count, bool) else 1
        values = {k: plain(v) for k, v in r.body.items()}
        out += [{"type": r.type, "name": r.name, "values": values} for _ in range(copies)]
    return out


def _module_resources(module: Mapping[str, Any] | None) -> Iterator[dict[str, Any]]:
    if not module:
        return
    for r in module.get("resources") or ():
        if r.get("mode", "managed") == "managed":
            yield {"type": r.get("type", ""), "name": r.get("name", ""), "values": r.get("values") or {}}
    for child in module.get("child_modules") or ():
        yield from _module_resources(child)


def plan_sides(plan: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(before, after) resources of a `terraform show -json` plan: the prior state and the planned values.

    A value Terraform knows only after apply is null in planned_values; the estimator then counts
    what it can and says so."""
    before = list(_module_resources(((plan.get("prior_state") or {}).get("values") or {}).get("root_module")))
    after = list(_module_resources((plan.get("planned_values") or {}).get("root_module")))
    return before, after


# --- schedules ------------------------------------------------------------------------------------

_NAMES = {"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10,
          "NOV": 11, "DEC": 12, "SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


def _field_count(text: str, low: int, high: int) -> int | None:
    """How many values a cron field matches; None for '*' or '?' (every value)."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = int(_NAMES.get(a.upper(), a)), int(_NAMES.get(b.upper(), b))
        else:
            start = int(_NAMES.get(part.upper(), part))
            end = high if "/" in text else start
        values.update(range(start, end + 1, step))
    return len(values)


def runs_per_month(expression: str) -> float:
    """Runs per average month of an EventBridge (`cron(m h dom mon dow [year])`, `rate(n unit)`) or a
    five-field cron expression (Azure ML schedules). ValueError names what it cannot count (L, W, #)."""
    text = expression.strip()
    rate = re.fullmatch(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", text)
    if rate:
        n, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        per = {"minute": HOURS_PER_MONTH * 60, "hour": HOURS_PER_MONTH, "day": DAYS_PER_MONTH}[unit]
        return per / n
    if text.startswith("at("):
        return 0.0  # a one-time schedule: not a monthly cost
    match = re.fullmatch(r"cron\((.*)\)", text)
    fields = (match.group(1) if match else text).split()
    if len(fields) == 5:  # minute hour day-of-month month day-of-week (Sunday 0)
        minute, hour, dom, month, dow = fields
        dow = ",".join(str(int(d) + 1) if d.isdigit() else d for d in dow.split(",")) if dow not in "*?" else dow
    elif len(fields) in (6, 7):
        minute, hour, dom, month, dow = fields[:5]
    else:
        raise ValueError(f"cannot count the runs of schedule {expression!r}: expected cron(...), rate(...) "
                         "or five cron fields")
    if re.search(r"[LW#]", dom + dow):
        raise ValueError(f"cannot count the runs of schedule {expression!r}: L, W and # are not supported")
    try:
        per_day = (_field_count(minute, 0, 59) or 60) * (_field_count(hour, 0, 23) or 24)
        days, weekdays = _field_count(dom, 1, 31), _field_count(dow, 1, 7)
        months = _field_count(month, 1, 12)
    except ValueError:
        raise ValueError(f"cannot count the runs of schedule {expression!r}") from None
    if weekdays is not None:
        per_month_days = weekdays * WEEKS_PER_MONTH
    elif days is not None:
        per_month_days = float(days)
    else:
        per_month_days = DAYS_PER_MONTH
    return per_day * per_month_days * ((months or 12) / 12)


# --- jobs inside pipeline and state machine definitions ------------------------------------------


@dataclass(frozen=True)
class Job:
    kind: str  # "training", "processing", "transform"
    instance_type: str
    instance_count: int
    max_runtime_s: int
    repeats: int = 1  # a tuning step's maximum number of training jobs
    where: str = ""


def _walk(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            value = json.loads(value)
        except ValueError:
            return
    if isinstance(value, Mapping):
        yield value
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def _blocks(value: Any) -> list[Mapping[str, Any]]:
    """A nested block as a list: one rendered Block is a map, plan JSON always has a list."""
    if isinstance(value, Mapping):
        return [value]
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, (list, tuple)) else []


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def jobs_in(definition: Any, where: str) -> list[Job]:
    """Every SageMaker job a pipeline or state machine definition starts, with its bounds."""
    found, counted = [], set()  # counted: tuning training definitions, not jobs of their own
    # A Transform job has no StoppingCondition: a state machine bounds it by its Task's TimeoutSeconds.
    nodes = list(_walk(definition))
    timeouts = {id(n["Parameters"]): n["TimeoutSeconds"] for n in nodes
                if isinstance(n.get("Parameters"), Mapping) and _int(n.get("TimeoutSeconds"))}
    for node in nodes:
        if id(node) in counted:
            continue
        runtime = _int(((node.get("StoppingCondition") or {}) if isinstance(node.get("StoppingCondition"), Mapping)
                        else {}).get("MaxRuntimeInSeconds"), 86400)
        if isinstance(node.get("ProcessingResources"), Mapping):
            c = node["ProcessingResources"].get("ClusterConfig") or {}
            found.append(Job("processing", str(c.get("InstanceType")), _int(c.get("InstanceCount"), 1), runtime,
                             where=where))
        if isinstance(node.get("TransformResources"), Mapping):
            c = node["TransformResources"]
            found.append(Job("transform", str(c.get("InstanceType")), _int(c.get("InstanceCount"), 1),
                             timeouts.get(id(node), 86400), where=where))
        tuning = node.get("HyperParameterTuningJobConfig")
        training = node.get("TrainingJobDefinition")
        if isinstance(tuning, Mapping) and isinstance(training, Mapping):
            counted.add(id(training))
            c = training.get("ResourceConfig") or {}
            stop = training.get("StoppingCondition") or {}
            limits = tuning.get("ResourceLimits") or {}
            found.append(Job("training", str(c.get("InstanceType")), _int(c.get("InstanceCount"), 1),
                             _int(stop.get("MaxRuntimeInSeconds"), 86400),
                             repeats=_int(limits.get("MaxNumberOfTrainingJobs"), 1), where=where))
        elif isinstance(node.get("ResourceConfig"), Mapping) and "AlgorithmSpecification" in node:
            c = node["ResourceConfig"]
            found.append(Job("training", str(c.get("InstanceType")), _int(c.get("InstanceCount"), 1), runtime,
                             where=where))
    return found


# --- the estimators ------------------------------------------------------------------------------


class _Pricer:
    """Collects lines and missing prices for one stack."""

    def __init__(self, out: StackCost, book: PriceBook, cloud: str):
        self.out, self.book, self.cloud = out, book, cloud

    def _missing(self, text: str) -> None:
        if text not in self.out.missing:
            self.out.missing.append(text)

    def add(self, item: str, resource: str, service: str, key: str, qmin: float, qmax: float, unit: str) -> None:
        row = self.book.price(self.cloud, service, key, self.out.region)
        line = Line(item, resource, service, key, qmin, qmax, unit)
        if row is None or row.usd is None:
            why = "the table marks it unknown" if row is not None else "no such row"
            self._missing(f"no price for {key} ({service}) in {self.out.region} ({why}); "
                                    f"{self.book.hint(self.cloud)}")
        else:
            line.unit_usd, line.source = row.usd, f"{row.source} ({row.date})"
            if row.unit != unit:
                self._missing(f"price of {key} ({service}) is per {row.unit}, expected per {unit}")
                line.unit_usd = None
        self.out.lines.append(line)


def _by_type(resources: Iterable[Mapping[str, Any]], *types: str) -> list[Mapping[str, Any]]:
    return [r for r in resources if r.get("type") in types]


def _aws(resources: list[Mapping[str, Any]], p: _Pricer) -> None:
    targets = {}
    for t in _by_type(resources, "aws_appautoscaling_target"):
        v = t["values"]
        m = re.search(r"/variant/([^/]+)$", str(v.get("resource_id") or ""))
        if m and v.get("scalable_dimension") == "sagemaker:variant:DesiredInstanceCount":
            targets[m.group(1)] = (_int(v.get("min_capacity")), _int(v.get("max_capacity")))
    endpoints = _by_type(resources, "aws_sagemaker_endpoint")
    if endpoints:
        for config in _by_type(resources, "aws_sagemaker_endpoint_configuration"):
            for variant in _blocks(config["values"].get("production_variants")):
                name, itype = variant.get("variant_name"), variant.get("instance_type")
                if not itype:
                    p.out.notes.append(f"variant {name}: serverless or unknown instance type, not estimated")
                    continue
                low, high = targets.get(name) or (_int(variant.get("initial_instance_count"), 1),) * 2
                p.add(f"endpoint variant {name}: {low}..{high} x {itype}", f"aws_sagemaker_endpoint_configuration."
                      f"{config['name']}", "sagemaker-hosting", itype, low * HOURS_PER_MONTH, high * HOURS_PER_MONTH,
                      "hour")
        p.add(f"CloudWatch Logs ingestion, {LOG_GB_PER_ENDPOINT:g} GB/month per endpoint (assumed)",
              "aws_sagemaker_endpoint", "cloudwatch-logs", "ingestion", LOG_GB_PER_ENDPOINT * len(endpoints),
              LOG_GB_PER_ENDPOINT * len(endpoints), "GB")
    definitions = {f"{r['type']}.{r['name']}": r["values"].get("pipeline_definition") or r["values"].get("definition")
                   for r in _by_type(resources, "aws_sagemaker_pipeline", "aws_sfn_state_machine")}
    schedules = [r for r in _by_type(resources, "aws_scheduler_schedule", "aws_cloudwatch_event_rule")
                 if r["values"].get("schedule_expression")]
    jobs = [job for where, d in definitions.items() for job in jobs_in(d, where)]
    if jobs and not schedules:
        p.out.notes.append("jobs are defined but no schedule starts them: runs on demand are not estimated")
    for schedule in schedules:
        expression = str(schedule["values"]["schedule_expression"])
        try:
            runs = runs_per_month(expression)
        except ValueError as exc:
            p.out.missing.append(str(exc))
            continue
        started = _started_by(schedule, definitions, resources)
        chosen = [j for j in jobs if j.where in started]
        for index, job in enumerate(chosen):
            # A state machine runs one job per served variant: number them so the lines tell apart.
            nth = f" #{sum(1 for j in chosen[:index] if j.where == job.where) + 1}" \
                if sum(1 for j in chosen if j.where == job.where) > 1 else ""
            hours = runs * job.repeats * job.instance_count * job.max_runtime_s / 3600
            tuning = f" x {job.repeats} tuning jobs" if job.repeats > 1 else ""
            p.add(f"{job.kind} job{nth} ({job.where}) on {schedule['name']} {expression}: {runs:.1f} runs{tuning} x "
                  f"{job.instance_count} x {job.instance_type} x <= {job.max_runtime_s / 3600:g} h",
                  f"{schedule['type']}.{schedule['name']}", f"sagemaker-{job.kind}", job.instance_type, 0.0, hours,
                  "hour")
    for vpce in _by_type(resources, "aws_vpc_endpoint"):
        v = vpce["values"]
        if v.get("vpc_endpoint_type") == "Interface":
            subnets = v.get("subnet_ids")
            # Subnets read from another stack (an expression, or unknown in a plan) cannot be counted
            # here: a platform has at least two zones (DataInfrastructure.availability_zones >= 2).
            counted = isinstance(subnets, (list, tuple))
            zones = (len(subnets) or 1) if counted else ASSUMED_ZONES
            # com.amazonaws.<region>.<service>: the service part tells sagemaker.api from ecr.api
            service = ".".join(str(v.get("service_name", "")).split(".")[3:]) or str(v.get("service_name"))
            where = f"{zones} zones" if counted else f"{zones} zones (assumed: its subnets come from another stack)"
            p.add(f"interface endpoint {service} in {where}",
                  f"aws_vpc_endpoint.{vpce['name']}", "vpc-endpoint", "interface-endpoint-az",
                  zones * HOURS_PER_MONTH, zones * HOURS_PER_MONTH, "hour")
    keys = _by_type(resources, "aws_kms_key")
    if keys:
        p.add(f"{len(keys)} KMS key(s)", "aws_kms_key", "kms", "customer-managed-key", len(keys), len(keys), "month")


def _started_by(schedule: Mapping[str, Any], definitions: Mapping[str, Any], resources: list) -> set[str]:
    """The pipelines and state machines a schedule (or its event rule's targets) starts."""
    texts = [json.dumps(schedule["values"].get("target"))]
    if schedule["type"] == "aws_cloudwatch_event_rule":
        rule = f"aws_cloudwatch_event_rule.{schedule['name']}"
        texts += [json.dumps(t["values"]) for t in _by_type(resources, "aws_cloudwatch_event_target")
                  if rule in json.dumps(t["values"].get("rule"))]
    started = {a for a in definitions if any(a in t for t in texts)}
    if not started and len(definitions) == 1:  # planned values carry ARNs, not addresses
        started = set(definitions)
    return started


_DEPLOYMENT = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"
_SCHEDULE = "Microsoft.MachineLearningServices/workspaces/schedules"


def _body(values: Mapping[str, Any]) -> Mapping[str, Any]:
    body = values.get("body")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            body = {}
    return body if isinstance(body, Mapping) else {}


def _iso_hours(duration: str) -> float | None:
    """Hours of an ISO 8601 duration of hours and minutes (`PT1H`, `PT240M`, `PT1H30M`); None otherwise."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?", duration)
    if not match or not any(match.groups()):
        return None
    return int(match.group(1) or 0) + int(match.group(2) or 0) / 60


def _azure_expression(trigger: Mapping[str, Any]) -> str | None:
    """An Azure ML schedule trigger as an expression runs_per_month counts: its cron, or its recurrence."""
    if trigger.get("triggerType") == "Cron":
        return str(trigger.get("expression") or "") or None
    if trigger.get("triggerType") == "Recurrence" and trigger.get("frequency") in ("minute", "hour", "day"):
        return f"rate({_int(trigger.get('interval'), 1)} {trigger['frequency']})"
    return None


def _azure(resources: list[Mapping[str, Any]], p: _Pricer) -> None:
    scales = []
    for s in _by_type(resources, "azurerm_monitor_autoscale_setting"):
        for profile in _blocks(s["values"].get("profile")):
            for cap in _blocks(profile.get("capacity")):
                scales.append((str(s["values"].get("target_resource_id") or ""),
                               _int(cap.get("minimum")), _int(cap.get("maximum"))))
    for d in _by_type(resources, "azapi_resource"):
        v = d["values"]
        if not str(v.get("type", "")).startswith(_DEPLOYMENT + "@"):
            continue
        body = _body(v)
        size = (body.get("properties") or {}).get("instanceType")
        count = _int((body.get("sku") or {}).get("capacity"), 1)
        low = high = count
        for target, mn, mx in scales:
            if f"azapi_resource.{d['name']}." in target or target.endswith(f"/deployments/{v.get('name')}"):
                low, high = mn, mx
        p.add(f"online deployment {v.get('name')}: {low}..{high} x {size}", f"azapi_resource.{d['name']}",
              "ml-online-vm", str(size), low * HOURS_PER_MONTH, high * HOURS_PER_MONTH, "hour")
    for c in _by_type(resources, "azurerm_machine_learning_compute_cluster"):
        v = c["values"]
        settings = (_blocks(v.get("scale_settings")) or [{}])[0]
        low = _int(settings.get("min_node_count"))
        if low:
            p.add(f"compute cluster {v.get('name')}: {low} node(s) always on", f"{c['type']}.{c['name']}",
                  "ml-compute-vm", f"{v.get('vm_size')}:{v.get('vm_priority', 'Dedicated')}", low * HOURS_PER_MONTH,
                  low * HOURS_PER_MONTH, "hour")
        schedules = [s for s in _by_type(resources, "azapi_resource")
                     if str(s["values"].get("type", "")).startswith(_SCHEDULE + "@")]
        high = _int(settings.get("max_node_count"), 1)
        for s in schedules:
            properties = _body(s["values"]).get("properties") or {}
            trigger = properties.get("trigger") or {}
            job = (properties.get("action") or {}).get("jobDefinition") or {}
            compute = str(job.get("computeId") or "")
            if "azurerm_machine_learning_compute_cluster." in compute and \
                    f"azurerm_machine_learning_compute_cluster.{c['name']}." not in compute:
                continue  # another cluster's schedule (ingestion renders one cluster and schedule per group)
            hours = _iso_hours(str((job.get("limits") or {}).get("timeout") or ""))
            expression = _azure_expression(trigger)
            if hours is None or expression is None:
                p.out.notes.append(f"compute cluster {v.get('name')} (min {low} nodes): schedule "
                                   f"{s['values'].get('name')} ({trigger.get('expression', '?')}) starts jobs with no "
                                   "maximum runtime in the rendered config: their node-hours are not estimated")
                continue
            try:
                runs = runs_per_month(expression)
            except ValueError as exc:
                p.out.missing.append(str(exc))
                continue
            p.add(f"jobs of {s['values'].get('name')} on {v.get('name')} ({expression}): {runs:.1f} runs x "
                  f"<= {high} x {v.get('vm_size')} x <= {hours:g} h", f"azapi_resource.{s['name']}", "ml-compute-vm",
                  f"{v.get('vm_size')}:{v.get('vm_priority', 'Dedicated')}", 0.0, runs * high * hours, "hour")
    for r in _by_type(resources, "azurerm_redis_cache"):
        v = r["values"]
        key = f"{v.get('sku_name')}_{v.get('family')}{v.get('capacity')}"
        p.add(f"Redis cache {key}", f"azurerm_redis_cache.{r['name']}", "redis", key, HOURS_PER_MONTH,
              HOURS_PER_MONTH, "hour")
    endpoints = _by_type(resources, "azurerm_private_endpoint")
    if endpoints:
        n = len(endpoints)
        p.add(f"{n} private endpoint(s)", "azurerm_private_endpoint", "private-endpoint", "endpoint-hour",
              n * HOURS_PER_MONTH, n * HOURS_PER_MONTH, "hour")
    workspaces = _by_type(resources, "azurerm_log_analytics_workspace")
    if workspaces:
        gb = LOG_GB_PER_WORKSPACE * len(workspaces)
        p.add(f"Log Analytics ingestion, {LOG_GB_PER_WORKSPACE:g} GB/month per workspace (assumed)",
              "azurerm_log_analytics_workspace", "log-analytics", "ingestion", gb, gb, "GB")


ESTIMATORS: dict[str, Callable[[list[Mapping[str, Any]], _Pricer], None]] = {"aws": _aws, "azure": _azure}


def estimate(stack: str, cloud: str, region: str, resources: list[Mapping[str, Any]], book: PriceBook) -> StackCost:
    """One stack's monthly cost range from its plain resources."""
    out = StackCost(stack, cloud, region)
    ESTIMATORS[cloud](list(resources), _Pricer(out, book, cloud))
    return out


# --- output ---------------------------------------------------------------------------------------


def money(low: float, high: float) -> str:
    return f"${low:,.2f}" if round(low, 2) == round(high, 2) else f"${low:,.2f}..${high:,.2f}"


def to_json(namespace: str, costs: list[StackCost], sources: list[str]) -> str:
    return json.dumps({
        "namespace": namespace, "currency": "USD", "period": "month",
        "total_min_usd": round(sum(c.monthly_min for c in costs), 2),
        "total_max_usd": round(sum(c.monthly_max for c in costs), 2),
        "complete": all(not c.missing for c in costs),
        "stacks": [c.to_dict() for c in costs], "assumptions": ASSUMPTIONS, "price_sources": sources,
    }, indent=2) + "\n"


def to_text(namespace: str, costs: list[StackCost], sources: list[str]) -> str:
    lines = [f"Estimated monthly cost, namespace {namespace} (USD)", ""]
    for c in costs:
        lines.append(f"{c.stack} ({c.cloud}, {c.region}): {money(c.monthly_min, c.monthly_max)}"
                     + ("  (incomplete: prices missing)" if c.missing else ""))
        for line in c.lines:
            price = f"{money(line.monthly_min, line.monthly_max)}" if line.unit_usd is not None else "no price"
            lines.append(f"  {price:>24}  {line.item}")
        lines += [f"  ! {m}" for m in c.missing] + [f"  - {n}" for n in c.notes]
    total_min, total_max = sum(c.monthly_min for c in costs), sum(c.monthly_max for c in costs)
    incomplete = any(c.missing for c in costs)
    lines += ["", f"total: {money(total_min, total_max)}"
              + (" (a lower bound: some prices are missing, listed with !)" if incomplete else ""), "",
              "Assumptions:", *[f"- {a}" for a in ASSUMPTIONS], "", "Prices:", *[f"- {s}" for s in sources]]
    return "\n".join(lines) + "\n"


def change_line(before: StackCost | None, after: StackCost) -> str:
    """The plan summary's cost line: before -> after per month and the change the plan causes."""
    b_min, b_max = (before.monthly_min, before.monthly_max) if before else (0.0, 0.0)
    d_min, d_max = after.monthly_min - b_min, after.monthly_max - b_max

    def sign(x: float) -> str:
        return f"+${x:,.2f}" if x >= 0 else f"-${-x:,.2f}"

    delta = sign(d_min) if round(d_min, 2) == round(d_max, 2) else f"{sign(d_min)}..{sign(d_max)}"
    missing = len(set((before.missing if before else []) + after.missing))
    note = f"; {missing} price(s) missing, see `mlops cost`" if missing else ""
    return (f"Cost (estimate, shipped prices): {money(b_min, b_max)} -> {money(after.monthly_min, after.monthly_max)} "
            f"per month ({delta}{note})")


def cloud_of(resources: Iterable[Mapping[str, Any]]) -> str | None:
    types = {str(r.get("type", "")) for r in resources}
    if any(t.startswith("aws_") for t in types):
        return "aws"
    if any(t.startswith(("azurerm_", "azapi_")) for t in types):
        return "azure"
    return None


def plan_cost_line(plan: Mapping[str, Any], namespace: Any, book: PriceBook | None = None) -> str:
    """The summary's cost line for one saved plan: the prior state's estimate against the planned one.

    Offline by design: the shipped table unless a book is given, so planning never calls a cloud.
    A broken price table is a line saying so, not a failed plan."""
    from .cost_prices import ShippedTable
    from .errors import MlopsError

    before, after = plan_sides(plan)
    cloud = cloud_of(before + after)
    settings = getattr(namespace, cloud, None) if cloud else None
    if settings is None:
        return ""
    region = settings.region if cloud == "aws" else settings.location
    book = book or ShippedTable()
    try:
        old = estimate("before", cloud, region, before, book) if before else None
        new = estimate("after", cloud, region, after, book)
    except MlopsError as exc:
        return f"Cost: not estimated ({'; '.join(exc.problems)})"
    return change_line(old, new)
