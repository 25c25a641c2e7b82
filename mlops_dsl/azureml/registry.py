"""The model registry on Azure: the model versions of an Azure ML registry, over ARM's REST API.

The same functions, names and meanings as mlops_dsl/registry.py (SageMaker), so `mlops models`
treats both clouds alike: `group_name`, `packages`, `package`, `set_status`, `metrics`,
`artifact_sha256`, and `register` (which takes the MLflow model's directory, not a tarball:
Azure ML deploys the directory as it is).

- Where: the registry `naming.registry_name(platform, models.registry)` in the registry
  namespace's subscription, with one model per platform (`naming.model_name`), versions 1, 2, ...
- Approval: Azure ML has no approval status. It is the version's tag `mlops-dsl:approval`
  (PendingManualApproval, Approved, Rejected), with `mlops-dsl:approval-reason|by|at` beside it. A
  version without the tag is PendingManualApproval. Tags are the version's only mutable metadata
  besides its description and stage; the 2024-10-01 API has no PATCH for a registry's model
  version (mfe.json: GET, PUT, DELETE), so a status change GETs the version and PUTs it back whole
  with the tags changed. `systemData.lastModifiedBy` is Azure's own record of who did it.
- Registration (RegistryModelVersions_CreateOrGetStartPendingUpload, then CreateOrUpdate): POST
  `startPendingUpload` for a temporary blob reference, upload every file of the directory to its SAS
  URI (Put Blob) under `model/`, then PUT the version with `modelType: mlflow_model` and `modelUri`
  that directory (naming.MODEL_SUBDIRECTORY), the artifact's SHA-256 (`directory_sha256`), its
  source, metrics and drift baseline (uploaded beside `model/`) as properties, and the approval tag
  PendingManualApproval.
- Errors name the registry, model and version with Azure's code and message; a version the registry
  does not have is NoSuchVersion (exit 2), a registry that does not exist or any other failure an
  OperationError (exit 1). The SAS URI is a credential and never appears in a message.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import MlopsError, OperationError
from ..namespaces import AzureSettings, Namespace
from ..registry import APPROVED, PENDING, REJECTED, SHA256_PROPERTY, SOURCE_PROPERTY
from . import naming
from .arm import MANAGEMENT, Client, Response, error_message

__all__ = ["APPROVAL_TAG", "APPROVED", "PENDING", "REJECTED", "ModelVersion", "NoSuchVersion", "artifact_sha256",
           "client", "directory_sha256", "group_name", "metrics", "package", "packages", "register", "set_status"]

APPROVAL_TAG = "mlops-dsl:approval"
REASON_TAG = "mlops-dsl:approval-reason"
BY_TAG = "mlops-dsl:approval-by"
AT_TAG = "mlops-dsl:approval-at"
METRICS_PROPERTY = "metrics"
BASELINE_PROPERTY = "drift_baseline"  # the blob URL of the training's baseline.json, beside the model directory
IMAGE_PROPERTY = "serving_image"
# What a PUT of a model version may carry (mfe.json ModelVersion); anything else Azure returned is read-only.
WRITABLE = ("description", "tags", "properties", "isAnonymous", "isArchived", "flavors", "jobName", "modelType",
            "modelUri", "stage")
BLOB_API = "2023-11-03"  # x-ms-version of the uploads (Put Blob takes up to 5000 MiB in one request)
_ANY = tuple(range(100, 600))  # every answer comes back here, to be turned into a message naming the version


class NoSuchVersion(MlopsError):
    """The registry's model has no such version: the user named it (exit 2)."""


@dataclass(frozen=True)
class ModelVersion:
    """A registry's model version, with the attribute names of a SageMaker model package."""

    group: str  # the model's name, which a pin records as its `group`
    version: int
    arn: str  # the version's ARM id
    status: str
    created: datetime | None
    artifact: str  # the azureml:// asset id a deployment's `model` names
    model_uri: str
    image: str
    registry: str
    tags: Mapping[str, str] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    metrics_uri: str | None = None  # the metrics are a property, not a document

    @property
    def sha256(self) -> str | None:
        return self.properties.get(SHA256_PROPERTY)


