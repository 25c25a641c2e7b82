"""An s3:// prefix copied to a local directory, keys below the prefix kept as paths: what a
SageMaker Processing input does, for the commands run on this machine against S3 or the emulator."""

from __future__ import annotations

from pathlib import Path

from .data import DataError


def download_prefix(uri: str, destination: Path, endpoint_url: str | None, region: str | None) -> Path:
    """Every object under `uri` into `destination`; DataError when there is none or S3 refuses."""
    import boto3

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    s3 = boto3.session.Session(region_name=region).client("s3", endpoint_url=endpoint_url)
    count = 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix):].lstrip("/")
                if not relative or relative.endswith("/"):
                    continue
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(target))
                count += 1
    except Exception as exc:  # botocore's ClientError, EndpointConnectionError, NoCredentialsError
        raise DataError([f"{uri}: cannot be read ({exc})"]) from None
    if not count:
        raise DataError([f"{uri}: no object under this prefix"])
    return destination
