"""Machine-readable drift metrics: JSON on stdout, CloudWatch PutMetricData, or Azure Monitor.

The same values go to every sink, so alarms can be written once per cloud:

    DriftDetected      1 when any feature drifted, else 0
    DriftedFeatures    how many features drifted
    RowsAnalysed       captured rows counted
    UnreadableRecords  capture records (or CSV rows) skipped because they could not be read
    FeatureDrift       per feature (dimension Feature): 1 drifted, 0 not
    FeatureEffect      per feature: the distribution test's effect (KS D or total variation)
    FeatureMissingShare per feature: the live share of missing values
    UnseenValues       per feature: live values not seen in training

CloudWatch: one PutMetricData call per 1,000 data points (the API's limit), namespace
`--namespace` (default MLOps/Drift), extra dimensions from `--dimension Name=Value` (e.g. the
endpoint and variant). Azure Monitor: the custom-metrics REST body, one POST per metric, to
`AZURE_MONITOR_ENDPOINT` (https://<region>.monitoring.azure.com/<resource id>/metrics) with a
bearer token from `AZURE_MONITOR_TOKEN`.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

CLOUDWATCH_BATCH = 1000


class SinkError(RuntimeError):
    """The metrics could not be delivered; the message says where and why."""


def points(report: dict[str, Any]) -> list[tuple[str, dict[str, str], float, str]]:
    """(metric, dimensions, value, unit) for the run and for each feature."""
    out = [("DriftDetected", {}, float(report["drifted"]), "None"),
           ("DriftedFeatures", {}, float(len(report["drifted_features"])), "Count"),
           ("RowsAnalysed", {}, float(report["rows"]), "Count"),
           ("UnreadableRecords", {}, float(report["unreadable_records"]), "Count")]
    for name, r in report["features"].items():
        dims = {"Feature": name}
        out.append(("FeatureDrift", dims, float(r["drifted"]), "None"))
        if r["effect"] is not None:
            out.append(("FeatureEffect", dims, float(r["effect"]), "None"))
        if r["missing"] is not None:
            out.append(("FeatureMissingShare", dims, float(r["missing"]), "None"))
        unseen = r.get("unseen", r.get("unseen_values"))
        if unseen is not None:
            out.append(("UnseenValues", dims, float(unseen), "Count"))
    return out


def as_json(report: dict[str, Any], dimensions: dict[str, str]) -> str:
    return json.dumps({"dimensions": dimensions, "metrics": [
        {"name": m, "dimensions": d, "value": v, "unit": u} for m, d, v, u in points(report)]})


def cloudwatch_requests(report: dict[str, Any], namespace: str, dimensions: dict[str, str],
                        timestamp: datetime) -> list[dict[str, Any]]:
    """PutMetricData parameters, at most CLOUDWATCH_BATCH data points each."""
    data = [{"MetricName": m, "Dimensions": [{"Name": k, "Value": v} for k, v in {**dimensions, **d}.items()],
             "Value": v, "Unit": u, "Timestamp": timestamp} for m, d, v, u in points(report)]
    return [{"Namespace": namespace, "MetricData": data[i:i + CLOUDWATCH_BATCH]}
            for i in range(0, len(data), CLOUDWATCH_BATCH)]


def put_cloudwatch(client: Any, requests: list[dict[str, Any]]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    for request in requests:
        try:
            client.put_metric_data(**request)
        except (BotoCoreError, ClientError) as exc:
            raise SinkError(f"CloudWatch PutMetricData to {request['Namespace']} failed: {exc}") from None


def azure_monitor_bodies(report: dict[str, Any], namespace: str, dimensions: dict[str, str],
                         timestamp: datetime) -> list[dict[str, Any]]:
    """Azure Monitor custom-metrics bodies: one per metric, one series per dimension combination."""
    by_metric: dict[str, list[tuple[dict[str, str], float]]] = {}
    for m, d, v, _ in points(report):
        by_metric.setdefault(m, []).append(({**dimensions, **d}, v))
    bodies = []
    for metric, series in by_metric.items():
        names = list(series[0][0])
        bodies.append({"time": timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"), "data": {"baseData": {
            "metric": metric, "namespace": namespace, "dimNames": names,
            "series": [{"dimValues": [dims[n] for n in names], "min": v, "max": v, "sum": v, "count": 1}
                       for dims, v in series]}}})
    return bodies


def post_azure_monitor(bodies: list[dict[str, Any]], endpoint: str, token: str) -> None:
    for body in bodies:
        request = urllib.request.Request(endpoint, data=json.dumps(body).encode(), method="POST", headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                answer.read()
        except (urllib.error.URLError, OSError) as exc:
            raise SinkError(f"Azure Monitor POST to {endpoint} failed: {exc}") from None


def send(report: dict[str, Any], sink: str, namespace: str, dimensions: dict[str, str]) -> str | None:
    """Deliver the metrics; returns the JSON text for the json sink (printed on stdout)."""
    now = datetime.now(UTC)
    if sink == "json":
        return as_json(report, dimensions)
    if sink == "cloudwatch":
        import boto3

        put_cloudwatch(boto3.client("cloudwatch"), cloudwatch_requests(report, namespace, dimensions, now))
        return None
    if sink == "azure-monitor":
        endpoint, token = os.environ.get("AZURE_MONITOR_ENDPOINT"), os.environ.get("AZURE_MONITOR_TOKEN")
        if not endpoint or not token:
            raise SinkError("the azure-monitor sink needs AZURE_MONITOR_ENDPOINT and AZURE_MONITOR_TOKEN")
        post_azure_monitor(azure_monitor_bodies(report, namespace, dimensions, now), endpoint, token)
        return None
    raise SinkError(f"unknown metrics sink {sink!r}")