@dataclass(frozen=True)
class _Where:
    """The registry and model of one platform, and their URLs."""

    settings: AzureSettings
    namespace: str  # the registry's namespace
    resource_group: str
    registry: str
    model: str

    @property
    def registry_url(self) -> str:
        return (f"{MANAGEMENT}/subscriptions/{self.settings.subscription_id}/resourceGroups/{self.resource_group}"
                f"/providers/{naming.PROVIDER}/registries/{self.registry}")

    def url(self, suffix: str = "", query: str = "") -> str:
        return f"{self.registry_url}{suffix}?api-version={naming.REGISTRY_API}{query}"

    def version_path(self, version: int) -> str:
        return f"/models/{self.model}/versions/{version}"

    @property
    def described(self) -> str:
        return f"model {self.model} of Azure ML registry {self.registry}"

    def missing(self) -> OperationError:
        return OperationError(f"Azure ML registry {self.registry} does not exist (resource group "
                              f"{self.resource_group}, subscription {self.settings.subscription_id}): apply the "
                              f"stacks of namespace "
                              f"{self.namespace!r}, which owns it, first")


def client() -> Client:
    """The ARM client of the registry commands: HTTPS with the caller's Azure credentials."""
    return Client()


def _where(namespace: Namespace, platform: str) -> _Where:
    settings = namespace.registry_azure
    if settings is None:
        raise MlopsError(f"{namespace.source}: namespace {namespace.name!r} has no Azure registry (models.registry "
                         f"names {namespace.registry!r}, which has no azure settings)")
    return _Where(settings, namespace.registry, naming.registry_resource_group(platform, namespace.registry),
                  naming.registry_name(platform, namespace.registry), naming.model_name(platform))


def _fail(what: str, answer: Response) -> OperationError:
    return OperationError(f"{what}: HTTP {answer.status}: {error_message(answer)}")


def _registry_exists(arm: Client, where: _Where) -> bool:
    answer = arm.call("GET", where.url(), ok=_ANY)
    if answer.status not in (200, 404):
        raise _fail(f"reading Azure ML registry {where.registry}", answer)
    return answer.status == 200


def _created(system: Mapping[str, Any]) -> datetime | None:
    text = str(system.get("createdAt") or "")
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")  # ARM writes up to 7 fraction digits
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _version(where: _Where, body: Mapping[str, Any]) -> ModelVersion:
    props = body.get("properties") or {}
    tags = dict(props.get("tags") or {})
    number = int(body["name"])
    return ModelVersion(
        group=where.model, version=number, arn=str(body.get("id") or ""),
        status=tags.get(APPROVAL_TAG) or PENDING, created=_created(body.get("systemData") or {}),
        artifact=naming.asset_id(where.registry, where.model, number), model_uri=str(props.get("modelUri") or ""),
        image=str((props.get("properties") or {}).get(IMAGE_PROPERTY) or ""), registry=where.registry,
        tags=tags, properties=dict(props.get("properties") or {}), body=body)


def group_name(platform: str, namespace: Namespace) -> str:
    """The platform's model in the registry (what a pin calls its group)."""
    return naming.model_name(platform)


def packages(namespace: Namespace, platform: str) -> list[ModelVersion]:
    """Every version of the platform's model (archived ones too), newest first; none while the model
    has no version yet. Versions whose name is not an integer (not registered by mlops) are left out."""
    where, arm = _where(namespace, platform), client()
    url: str | None = where.url(f"/models/{where.model}/versions", "&listViewType=All")
    found: list[ModelVersion] = []
    while url:
        answer = arm.call("GET", url, ok=_ANY)
        if answer.status == 404:
            if not _registry_exists(arm, where):
                raise where.missing()
            return []  # the registry has no such model yet
        if answer.status != 200 or not isinstance(answer.body, dict):
            raise _fail(f"listing the versions of {where.described}", answer)
        found += [_version(where, item) for item in answer.body.get("value") or []
                  if str(item.get("name", "")).isdigit()]
        url = answer.body.get("nextLink")
    return sorted(found, key=lambda v: v.version, reverse=True)


