"""`mlops featuresets`: each Azure feature set's specification, from terraform/ to the offline zone.

The features stack creates one feature set version per group, and Azure ML refuses the version
until its specification is in storage (mlops_dsl/azure/featureset_spec.py). So between the data
stack (the lake) and the features stack, the specifications are uploaded, exactly as committed in
terraform/ and reviewed there: `<tree>/<ns>/<platform>/<features stack>/featuresets/<group>/
FeatureSetSpec.yaml` to `featuresets/<group>/spec/FeatureSetSpec.yaml` of the offline container.

Once a version exists it reads its specification from that path, so a specification already there
is never replaced: the same text is reported unchanged, a different text is refused, naming the
blob, since changing what a version reads under it would change the features it has served. A new
specification needs a new feature set version.

Credentials: `AZURE_STORAGE_CONNECTION_STRING` when set (Azurite, a developer's account), else
`DefaultAzureCredential` against the lake's Blob endpoint, which needs Storage Blob Data
Contributor on the offline container and, the lake being private, a runner on its peered network.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import MlopsError, OperationError
from ..namespaces import Namespace
from ..platform import Platform
from ..templates.features import FeatureStore

CONNECTION_ENV = "AZURE_STORAGE_CONNECTION_STRING"


@dataclass(frozen=True)
class Upload:
    source: Path  # the committed file
    account: str
    container: str
    blob: str

    @property
    def url(self) -> str:
        return f"https://{self.account}.blob.core.windows.net/{self.container}/{self.blob}"


def plan(platforms: list[Platform], namespace: Namespace, tree: Path) -> list[Upload]:
    """The uploads for every feature group of the namespace's Azure platforms; an error naming a
    specification missing from the tree (synth was not run)."""
    from ..azure.featureset_spec import blob_name, lake_account, tree_path

    uploads, missing = [], []
    for platform in platforms:
        if platform.cloud != "azure" or not namespace.renders(platform.name):
            continue
        for store in (t for t in platform.templates if isinstance(t, FeatureStore)):
            for g in store.groups:
                source = tree / namespace.name / platform.name / store.name / tree_path(g.name)
                if not source.is_file():
                    missing.append(str(source))
                uploads.append(Upload(source, lake_account(platform.name, namespace.name), store.offline_zone,
                                      blob_name(g.name)))
    if missing:
        raise MlopsError([f"{m}: no such file; run `mlops synth` first" for m in missing])
    return uploads


def _service(account: str):  # -> BlobServiceClient
    from azure.storage.blob import BlobServiceClient

    connection = os.environ.get(CONNECTION_ENV)
    if connection:
        return BlobServiceClient.from_connection_string(connection)
    from azure.identity import DefaultAzureCredential

    return BlobServiceClient(f"https://{account}.blob.core.windows.net", credential=DefaultAzureCredential())


def run(uploads: list[Upload], echo: Callable[[str], object]) -> tuple[int, list[str]]:
    """Upload each specification that is not there yet. Returns how many were written, and the
    refusals and failures (each naming its blob); the others go on."""
    try:
        from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
    except ImportError:
        raise OperationError("azure-storage-blob is not installed: pip install 'mlops-dsl[ml]'") from None
    written, problems = 0, []
    services: dict[str, object] = {}
    for u in uploads:
        body = u.source.read_bytes()
        try:
            if u.account not in services:
                services[u.account] = _service(u.account)
            service = services[u.account]
            blob = service.get_blob_client(u.container, u.blob)  # type: ignore[attr-defined]
            try:
                blob.upload_blob(body, overwrite=False)
            except ResourceExistsError:
                try:
                    there = blob.download_blob().readall()
                except ResourceNotFoundError:  # deleted between the two calls: the next run writes it
                    problems.append(f"{u.url}: appeared and went while uploading; run again")
                    continue
                if there == body:
                    echo(f"{u.url}: unchanged")
                else:
                    problems.append(f"{u.url}: holds a different specification, which the feature set version "
                                    f"created from it reads; not replaced (a new specification needs a new "
                                    f"version). Compare it with {u.source}")
                continue
        except AzureError as exc:
            problems.append(f"{u.url}: not uploaded ({type(exc).__name__}: {str(exc).splitlines()[0]})")
            continue
        written += 1
        echo(f"{u.source} -> {u.url}")
    return written, problems
