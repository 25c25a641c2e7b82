"""`python -m training.ingest_azure`: one group's new raw objects into its feature set's source, once each.

The same run as on AWS (`ingest_run.py`: the ledger, the row checks of `ingest.py`, the quarantine
with each row's reason, the marker written last), on Azure Blob Storage (the lake is ADLS Gen2;
its Blob endpoint serves the same data): new objects under the spec's prefix of the raw container,
bad rows to `<quarantine_prefix><key>.rejected.csv` of the raw container, markers under the ledger
prefix of the offline container. The checked rows are not written record by record, since Azure ML's
feature store has no PutRecord: they go as one Parquet file per object and ETag to
`<output_prefix><key>/<etag>.parquet` of the offline container, the source path the feature set's
specification reads; the feature set's materialization then moves them into the offline and online
stores. Typed columns, one per feature: integral int64, fractional float64, string text, and the
event time a UTC timestamp (what the specification's `timestamp_column` reads). A rerun of a
half-done object writes the same file again; a changed object (new ETag) is a new file beside the
old one, as the AWS store keeps both records.

Credentials: with `AZURE_STORAGE_CONNECTION_STRING` set (Azurite, a developer's account) it is used;
otherwise `DefaultAzureCredential`, which in an Azure ML job is the compute's user-assigned identity
(`AZURE_CLIENT_ID` names it), against `--account-url`. With `--metrics-resource`, the run's counts
(RecordsWritten, QuarantinedRows, FailedObjects by FeatureGroup) go to Azure Monitor as custom
metrics of that resource (namespace `--metrics-namespace`), where the stack's alert on quarantined
rows reads them.

One run of a group at a time (run_lock.py): a run that finds another holding the group's lease
ends at once with exit code 0, and the holder lists the prefix again until a listing brings nothing
new (at most MAX_PASSES) before it lets go.

Exit codes: 0 every new object was processed (refused rows are quarantined, not a failure); 1 an
object could not be read or written (the others are still processed; the failed one is not
marked, so the next run retries it), or the metrics could not be sent; 2 a bad spec or arguments.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from . import ingest_run
from .ingest import IngestionSpec, Prepared, SpecError, parse_time
from .ingest_run import Item, Summary
from .run_lock import LOCK_NAME, LockHeld, RunLock

CONNECTION_ENV = "AZURE_STORAGE_CONNECTION_STRING"
MAX_PASSES = 10  # listings of one run (locked_run)
MONITOR_SCOPE = "https://monitoring.azure.com/.default"
PANDAS_TYPES = {"integral": "Int64", "fractional": "Float64", "string": "string"}


class BlobObjects:
    """`ingest_run.Objects` on Azure Blob Storage, one client per container."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def _container(self, name: str) -> Any:
        return self.service.get_container_client(name)

    def list(self, bucket: str, prefix: str) -> list[Item]:
        # On a hierarchical-namespace account the Blob API lists directories too, as empty blobs with
        # the metadata hdi_isfolder=true (ADLS Gen2 "Blob API interoperability"): they are not data.
        return [Item(b.name, b.etag, b.last_modified)
                for b in self._container(bucket).list_blobs(name_starts_with=prefix, include=["metadata"])
                if (b.metadata or {}).get("hdi_isfolder") != "true"]

    def read(self, bucket: str, key: str, etag: str) -> bytes:
        from azure.core import MatchConditions

        # Pinned to the listed ETag: an object replaced since the listing fails here (412) and is
        # ingested by the next run under its new ETag, never marked done under the old one.
        return self._container(bucket).download_blob(key, etag=etag,
                                                     match_condition=MatchConditions.IfNotModified).readall()

    def write(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        from azure.storage.blob import ContentSettings

        self._container(bucket).upload_blob(key, body, overwrite=True,
                                            content_settings=ContentSettings(content_type=content_type))

    def url(self, bucket: str, key: str) -> str:
        return f"{self.service.url.rstrip('/')}/{bucket}/{key}"


def typed(spec: IngestionSpec, prepared: Prepared) -> pd.DataFrame:
    """The checked records as a table of the feature set's source: one typed column per feature."""
    rows = [{v["FeatureName"]: v["ValueAsString"] for v in r} for r in prepared.records]
    frame = pd.DataFrame(rows, columns=[f.name for f in spec.features])
    for f in spec.features:
        if f.name == spec.event_time:
            frame[f.name] = pd.to_datetime([parse_time(v) for v in frame[f.name]], utc=True)
        elif f.type == "integral":
            frame[f.name] = pd.array([None if pd.isna(v) else int(v) for v in frame[f.name]], dtype="Int64")
        else:
            frame[f.name] = frame[f.name].astype(PANDAS_TYPES[f.type])
    return frame


class ParquetSink:
    """`ingest_run.Sink` on Azure: the object's checked rows as one Parquet file of the source path."""

    def __init__(self, store: BlobObjects, spec: IngestionSpec) -> None:
        if not spec.output_bucket or not spec.output_prefix:
            raise SpecError("the spec has no output_bucket and output_prefix: where the feature set's source is")
        self.store, self.spec = store, spec
        self.target = store.url(spec.output_bucket, spec.output_prefix)

    def key(self, key: str, etag: str) -> str:
        return f"{self.spec.output_prefix}{key}/{etag.strip(chr(34))}.parquet"

    def write(self, key: str, etag: str, frame: pd.DataFrame, prepared: Prepared) -> list[str | None]:
        if prepared.records:
            buffer = io.BytesIO()
            typed(self.spec, prepared).to_parquet(buffer, index=False)
            assert self.spec.output_bucket is not None
            self.store.write(self.spec.output_bucket, self.key(key, etag), buffer.getvalue(),
                             "application/vnd.apache.parquet")
        return [None] * len(prepared.records)  # a file refuses no single row


def service(account_url: str | None) -> Any:
    """A BlobServiceClient: the connection string if set, else the account URL with Entra ID."""
    from azure.storage.blob import BlobServiceClient

    connection = os.environ.get(CONNECTION_ENV)
    if connection:
        return BlobServiceClient.from_connection_string(connection)
    if not account_url:
        raise SpecError(f"--account-url is required without {CONNECTION_ENV}")
    from azure.identity import DefaultAzureCredential

    return BlobServiceClient(account_url, credential=DefaultAzureCredential())


def load_spec(where: str) -> IngestionSpec:
    try:
        with open(where, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{where}: cannot be read ({exc})") from None
    spec = IngestionSpec.from_json(text, where)
    if not spec.output_bucket or not spec.output_prefix:
        raise SpecError(f"{where}: no output_bucket and output_prefix (the feature set's source path)")
    return spec


def monitor_bodies(spec: IngestionSpec, summary: Summary, namespace: str, when: datetime) -> list[dict[str, Any]]:
    """Azure Monitor custom-metric bodies (one per metric), dimension FeatureGroup."""
    return [{"time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "data": {"baseData": {
        "metric": name, "namespace": namespace, "dimNames": ["FeatureGroup"],
        "series": [{"dimValues": [spec.feature_group], "min": value, "max": value, "sum": value, "count": 1}]}}}
        for name, value in ingest_run.counts(summary)]