def package(namespace: Namespace, platform: str, version: int) -> ModelVersion:
    """One version of the platform's model; NoSuchVersion when the registry has none such."""
    where, arm = _where(namespace, platform), client()
    answer = arm.call("GET", where.url(where.version_path(version)), ok=_ANY)
    if answer.status == 404:
        if not _registry_exists(arm, where):
            raise where.missing()
        raise NoSuchVersion(f"{where.described} has no version {version} "
                            f"(`mlops models list -n {namespace.name}` lists them)")
    if answer.status != 200 or not isinstance(answer.body, dict):
        raise _fail(f"describing version {version} of {where.described}", answer)
    return _version(where, answer.body)


def _put(arm: Client, url: str, body: dict[str, Any], what: str, create: bool = False) -> dict[str, Any]:
    """PUT, follow the long-running operation (201 + Azure-AsyncOperation), then read the result
    (the spec's final-state-via original-uri). `create`: only if it does not exist yet (If-None-Match)."""
    answer = arm.call("PUT", url, body, ok=_ANY, headers={"If-None-Match": "*"} if create else None)
    if answer.status not in (200, 201, 202):
        raise _fail(what, answer)
    arm.wait(answer, what)
    final = arm.call("GET", url, ok=_ANY)
    if final.status != 200 or not isinstance(final.body, dict):
        raise _fail(f"{what} (reading it back)", final)
    return final.body


def _writable(body: Mapping[str, Any]) -> dict[str, Any]:
    props = body.get("properties") or {}
    return {"properties": {k: json.loads(json.dumps(props[k])) for k in WRITABLE if k in props}}


def set_status(namespace: Namespace, pkg: ModelVersion, status: str, reason: str | None) -> None:
    """Set the approval tag (and who, when, why), keeping every other field of the version as it is."""
    where, arm = _where(namespace, pkg.group), client()  # the model's name is its platform's
    body = _writable(pkg.body)
    tags = dict(body["properties"].get("tags") or {})
    tags.update({APPROVAL_TAG: status, BY_TAG: _who(), AT_TAG: datetime.now(UTC).isoformat(timespec="seconds")})
    if reason:
        tags[REASON_TAG] = reason[:1024]
    else:
        tags.pop(REASON_TAG, None)  # the reason of an earlier decision is not this one's
    body["properties"]["tags"] = tags
    _put(arm, where.url(where.version_path(pkg.version)), body,
         f"setting version {pkg.version} of {where.described} to {status}")


