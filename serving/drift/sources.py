"""Where captured data lives: a local file or directory, an S3 prefix, or an Azure Blob prefix.

    /local/dir or file          every *.jsonl / *.json (capture) and *.csv (table) below it
    s3://bucket/prefix          credentials and region from the usual AWS chain (env, role)
    azure://container/prefix    connection string from AZURE_STORAGE_CONNECTION_STRING

Objects are listed in key order and read as streams of lines, never whole, so memory does not
grow with the size of a file. `--shard i/N` keeps every N-th object from the i-th: the same job on
N machines reads disjoint parts, whose partial counts merge exactly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

CAPTURE_SUFFIXES = (".jsonl", ".json")
TABLE_SUFFIXES = (".csv",)
CHUNK = 1 << 20


class SourceError(ValueError):
    """An input that cannot be listed or opened; the message names it."""


@dataclass(frozen=True)
class Blob:
    uri: str
    lines: Callable[[], Iterator[bytes]]

    @property
    def is_capture(self) -> bool:
        return self.uri.lower().endswith(CAPTURE_SUFFIXES)


def _wanted(name: str) -> bool:
    return name.lower().endswith(CAPTURE_SUFFIXES + TABLE_SUFFIXES)


def _split_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    rest = b""
    for chunk in chunks:
        rest += chunk
        *whole, rest = rest.split(b"\n")
        yield from whole
    if rest:
        yield rest


def _s3_client():  # type: ignore[no-untyped-def]
    try:
        import boto3
    except ImportError:
        raise SourceError("s3:// inputs need boto3 (pip install boto3)") from None
    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or None)


def _azure_container(container: str):  # type: ignore[no-untyped-def]
    try:
        from azure.storage.blob import ContainerClient
    except ImportError:
        raise SourceError("azure:// inputs need azure-storage-blob (pip install azure-storage-blob)") from None
    connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if not connection:
        raise SourceError("azure:// inputs need AZURE_STORAGE_CONNECTION_STRING")
    return ContainerClient.from_connection_string(connection, container)


def _bucket_key(uri: str, scheme: str) -> tuple[str, str]:
    rest = uri[len(scheme):]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise SourceError(f"{uri}: expected {scheme}<bucket or container>/<prefix>")
    return bucket, key


def list_blobs(uri: str) -> list[Blob]:
    """Every capture or table object under `uri`, sorted by name."""
    if uri.startswith("s3://"):
        return _s3_list(uri)
    if uri.startswith("azure://"):
        return _azure_list(uri)
    path = Path(uri)
    if path.is_file():
        return [Blob(str(path), lambda: _local_lines(path))]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and _wanted(p.name))
        return [Blob(str(p), lambda p=p: _local_lines(p)) for p in files]
    raise SourceError(f"{uri}: no such file or directory")


def _local_lines(path: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as handle:
            yield from handle
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _s3_list(uri: str) -> list[Blob]:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _bucket_key(uri, "s3://")
    client = _s3_client()
    try:
        keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for o in page.get("Contents", []) if _wanted(o["Key"])]
    except (BotoCoreError, ClientError) as exc:
        raise SourceError(f"{uri}: cannot list ({exc})") from None

    def lines(key: str) -> Iterator[bytes]:
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            yield from _split_lines(body.iter_chunks(CHUNK))
        except (BotoCoreError, ClientError) as exc:
            raise SourceError(f"s3://{bucket}/{key}: cannot read ({exc})") from None

    return [Blob(f"s3://{bucket}/{key}", lambda key=key: lines(key)) for key in sorted(keys)]


def _azure_list(uri: str) -> list[Blob]:
    from azure.core.exceptions import AzureError

    container_name, prefix = _bucket_key(uri, "azure://")
    container = _azure_container(container_name)
    try:
        names = [b.name for b in container.list_blobs(name_starts_with=prefix or None) if _wanted(b.name)]
    except AzureError as exc:
        raise SourceError(f"{uri}: cannot list ({str(exc).splitlines()[0]})") from None

    def lines(name: str) -> Iterator[bytes]:
        try:
            yield from _split_lines(container.download_blob(name).chunks())
        except AzureError as exc:
            raise SourceError(f"azure://{container_name}/{name}: cannot read ({str(exc).splitlines()[0]})") from None

    return [Blob(f"azure://{container_name}/{name}", lambda name=name: lines(name)) for name in sorted(names)]


def read_bytes(uri: str) -> bytes:
    """A whole small object (the baseline, a partial result)."""
    if uri.startswith("s3://"):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = _bucket_key(uri, "s3://")
        try:
            return _s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise SourceError(f"{uri}: cannot read ({exc})") from None
    if uri.startswith("azure://"):
        from azure.core.exceptions import AzureError

        container, name = _bucket_key(uri, "azure://")
        try:
            return _azure_container(container).download_blob(name).readall()
        except AzureError as exc:
            raise SourceError(f"{uri}: cannot read ({str(exc).splitlines()[0]})") from None
    try:
        return Path(uri).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise SourceError(f"{uri}: no such file") from None


def open_stream(uri: str) -> IO[bytes]:
    """A whole object as a stream, read once from the start (a model.tar.gz, which may be large)."""
    if uri.startswith("s3://"):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = _bucket_key(uri, "s3://")
        try:
            return _s3_client().get_object(Bucket=bucket, Key=key)["Body"]  # type: ignore[no-any-return]
        except (BotoCoreError, ClientError) as exc:
            raise SourceError(f"{uri}: cannot read ({exc})") from None
    if uri.startswith("azure://"):
        import io

        return io.BytesIO(read_bytes(uri))
    try:
        return Path(uri).open("rb")
    except (FileNotFoundError, IsADirectoryError):
        raise SourceError(f"{uri}: no such file") from None


def shard(blobs: list[Blob], index: int, count: int) -> list[Blob]:
    return blobs[index::count]


# SageMaker data capture writes <destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl, the hour
# being the UTC hour the file was written in.
_HOUR = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$")


def hour_of(uri: str) -> datetime | None:
    """The capture hour in an object's key (`.../yyyy/mm/dd/hh/file`), or None if it has none."""
    match = _HOUR.search(uri.replace("\\", "/"))
    if match is None:
        return None
    try:
        return datetime(*(int(g) for g in match.groups()))
    except ValueError:  # 2026/13/40/99: digits, not a date
        return None


def in_window(blobs: list[Blob], hours: int, until: datetime) -> tuple[list[Blob], int]:
    """The objects whose capture hour H satisfies until - hours <= H < until, and how many had no
    hour in their key (left out: they cannot be placed in the window)."""
    start = until - timedelta(hours=hours)
    kept, undated = [], 0
    for blob in blobs:
        hour = hour_of(blob.uri)
        if hour is None:
            undated += 1
        elif start <= hour < until:
            kept.append(blob)
    return kept, undated
