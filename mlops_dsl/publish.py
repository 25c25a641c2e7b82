"""Building and pushing the platform images (`mlops images`), with Docker where it exists.

The tags are the content hashes the Terraform already references, so what is pushed is exactly
what the stacks deploy. Without Docker nothing is pushed, and the exact commands are shown.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import MlopsError, OperationError
from .images import content_tag
from .namespaces import Namespace
from .platform import Platform


@dataclass(frozen=True)
class ImageBuild:
    context: Path
    registry: str
    uri: str  # registry/repository:tag
    login: str  # the shell command that logs Docker in to the registry
    target: str | None = None  # the Dockerfile stage, when the image names one


def _registry(platform: Platform, namespace: Namespace) -> tuple[str, str]:
    """The registry host of a platform in a namespace, and the command that logs Docker in to it."""
    settings = getattr(namespace, platform.cloud)
    if settings is None:
        raise MlopsError(f"{namespace.source}: namespaces.{namespace.name}: has no '{platform.cloud}' section, "
                         f"which platform '{platform.name}' needs")
    if platform.cloud == "aws":
        from .aws.training import registry

        host = registry(settings.account_id, settings.region)
        return host, (f"aws ecr get-login-password --region {settings.region} | "
                      f"docker login --username AWS --password-stdin {host}")
    from .azure.common import registry_name

    name = registry_name(platform.name, namespace.name)
    return f"{name}.azurecr.io", f"az acr login --name {name} --subscription {settings.subscription_id}"


def plan(platforms: list[Platform], namespace: Namespace, root: Path) -> list[ImageBuild]:
    builds = []
    for platform in platforms:
        host, login = _registry(platform, namespace)
        for _, image in sorted(platform.images().items()):
            tag = content_tag(root / image.context, image.target)
            # Both clouds' repositories are <platform>-<namespace>/<image>.
            uri = f"{host}/{platform.name}-{namespace.name}/{image.repository}:{tag}"
            builds.append(ImageBuild(root / image.context, host, uri, login, image.target))
    return builds


def commands(builds: list[ImageBuild]) -> list[str]:
    """Shell commands that log in once per registry, then build and push each image."""
    lines = list(dict.fromkeys(b.login for b in builds))
    for b in builds:
        stage = f" --target {b.target}" if b.target else ""
        lines.append(f"docker build{stage} --tag {b.uri} {b.context}")
        lines.append(f"docker push {b.uri}")
    return lines


def run(builds: list[ImageBuild], echo: Callable[[str], None]) -> None:
    """Build and push with Docker; raises MlopsError naming the failed step."""
    lines = commands(builds)
    for i, line in enumerate(lines, 1):
        echo(f"[{i}/{len(lines)}] {line}")
        # A shell for the login pipe; every word in the line is ours (validated names, hex tags).
        result = subprocess.run(line, shell=True, check=False)
        if result.returncode != 0:
            raise OperationError(f"`{line}` failed with exit code {result.returncode}; nothing after it was run")


def docker_problem() -> str | None:
    """Why images cannot be built here, or None when a Docker engine answers."""
    if shutil.which("docker") is None:
        return "there is no docker command on PATH"
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                              timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer within 20 s"
    if info.returncode != 0:
        return "the docker command is installed but no Docker engine answers (docker info failed)"
    return None