def _who() -> str:
    try:
        return os.environ.get("MLOPS_APPROVER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def metrics(namespace: Namespace, pkg: ModelVersion) -> dict[str, Any]:
    """The evaluation metrics recorded at registration (the `metrics` property, JSON)."""
    try:
        value = json.loads(pkg.properties.get(METRICS_PROPERTY) or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def artifact_sha256(namespace: Namespace, pkg: ModelVersion) -> str:
    """The digest recorded at registration; a version without one cannot be pinned."""
    if pkg.sha256:
        return pkg.sha256
    raise OperationError(f"version {pkg.version} of model {pkg.group} of Azure ML registry {pkg.registry} has no "
                         f"{SHA256_PROPERTY} property, so a pin could not say which artifact it serves; register "
                         f"the model with `mlops models register`, which records directory_sha256 of its directory")


def _files(directory: Path) -> list[tuple[str, Path]]:
    out = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            out.append((path.relative_to(directory).as_posix(), path))
    return sorted(out)


def directory_sha256(directory: Path) -> str:
    """The SHA-256 of a model directory's content: of its `sha256sum`-style manifest, one line
    `<file sha256>  <relative path>` per file, sorted by path. The same as
    `(cd DIR && find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum`."""
    manifest = hashlib.sha256()
    for relative, path in _files(directory):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        manifest.update(f"{digest.hexdigest()}  {relative}\n".encode())
    return manifest.hexdigest()


def _blob_url(sas_uri: str, relative: str) -> str:
    """The file's URL under the SAS URI's directory, with the SAS query."""
    parts = urllib.parse.urlsplit(sas_uri)
    path = f"{parts.path.rstrip('/')}/{urllib.parse.quote(relative)}"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _ensure_model(arm: Client, where: _Where) -> None:
    """The model container, created the first time (RegistryModelContainers_CreateOrUpdate)."""
    url = where.url(f"/models/{where.model}")
    answer = arm.call("GET", url, ok=_ANY)
    if answer.status == 200:
        return
    if answer.status != 404:
        raise _fail(f"reading {where.described}", answer)
    if not _registry_exists(arm, where):
        raise where.missing()
    _put(arm, url, {"properties": {"description": f"The {where.model} platform's model (mlops-dsl)"}},
         f"creating {where.described}")


def register(namespace: Namespace, platform: str, directory: Path, image: str, source: str,
             evaluation: dict[str, Any] | None, baseline: dict[str, Any] | None = None) -> ModelVersion:
    """Upload the MLflow model directory (and the drift baseline beside it) and register it as the next
    version, PendingManualApproval."""
    where, arm = _where(namespace, platform), client()
    sha256 = directory_sha256(directory)
    version = max((v.version for v in packages(namespace, platform)), default=0) + 1
    what = f"version {version} of {where.described}"
    _ensure_model(arm, where)
    pending = arm.call("POST", where.url(where.version_path(version) + "/startPendingUpload"),
                       {"pendingUploadId": str(uuid.uuid4()), "pendingUploadType": "TemporaryBlobReference"},
                       ok=_ANY)
    if pending.status != 200 or not isinstance(pending.body, dict):
        raise _fail(f"starting the upload of {what}", pending)
    reference = pending.body.get("blobReferenceForConsumption") or {}
    credential = reference.get("credential") or {}
    sas_uri, blob_uri = credential.get("sasUri"), reference.get("blobUri")
    if credential.get("credentialType") != "SAS" or not sas_uri or not blob_uri:
        raise OperationError(f"starting the upload of {what}: Azure answered no SAS URI and blob URI "
                             f"(credentialType {credential.get('credentialType')!r})")
    model_uri = f"{blob_uri.rstrip('/')}/{naming.MODEL_SUBDIRECTORY}"
    uploads = [(f"{naming.MODEL_SUBDIRECTORY}/{relative}", path.read_bytes) for relative, path in _files(directory)]
    if baseline is not None:
        uploads.append(("baseline.json", lambda: json.dumps(baseline, sort_keys=True).encode()))
    for relative, read in uploads:
        data = read()
        answer = arm.transport("PUT", _blob_url(sas_uri, relative), {
            "x-ms-blob-type": "BlockBlob", "x-ms-version": BLOB_API, "Content-Type": "application/octet-stream",
            "Content-Length": str(len(data))}, data)  # the SAS authorizes it: no bearer token to storage
        if answer.status != 201:
            raise _fail(f"uploading {relative} of {what} to {blob_uri.rstrip('/')}/{relative}", answer)
    extra = {BASELINE_PROPERTY: f"{blob_uri.rstrip('/')}/baseline.json"} if baseline is not None else {}
    body = {"properties": {
        "description": f"Registered by mlops models register from {source}"[:512],
        "modelType": "mlflow_model",
        "modelUri": model_uri,
        "isAnonymous": False,
        "properties": {SHA256_PROPERTY: sha256, SOURCE_PROPERTY: source[:256], IMAGE_PROPERTY: image,
                       METRICS_PROPERTY: json.dumps((evaluation or {}).get("metrics", {}), sort_keys=True), **extra},
        "tags": {APPROVAL_TAG: PENDING},
    }}
    # A version is never written twice: one that appeared since the listing (another registration) stays
    # as it is, approved and pinned perhaps. If-None-Match says the same to Azure, if it honours it.
    url = where.url(where.version_path(version))
    if arm.call("GET", url, ok=_ANY).status != 404:
        raise OperationError(f"registering {what}: the version exists already (registered meanwhile?); nothing "
                             f"was changed, run the registration again")
    return _version(where, _put(arm, url, body, f"registering {what}", create=True))
