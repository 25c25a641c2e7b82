"""`python -m training ingest`: one group's new raw objects into the Feature Store, once each.

The run itself (ledger, checks, quarantine) is `ingest_run.py`, shared with Azure (`ingest_azure.py`);
this module is its S3 storage and its Feature Store sink.

For every object under the spec's prefix of the raw bucket that the ledger has not seen (the
ledger: one marker `<ledger_prefix><key>/<etag>.json` per processed object, in the offline zone):
read it (CSV with a header, or Parquet), `ingest.prepare` it, write the good rows with PutRecord
(a thread pool of `concurrency` calls; botocore's standard retries with backoff on throttling and
server errors; a record the store still refuses is quarantined with the store's message), write the
refused rows with their reason to `<quarantine_prefix><key>.rejected.csv` of the raw bucket, and
only then the marker. A rerun skips marked objects; an object whose run failed half-way is written
again in full, which PutRecord makes harmless (the same record at the same event time). A changed
object (new ETag) is a new object.

With `--metrics-namespace`, the run's counts go to CloudWatch (RecordsWritten, QuarantinedRows,
FailedObjects by FeatureGroup), where the stack's alarm on quarantined rows reads them.

Exit codes: 0 every new object was processed (refused rows are quarantined, not a failure); 1 an
object could not be read or written (the others are still processed; the failed one is not
marked, so the next run retries it); 2 a bad spec. Runs in a SageMaker Processing job (the spec
mounted from S3) or on this machine against the emulator (`--endpoint-url`).
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import ingest_run
from .ingest import IngestionSpec, Prepared, SpecError
from .ingest_run import Item, ObjectResult, Summary, marker_key

__all__ = ["Clients", "ObjectResult", "Summary", "clients", "load_spec", "main", "marker_key", "metrics",
           "new_objects", "read_object", "run"]

RETRIES = {"max_attempts": 8, "mode": "standard"}  # botocore: exponential backoff with jitter, throttling included


@dataclass
class Clients:
    s3: Any
    runtime: Any


def clients(endpoint_url: str | None, region: str | None) -> Clients:
    import boto3
    from botocore.config import Config

    config = Config(retries=RETRIES, max_pool_connections=64)  # type: ignore[arg-type]
    session = boto3.session.Session(region_name=region)
    return Clients(session.client("s3", endpoint_url=endpoint_url, config=config),
                   session.client("sagemaker-featurestore-runtime", endpoint_url=endpoint_url, config=config))


class S3Objects:
    """`ingest_run.Objects` on S3: list_objects_v2 pages, GetObject pinned to the listed ETag."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    def list(self, bucket: str, prefix: str) -> list[Item]:
        return [Item(o["Key"], o["ETag"], o["LastModified"])
                for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for o in page.get("Contents", [])]

    def read(self, bucket: str, key: str, etag: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"].read()

    def write(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def url(self, bucket: str, key: str) -> str:
        return f"s3://{bucket}/{key}"


class FeatureStoreSink:
    """`ingest_run.Sink` on AWS: PutRecord of every record into the group."""

    def __init__(self, runtime: Any, spec: IngestionSpec) -> None:
        self.runtime, self.spec, self.target = runtime, spec, spec.feature_group

    def write(self, key: str, etag: str, frame: pd.DataFrame, prepared: Prepared) -> list[str | None]:
        return write_records(self.runtime, self.spec, prepared.records)


def load_spec(where: str, s3: Any) -> IngestionSpec:
    """The spec from a file, or from s3://bucket/key (as the FeatureStore stack's output names it)."""
    try:
        if where.startswith("s3://"):
            bucket, _, key = where.removeprefix("s3://").partition("/")
            text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        else:
            text = read_local_spec(where)
    except (OSError, StopIteration, UnicodeDecodeError) as exc:
        raise SpecError(f"{where}: cannot be read ({exc})") from None
    except Exception as exc:  # botocore's ClientError: no such bucket or key, access denied
        raise SpecError(f"{where}: cannot be read ({exc})") from None
    return IngestionSpec.from_json(text, where)


def read_local_spec(where: str) -> str:
    """A spec file, or the first *.json of a directory (a mounted input)."""
    path = Path(where)
    return next(iter(sorted(path.glob("*.json"))), path).read_text(encoding="utf-8") if path.is_dir() \
        else path.read_text(encoding="utf-8")


def new_objects(spec: IngestionSpec, s3: Any) -> list[tuple[str, str]]:
    """(key, etag) of the objects under the prefix without a ledger marker, oldest first."""
    return [(i.key, i.etag) for i in ingest_run.new_objects(spec, S3Objects(s3))]


def read_object(body: bytes, spec: IngestionSpec, key: str) -> pd.DataFrame:
    """The raw table, every cell as read (CSV: text; Parquet: its types); ValueError when unreadable."""
    return ingest_run.read_object(body, spec, f"s3://{spec.raw_bucket}/{key}")


def _put(runtime: Any, group: str, record: list[dict[str, str]]) -> str | None:
    """None when stored; the store's message when it refuses the record (ValidationError)."""
    try:
        runtime.put_record(FeatureGroupName=group, Record=record)
        return None
    except runtime.exceptions.ValidationError as exc:
        return f"refused by the feature store: {exc.response.get('Error', {}).get('Message', exc)}"


def write_records(runtime: Any, spec: IngestionSpec, records: list[list[dict[str, str]]]) -> list[str | None]:
    """PutRecord of every record, `concurrency` at a time; per record None or why the store refused it.
    Any other error (the store unreachable after the retries, access denied) propagates."""
    with ThreadPoolExecutor(max_workers=spec.concurrency) as pool:
        return list(pool.map(lambda r: _put(runtime, spec.feature_group, r), records))


def run(spec: IngestionSpec, c: Clients, echo: Any = print) -> Summary:
    return ingest_run.run(spec, S3Objects(c.s3), FeatureStoreSink(c.runtime, spec), echo)


def metrics(spec: IngestionSpec, summary: Summary) -> list[dict[str, Any]]:
    """One run's counts as CloudWatch metric data, by feature group: what its alarms read."""
    dimensions = [{"Name": "FeatureGroup", "Value": spec.feature_group}]
    return [{"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": "Count"}
            for name, value in ingest_run.counts(summary)]


def main(spec_path: str, endpoint_url: str | None, region: str | None, metrics_namespace: str | None = None) -> int:
    c = clients(endpoint_url, region)
    try:
        spec = load_spec(spec_path, c.s3)
    except SpecError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    summary = run(spec, c)
    if metrics_namespace:
        import boto3

        boto3.session.Session(region_name=region).client("cloudwatch", endpoint_url=endpoint_url).put_metric_data(
            Namespace=metrics_namespace, MetricData=metrics(spec, summary))
    return 1 if summary.failed else 0