def send_metrics(bodies: list[dict[str, Any]], region: str, resource: str, token: str) -> None:
    endpoint = f"https://{region}.monitoring.azure.com{resource}/metrics"
    for body in bodies:
        request = urllib.request.Request(endpoint, data=json.dumps(body).encode(), method="POST", headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()


def lock_key(spec: IngestionSpec) -> str:
    """The group's lock blob, beside its ledger (run_lock.py)."""
    return spec.ledger_prefix + LOCK_NAME


def locked_run(spec: IngestionSpec, store: BlobObjects, sink: ParquetSink) -> Summary:
    """The run under the group's lock (run_lock.py), listing again after each pass that ingested
    anything: objects that arrived while it worked, whose own runs ended on the lock. Raises LockHeld."""
    with RunLock(store.service.get_container_client(spec.ledger_bucket), lock_key(spec)) as lock:
        last = ingest_run.run(spec, store, sink)
        latest = {r.key: r for r in last.results}
        # Again while a pass ingested something (failures alone wait for the next run), at most
        # MAX_PASSES in all: a steady stream is the schedule's to pick up, not one run's forever.
        for _ in range(MAX_PASSES - 1):
            if not last.done:
                break
            print("listing again for objects that arrived during the run")
            last = ingest_run.run(spec, store, sink)
            latest |= {r.key: r for r in last.results}  # an object that failed before is tried again here
    if lock.lost:
        print(f"Warning: the run lost its lock on {lock_key(spec)} ({lock.lost}); another run may "
              f"have repeated some of its writes, which is harmless", file=sys.stderr)
    return Summary(list(latest.values()))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.ingest_azure", description=__doc__.split("\n")[0])
    p.add_argument("--spec", required=True, help="The group's ingestion spec (JSON file).")
    p.add_argument("--account-url", help="The lake's Blob endpoint, https://<account>.blob.core.windows.net "
                                         f"(not needed with {CONNECTION_ENV}).")
    p.add_argument("--metrics-resource", help="ARM id of the resource the counts are custom metrics of.")
    p.add_argument("--metrics-region", help="Its region (the custom-metrics endpoint is regional).")
    p.add_argument("--metrics-namespace", default="MLOps/Ingestion")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if bool(args.metrics_resource) != bool(args.metrics_region):
        print("Error: --metrics-resource and --metrics-region go together", file=sys.stderr)
        return 2
    try:
        spec = load_spec(args.spec)
        store = BlobObjects(service(args.account_url))
        sink = ParquetSink(store, spec)
    except SpecError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = locked_run(spec, store, sink)
    except LockHeld:
        print(f"{store.url(spec.ledger_bucket, lock_key(spec))} is leased by another run of "
              f"{spec.feature_group}: this one ends, and that run lists the prefix again before it finishes")
        return 0
    if args.metrics_resource:
        try:
            from azure.identity import DefaultAzureCredential

            token = DefaultAzureCredential().get_token(MONITOR_SCOPE).token
            send_metrics(monitor_bodies(spec, summary, args.metrics_namespace, datetime.now(UTC)),
                         args.metrics_region, args.metrics_resource, token)
        except (urllib.error.URLError, OSError, ImportError) as exc:
            print(f"Error: the run's counts could not be sent to Azure Monitor ({exc})", file=sys.stderr)
            return 1
        except Exception as exc:  # azure-identity's CredentialUnavailableError, ClientAuthenticationError
            print(f"Error: no token for Azure Monitor ({type(exc).__name__}: {exc})", file=sys.stderr)
            return 1
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
