"""The model registry on AWS: SageMaker model package groups, read and changed through boto3.

A platform's registry is the group `<platform>-<registry namespace>` in the account of the
namespace that owns the registry (namespaces.yaml `models.registry`). Every namespace serving that
platform reads it; only the `mlops models` commands and the plan's approval check call AWS, never
synth. Credentials are the caller's (environment, profile or role); a namespace with an
`aws.endpoint` talks to the local emulator with its dummy credentials.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import pins
from .errors import MlopsError, OperationError
from .namespaces import AwsSettings, Namespace

PENDING, APPROVED, REJECTED = "PendingManualApproval", "Approved", "Rejected"
SHA256_PROPERTY = "artifact_sha256"
SOURCE_PROPERTY = "source"


class NoSuchVersion(MlopsError):
    """The group has no package of that version: the user named it (exit 2)."""


@dataclass(frozen=True)
class Package:
    group: str
    version: int
    arn: str
    status: str
    created: datetime | None
    artifact: str
    image: str
    metrics_uri: str | None = None
    baseline_uri: str | None = None
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str | None:
        return self.properties.get(SHA256_PROPERTY)

    @property
    def image_tag(self) -> str:
        return self.image.rsplit(":", 1)[-1] if ":" in self.image.rsplit("/", 1)[-1] else ""


def group_name(platform: str, namespace: Namespace) -> str:
    return pins.group_name(platform, namespace.registry)


def models_bucket(platform: str, namespace: Namespace) -> str:
    """The registry namespace's models zone (DataInfrastructure's bucket naming)."""
    from .aws.naming import zone_bucket

    return zone_bucket(platform, namespace.registry, "models", _registry(namespace).account_id)


def _registry(namespace: Namespace) -> AwsSettings:
    if namespace.registry_aws is None:
        raise MlopsError(f"{namespace.source}: namespace {namespace.name!r} has no AWS registry "
                         f"(models.registry names a namespace without aws settings)")
    return namespace.registry_aws


def client(aws: AwsSettings, service: str) -> Any:
    """A boto3 client for the account and region (the emulator's, with its dummy credentials)."""
    try:
        import boto3
    except ImportError:
        raise OperationError("the model registry commands need boto3: pip install -e '.[aws]' "
                             "(make setup installs it)") from None
    kwargs: dict[str, Any] = {"region_name": aws.region}
    if aws.endpoint:
        kwargs["endpoint_url"] = aws.endpoint
        kwargs["aws_access_key_id"] = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
        kwargs["aws_secret_access_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client(service, **kwargs)


def aws_call(what: str, func: Any, **kwargs: Any) -> Any:
    """An AWS call whose failure is an operational error naming what was attempted (exit 1)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return func(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise OperationError(f"{what}: {error.get('Code', 'error')}: {error.get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise OperationError(f"{what}: {exc}") from None


def _package(description: dict[str, Any]) -> Package:
    containers = description.get("InferenceSpecification", {}).get("Containers") or [{}]
    metrics = description.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    baseline = description.get("DriftCheckBaselines", {}).get("ModelDataQuality", {}).get("Statistics", {})
    return Package(
        group=description.get("ModelPackageGroupName", ""),
        version=int(description.get("ModelPackageVersion", 0)),
        arn=description["ModelPackageArn"],
        status=description.get("ModelApprovalStatus", ""),
        created=description.get("CreationTime"),
        artifact=containers[0].get("ModelDataUrl", ""),
        image=containers[0].get("Image", ""),
        metrics_uri=metrics.get("S3Uri"),
        baseline_uri=baseline.get("S3Uri"),
        properties=dict(description.get("CustomerMetadataProperties") or {}),
    )


def package_arn(platform: str, namespace: Namespace, version: int) -> str:
    from .aws.provider import partition

    aws = _registry(namespace)
    return pins.package_arn(partition(aws.region), aws.region, aws.account_id, group_name(platform, namespace), version)


def package(namespace: Namespace, platform: str, version: int) -> Package:
    """One version of the platform's group; NoSuchVersion when the group has none such."""
    from botocore.exceptions import BotoCoreError, ClientError

    sagemaker = client(_registry(namespace), "sagemaker")
    arn = package_arn(platform, namespace, version)
    try:
        return _package(sagemaker.describe_model_package(ModelPackageName=arn))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        message = str(error.get("Message", ""))
        if error.get("Code") in ("ValidationException", "ResourceNotFound") and (
                "not found" in message.lower() or "does not exist" in message.lower()):
            raise NoSuchVersion(f"{group_name(platform, namespace)} has no model package version {version} "
                                f"(`mlops models list -n {namespace.name}` lists them)") from None
        raise OperationError(f"describing {arn}: {error.get('Code')}: {message}") from None
    except BotoCoreError as exc:  # no credentials, no endpoint: said, not a traceback
        raise OperationError(f"describing {arn}: {exc}") from None


def packages(namespace: Namespace, platform: str) -> list[Package]:
    """Every version of the platform's group, newest first."""
    sagemaker = client(_registry(namespace), "sagemaker")
    group = group_name(platform, namespace)
    summaries: list[dict[str, Any]] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "SortBy": "CreationTime",
                                  "SortOrder": "Descending", "MaxResults": 100}
        if token:
            kwargs["NextToken"] = token
        page = aws_call(f"listing the versions of {group}", sagemaker.list_model_packages, **kwargs)
        summaries += page.get("ModelPackageSummaryList", [])
        token = page.get("NextToken")
        if not token:
            break
    return [_package(aws_call(f"describing {s['ModelPackageArn']}", sagemaker.describe_model_package,
                           ModelPackageName=s["ModelPackageArn"])) for s in summaries]


def set_status(namespace: Namespace, pkg: Package, status: str, reason: str | None) -> None:
    sagemaker = client(_registry(namespace), "sagemaker")
    kwargs: dict[str, Any] = {"ModelPackageArn": pkg.arn, "ModelApprovalStatus": status}
    if reason:
        kwargs["ApprovalDescription"] = reason[:1024]
    aws_call(f"setting {pkg.arn} to {status}", sagemaker.update_model_package, **kwargs)


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise OperationError(f"{uri}: not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def read_json(namespace: Namespace, uri: str) -> dict[str, Any] | None:
    """A small JSON document of the registry (an evaluation report); None when it cannot be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = _split_s3(uri)
    try:
        body = client(_registry(namespace), "s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        document = json.loads(body)
    except (ClientError, BotoCoreError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def artifact_sha256(namespace: Namespace, pkg: Package) -> str:
    """The artifact's digest: recorded at registration, else read from S3 (a pipeline's packages)."""
    if pkg.sha256:
        return pkg.sha256
    bucket, key = _split_s3(pkg.artifact)
    body = aws_call(f"reading {pkg.artifact}", client(_registry(namespace), "s3").get_object, Bucket=bucket,
                 Key=key)["Body"]
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def register(namespace: Namespace, platform: str, archive: Path, sha256: str, image: str, source: str,
             evaluation: dict[str, Any] | None, baseline: dict[str, Any] | None) -> Package:
    """Upload the archive (and its evaluation and drift baseline) and register it, pending approval.

    The objects go under `packages/<sha256>/` of the registry's models zone: a content address,
    so registering the same artifact twice uploads the same keys.
    """
    aws = _registry(namespace)
    s3, sagemaker = client(aws, "s3"), client(aws, "sagemaker")
    bucket, prefix = models_bucket(platform, namespace), f"packages/{sha256}"
    with archive.open("rb") as handle:
        aws_call(f"uploading {archive} to s3://{bucket}/{prefix}/model.tar.gz", s3.put_object, Bucket=bucket,
              Key=f"{prefix}/model.tar.gz", Body=handle, ServerSideEncryption="aws:kms")
    request: dict[str, Any] = {
        "ModelPackageGroupName": group_name(platform, namespace),
        "ModelPackageDescription": f"Registered by mlops models register from {source}"[:1024],
        "ModelApprovalStatus": PENDING,
        "InferenceSpecification": {
            "Containers": [{"Image": image, "ModelDataUrl": f"s3://{bucket}/{prefix}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json", "text/csv"],
        },
        "CustomerMetadataProperties": {SHA256_PROPERTY: sha256, SOURCE_PROPERTY: source[:256]},
    }
    for name, document, section in (("evaluation.json", evaluation, "ModelMetrics"),
                                     ("baseline.json", baseline, "DriftCheckBaselines")):
        if document is None:
            continue
        key = f"{prefix}/{name}"
        aws_call(f"uploading s3://{bucket}/{key}", s3.put_object, Bucket=bucket, Key=key,
              Body=json.dumps(document).encode(), ContentType="application/json", ServerSideEncryption="aws:kms")
        source_uri = {"ContentType": "application/json", "S3Uri": f"s3://{bucket}/{key}"}
        request[section] = ({"ModelQuality": {"Statistics": source_uri}} if section == "ModelMetrics"
                            else {"ModelDataQuality": {"Statistics": source_uri}})
    created = aws_call(f"registering in {request['ModelPackageGroupName']}", sagemaker.create_model_package, **request)
    return _package(aws_call("describing the new package", sagemaker.describe_model_package,
                          ModelPackageName=created["ModelPackageArn"]))
