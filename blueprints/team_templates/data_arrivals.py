"""DataArrivals: an e-mail to the namespace's alert addresses when objects land in one data zone.

A team's own template, written with the public API only as an example (README: Your own
templates): a Template dataclass with validated parameters, a dependency on DataInfrastructure
whose outputs it reads through remote state, and an AWS renderer registered from this repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from mlops_dsl import (
    Constraint,
    DataInfrastructure,
    InstanceOf,
    Output,
    Pattern,
    Resource,
    StackContext,
    Template,
    jsonencode,
    renderer,
)
from mlops_dsl.aws.alerts import alert_topic

NAME_PATTERN = r"[a-z][a-z0-9-]{0,18}[a-z0-9]"
# S3 object key characters that need no escaping (S3 docs: "Object key naming guidelines").
PREFIX_PATTERN = r"[A-Za-z0-9!_.*'()/-]{0,256}"


@dataclass(eq=False, repr=False)
class DataArrivals(Template):
    """Notifies when an object is created in `zone` of `data` (under `prefix`, if given)."""

    data: DataInfrastructure
    """The data infrastructure whose zone is watched: a dependency, deployed first."""

    zone: str = "raw"
    """The zone whose bucket is watched. Default raw: where new data first lands."""

    prefix: str = ""
    """Only keys under this prefix (e.g. `incoming/`). Default: every key."""

    name: str = field(default="arrivals", kw_only=True)

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "data": [InstanceOf(DataInfrastructure)],
        "zone": [Pattern(r"[a-z][a-z0-9-]{0,14}[a-z0-9]", "a zone name")],
        "prefix": [Pattern(PREFIX_PATTERN, "an S3 key prefix of at most 256 safe characters")],
        "name": [Pattern(NAME_PATTERN, "2 to 20 lowercase letters, digits and hyphens, starting with a letter")],
    }

    def _check_combinations(self) -> list[str]:
        if self.zone not in self.data.zones:
            return [f"DataArrivals '{self.name}': zone {self.zone!r} is not one of the zones of DataInfrastructure "
                    f"'{self.data.name}' ({', '.join(self.data.zones)})"]
        return []


@renderer(DataArrivals, cloud="aws")
def render_aws(t: DataArrivals, ctx: StackContext) -> None:
    """An EventBridge rule on the zone bucket's "Object Created" events, to an encrypted SNS topic.

    The data stack turns on EventBridge notifications for every zone bucket
    (aws_s3_bucket_notification `eventbridge = true`); S3 then sends "Object Created" events with
    `detail.bucket.name` and `detail.object.key` (S3 User Guide: "EventBridge event message structure").
    """
    bucket = ctx.upstream_output(t.data, "bucket_names")[t.zone]
    topic = alert_topic(ctx, f"{ctx.name}-{t.name}", "data arrival",
                        {"EventBridgeRulesOfThisAccount": "events.amazonaws.com"})
    detail: dict = {"bucket": {"name": [bucket]}}
    if t.prefix:
        detail["object"] = {"key": [{"prefix": t.prefix}]}
    rule = Resource("aws_cloudwatch_event_rule", "arrivals", {
        "name": f"{ctx.name}-{t.name}",
        "description": f"Objects created in the {t.zone} zone" + (f" under {t.prefix}" if t.prefix else ""),
        "event_pattern": jsonencode({"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": detail}),
    })
    ctx.stack.add(rule, Resource("aws_cloudwatch_event_target", "arrivals", {
        "rule": rule.attr("name"),
        "arn": topic.attr("arn"),
    }))
    ctx.stack.add(Output("topic_arn", topic.attr("arn"), description="SNS topic told of each new object"))
