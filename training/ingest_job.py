"""`python -m training ingest`: one group's new raw objects into the Feature Store, once each.

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

import io
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .ingest import ERROR_COLUMN, IngestionSpec, SpecError, prepare

RETRIES = {"max_attempts": 8, "mode": "standard"}  # botocore: exponential backoff with jitter, throttling included


@dataclass
class ObjectResult:
    key: str
    rows: int = 0
    written: int = 0
    quarantined: int = 0
    error: str | None = None


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


def load_spec(where: str, s3: Any) -> IngestionSpec:
    """The spec from a file, or from s3://bucket/key (as the FeatureStore stack's output names it)."""
    try:
        if where.startswith("s3://"):
            bucket, _, key = where.removeprefix("s3://").partition("/")
            text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        else:
            path = Path(where)
            text = next(iter(sorted(path.glob("*.json"))), path).read_text(encoding="utf-8") if path.is_dir() \
                else path.read_text(encoding="utf-8")
    except (OSError, StopIteration, UnicodeDecodeError) as exc:
        raise SpecError(f"{where}: cannot be read ({exc})") from None
    except Exception as exc:  # botocore's ClientError: no such bucket or key, access denied
        raise SpecError(f"{where}: cannot be read ({exc})") from None
    return IngestionSpec.from_json(text, where)


def marker_key(spec: IngestionSpec, key: str, etag: str) -> str:
    return f"{spec.ledger_prefix}{key}/{etag.strip(chr(34))}.json"


def new_objects(spec: IngestionSpec, s3: Any) -> list[tuple[str, str]]:
    """(key, etag) of the objects under the prefix without a ledger marker, oldest first."""
    seen = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=spec.ledger_bucket, Prefix=spec.ledger_prefix):
        seen.update(o["Key"] for o in page.get("Contents", []))
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=spec.raw_bucket, Prefix=spec.prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/") or Path(key).name.startswith((".", "_")):
                continue  # folder placeholders and markers such as _SUCCESS
            if marker_key(spec, key, item["ETag"]) not in seen:
                found.append((item["LastModified"], key, item["ETag"]))
    return [(key, etag) for _, key, etag in sorted(found)]


def read_object(body: bytes, spec: IngestionSpec, key: str) -> pd.DataFrame:
    """The raw table, every cell as read (CSV: text; Parquet: its types); ValueError when unreadable."""
    try:
        if spec.format == "parquet":
            return pd.read_parquet(io.BytesIO(body))
        compression = "gzip" if body[:2] == b"\x1f\x8b" else None
        return pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False, compression=compression)
    except Exception as exc:  # pandas and pyarrow raise many types for a malformed file
        raise ValueError(f"s3://{spec.raw_bucket}/{key}: not a readable {spec.format} file ({exc})") from None


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


def process(spec: IngestionSpec, c: Clients, key: str, etag: str) -> ObjectResult:
    result = ObjectResult(key)
    body = c.s3.get_object(Bucket=spec.raw_bucket, Key=key, IfMatch=etag)["Body"].read()
    frame = read_object(body, spec, key)
    prepared = prepare(frame, spec)
    refused = prepared.refused
    outcomes = write_records(c.runtime, spec, prepared.records)
    rejected = [(row, why) for row, why in zip(prepared.rows, outcomes, strict=True) if why is not None]
    if rejected:
        extra = frame.iloc[[row - 1 for row, _ in rejected]].copy()
        extra[ERROR_COLUMN] = [why for _, why in rejected]
        refused = pd.concat([refused, extra])
    result.rows, result.quarantined = len(frame), len(refused)
    result.written = len(prepared.records) - len(rejected)
    if len(refused):
        out = refused.copy()
        out.insert(0, "_row", [int(i) + 1 for i in refused.index])  # 1-based data row of the raw file
        c.s3.put_object(Bucket=spec.raw_bucket, Key=f"{spec.quarantine_prefix}{key}.rejected.csv",
                        Body=out.to_csv(index=False).encode("utf-8"), ContentType="text/csv")
    c.s3.put_object(Bucket=spec.ledger_bucket, Key=marker_key(spec, key, etag), ContentType="application/json",
                    Body=json.dumps({"key": key, "etag": etag, "rows": result.rows, "written": result.written,
                                     "quarantined": result.quarantined,
                                     "at": datetime.now(UTC).isoformat()}).encode("utf-8"))
    return result


@dataclass
class Summary:
    results: list[ObjectResult] = field(default_factory=list)

    @property
    def failed(self) -> list[ObjectResult]:
        return [r for r in self.results if r.error]


def run(spec: IngestionSpec, c: Clients, echo: Any = print) -> Summary:
    summary = Summary()
    for key, etag in new_objects(spec, c.s3):
        try:
            result = process(spec, c, key, etag)
        except Exception as exc:  # one object's failure must not stop the others; it is retried next run
            result = ObjectResult(key, error=f"{type(exc).__name__}: {exc}")
        summary.results.append(result)
        if result.error:
            echo(f"Error: s3://{spec.raw_bucket}/{key}: not ingested ({result.error}); the next run retries it")
        else:
            where = f", quarantined to s3://{spec.raw_bucket}/{spec.quarantine_prefix}{key}.rejected.csv" \
                if result.quarantined else ""
            echo(f"s3://{spec.raw_bucket}/{key}: {result.rows} rows, {result.written} written to "
                 f"{spec.feature_group}, {result.quarantined} quarantined{where}")
    done = [r for r in summary.results if not r.error]
    echo(f"{len(done)} new objects ingested into {spec.feature_group} ({sum(r.written for r in done)} records, "
         f"{sum(r.quarantined for r in done)} rows quarantined), {len(summary.failed)} failed")
    return summary


def metrics(spec: IngestionSpec, summary: Summary) -> list[dict[str, Any]]:
    """One run's counts as CloudWatch metric data, by feature group: what its alarms read."""
    done = [r for r in summary.results if not r.error]
    dimensions = [{"Name": "FeatureGroup", "Value": spec.feature_group}]
    return [{"MetricName": name, "Dimensions": dimensions, "Value": float(value), "Unit": "Count"}
            for name, value in (("RecordsWritten", sum(r.written for r in done)),
                                ("QuarantinedRows", sum(r.quarantined for r in done)),
                                ("FailedObjects", len(summary.failed)))]


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
