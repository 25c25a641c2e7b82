"""`mlops models`: the registry's versions, and the pins that say which one each variant serves.

    mlops models list -n NS [--platform P]...
    mlops models register -n NS --model URI [--platform P]
    mlops models approve|reject -n NS --version N [--platform P] [--reason TEXT] [--yes]
    mlops models promote -n NS --variant V --version N [--platform P]

Exit codes as everywhere: 0 done, 1 refused or failed (a version that is not Approved, a
predecessor that does not serve it, an AWS or Azure error), 2 a user's error (no such variant or version).

A platform's cloud picks its registry: SageMaker model package groups (mlops_dsl/registry.py) or an
Azure ML registry (mlops_dsl/azureml/registry.py). Both offer the functions of `ModelRegistry`, so
every command and check below is the same on both clouds.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import click

from .cli_common import blueprint_option, namespaces_option, user_errors
from .errors import MlopsError
from .registry import APPROVED, REJECTED  # plain names; boto3 loads only when a command calls AWS

if TYPE_CHECKING:  # hints only; the commands import what they use when they run
    from .namespaces import Namespace
    from .platform import Platform


class ModelRegistry(Protocol):
    """What the commands need of a cloud's registry. A version (`pkg`) has `group`, `version`, `arn`,
    `status`, `created`, `artifact` (what a pin records), `sha256` and `properties`."""

    def group_name(self, platform: str, namespace: Namespace) -> str: ...
    def packages(self, namespace: Namespace, platform: str) -> list[Any]: ...
    def package(self, namespace: Namespace, platform: str, version: int) -> Any: ...
    def set_status(self, namespace: Namespace, pkg: Any, status: str, reason: str | None) -> None: ...
    def metrics(self, namespace: Namespace, pkg: Any) -> dict[str, Any]: ...
    def artifact_sha256(self, namespace: Namespace, pkg: Any) -> str: ...


class _Aws:
    """mlops_dsl.registry as a ModelRegistry (boto3 loads only when a command calls AWS)."""

    @staticmethod
    def group_name(platform: str, namespace: Namespace) -> str:
        from . import registry
        return registry.group_name(platform, namespace)

    @staticmethod
    def packages(namespace: Namespace, platform: str) -> list[Any]:
        from . import registry
        return list(registry.packages(namespace, platform))

    @staticmethod
    def package(namespace: Namespace, platform: str, version: int) -> Any:
        from . import registry
        return registry.package(namespace, platform, version)

    @staticmethod
    def set_status(namespace: Namespace, pkg: Any, status: str, reason: str | None) -> None:
        from . import registry
        registry.set_status(namespace, pkg, status, reason)

    @staticmethod
    def metrics(namespace: Namespace, pkg: Any) -> dict[str, Any]:
        """The package's evaluation report in S3, its `metrics`."""
        from . import registry
        return (registry.read_json(namespace, pkg.metrics_uri) or {}).get("metrics", {}) if pkg.metrics_uri else {}

    @staticmethod
    def artifact_sha256(namespace: Namespace, pkg: Any) -> str:
        from . import registry
        return registry.artifact_sha256(namespace, pkg)


def registry_of(cloud: str) -> ModelRegistry:
    """The model registry of a platform on `cloud`."""
    if cloud == "azure":
        from .azureml import registry as azure

        return azure
    return _Aws()


@dataclass
class Target:
    """The namespace and platform a command acts on, with every namespace (for the pins of others)."""

    namespace: Namespace
    platform: Platform
    spaces: Mapping[str, Namespace]
    namespaces_file: Path

    @property
    def serving(self) -> Any:
        from .templates.serving import ModelServing

        return next((t for t in self.platform.templates if isinstance(t, ModelServing)), None)

    def pins_file(self, namespace: str | None = None) -> Path:
        from .pins import path_for

        return path_for(self.namespaces_file, namespace or self.namespace.name)


def _targets(wanted: str, platforms: tuple[str, ...], blueprints: tuple[Path, ...],
             namespaces_file: Path, every: bool = False) -> list[Target]:
    """The platforms named with --platform; without it, the namespace's one platform (or, with
    `every`, all of them)."""
    from . import blueprints as bp
    from . import namespaces

    spaces = namespaces.load(namespaces_file)
    if wanted not in spaces:
        raise MlopsError(f"{namespaces_file}: no namespace {wanted!r} (namespaces: {', '.join(spaces)})")
    namespace = spaces[wanted]
    # The platforms this namespace renders on a cloud it has settings for (an AWS platform needs `aws`,
    # an Azure platform `azure`).
    loaded = [p for p in bp.load(list(blueprints) or None)
              if p.cloud in ("aws", "azure") and getattr(namespace, p.cloud) is not None and namespace.renders(p.name)]
    names = [p.name for p in loaded]
    if not platforms:
        if every and loaded:
            return [Target(namespace, p, spaces, namespaces_file) for p in loaded]
        if len(loaded) != 1:
            raise MlopsError(f"namespace {wanted!r} serves {len(loaded)} platforms ({', '.join(names) or 'none'}): "
                             f"name one with --platform")
        return [Target(namespace, loaded[0], spaces, namespaces_file)]
    unknown = [p for p in platforms if p not in names]
    if unknown:
        raise MlopsError(f"--platform {unknown[0]}: no AWS platform nor Azure platform of that name in namespace "
                         f"{wanted!r} (platforms: {', '.join(names)})")
    return [Target(namespace, p, spaces, namespaces_file) for p in loaded if p.name in platforms]


def _one(targets: list[Target]) -> Target:
    if len(targets) != 1:
        raise MlopsError("this command acts on one platform: give --platform once")
    return targets[0]


def _served_by(target: Target) -> dict[int, list[str]]:
    """version -> `namespace:variant` for every namespace serving from the same registry."""
    out: dict[int, list[str]] = {}
    for name, ns in target.spaces.items():
        if ns.registry != target.namespace.registry:
            continue
        for variant, pin in ns.pins.get(target.platform.name, {}).items():
            out.setdefault(pin.version, []).append(f"{name}:{variant}")
    return out


platform_option = click.option("--platform", "platforms", multiple=True,
                               help="The platform (repeatable for list, which lists every platform without "
                                    "it); may be left out when the namespace holds one platform.")
namespace_option = click.option("-n", "--namespace", "wanted", required=True, help="The namespace.")


@click.group()
def models() -> None:
    """The model registry and the pinned versions each namespace serves (README: the model lifecycle)."""


@models.command("list")
@namespace_option
@platform_option
@blueprint_option
@namespaces_option
@user_errors
def list_versions(wanted: str, platforms: tuple[str, ...], blueprints: tuple[Path, ...],
                  namespaces_file: Path) -> None:
    """Every version with its approval status, creation time, metrics, and who serves it."""
    for target in _targets(wanted, platforms, blueprints, namespaces_file, every=True):
        ns, platform = target.namespace, target.platform.name
        registry = registry_of(target.platform.cloud)
        group = registry.group_name(platform, ns)
        found = registry.packages(ns, platform)
        served = _served_by(target)
        click.echo(f"{platform}: {group} in namespace {ns.registry} ({len(found)} versions)")
        if not found:
            click.echo("  no version registered yet: run the training pipeline, or `mlops models register`")
            continue
        gate = _gate_metric(target)
        click.echo(f"  {'version':>7}  {'status':<21}  {'created (UTC)':<16}  {gate:>8}  served by")
        for pkg in found:
            value = registry.metrics(ns, pkg).get(gate)
            shown = f"{value:.4f}" if isinstance(value, (int, float)) else "-"
            created = pkg.created.strftime("%Y-%m-%d %H:%M") if pkg.created else "-"
            click.echo(f"  {pkg.version:>7}  {pkg.status:<21}  {created:<16}  {shown:>8}  "
                       f"{', '.join(served.get(pkg.version, [])) or '-'}")


def _gate_metric(target: Target) -> str:
    from .templates.training import TrainingInfrastructure

    training = next((t for t in target.platform.templates if isinstance(t, TrainingInfrastructure)), None)
    return training.gate.metric if training else "roc_auc"


def _serving_image(target: Target, namespace: Namespace) -> tuple[str, str]:
    """The serving image's current tag and its URI in `namespace`'s repository (ECR, or ACR on Azure)."""
    from .aws.repositories import repository_name
    from .aws.training import registry as ecr_registry
    from .images import content_tag

    serving = target.serving
    if serving is None:
        raise MlopsError(f"platform {target.platform.name!r} declares no ModelServing: nothing serves a model")
    tag = content_tag(Path(serving.image.context), serving.image.target)
    if target.platform.cloud == "azure":  # the repository TrainingInfrastructure's Azure rendering declares
        from .azure.common import registry_name as acr_name

        platform = target.platform.name
        return tag, (f"{acr_name(platform, namespace.name)}.azurecr.io/{platform}-{namespace.name}/"
                     f"{serving.image.repository}:{tag}")
    aws = namespace.aws
    assert aws is not None
    repo = repository_name(target.platform.name, namespace.name, serving.image.repository)
    return tag, f"{ecr_registry(aws.account_id, aws.region)}/{repo}:{tag}"


@models.command()
@namespace_option
@click.option("--model", "model_uri", required=True,
              help="An MLflow model: models:/customer-churn@candidate, models:/NAME/VERSION, or a directory.")
@platform_option
@blueprint_option
@namespaces_option
@user_errors
def register(wanted: str, model_uri: str, platforms: tuple[str, ...], blueprints: tuple[Path, ...],
             namespaces_file: Path) -> None:
    """Package an MLflow model as model.tar.gz and register it PendingManualApproval, with its metrics
    and drift baseline, as the pipeline's Register step does (the quality gate first). On Azure the
    model's directory is uploaded as it is, and the version's approval tag is PendingManualApproval."""
    from . import packaging, registry
    from .templates.training import TrainingInfrastructure

    target = _one(_targets(wanted, platforms, blueprints, namespaces_file))
    ns = target.namespace
    registry_ns = target.spaces[ns.registry]
    training = next((t for t in target.platform.templates if isinstance(t, TrainingInfrastructure)), None)
    with tempfile.TemporaryDirectory() as tmp:
        source = packaging.resolve(model_uri, Path(tmp))
        metrics = (source.evaluation or {}).get("metrics", {})
        if training is not None and isinstance(metrics.get(training.gate.metric), (int, float)) \
                and metrics[training.gate.metric] < training.gate.threshold:
            raise click.ClickException(
                f"refused: {model_uri} has {training.gate.metric} {metrics[training.gate.metric]:.4f}, below the "
                f"quality gate of {training.gate.threshold}; the pipeline would not register it either")
        _, image = _serving_image(target, registry_ns)
        if target.platform.cloud == "azure":
            from .azureml import registry as azure

            pkg = azure.register(ns, target.platform.name, source.directory, image, model_uri, source.evaluation,
                                 source.baseline)
            click.echo(f"uploaded {model_uri} (an MLflow model directory): sha256 {pkg.sha256}")
        else:
            archive = Path(tmp) / "model.tar.gz"
            sha256 = packaging.archive(source.directory, archive)
            click.echo(f"packaged {model_uri}: {archive.stat().st_size:,} bytes, sha256 {sha256}")
            pkg = registry.register(ns, target.platform.name, archive, sha256, image, model_uri, source.evaluation,
                                    source.baseline)
    click.echo(f"registered {pkg.group} version {pkg.version} ({pkg.status}): {pkg.arn}")
    click.echo(f"next: mlops models approve -n {wanted} --version {pkg.version}")


def _set_status(wanted: str, version: int, platforms: tuple[str, ...], reason: str | None, yes: bool,
                blueprints: tuple[Path, ...], namespaces_file: Path, status: str) -> None:
    target = _one(_targets(wanted, platforms, blueprints, namespaces_file))
    registry = registry_of(target.platform.cloud)
    pkg = registry.package(target.namespace, target.platform.name, version)
    if pkg.status == status:
        click.echo(f"{pkg.group} version {version} already is {status}")
        return
    if sys.stdin.isatty() and not yes:
        click.confirm(f"{pkg.group} version {version} is {pkg.status}; set it to {status}?", abort=True)
    registry.set_status(target.namespace, pkg, status, reason)
    click.echo(f"{pkg.group} version {version}: {pkg.status} -> {status}")
    served = _served_by(target).get(version, [])
    if status != APPROVED and served:
        click.echo(f"version {version} is pinned in {', '.join(served)}: `mlops plan` there now fails until "
                   f"another version is promoted")


status_options = [
    namespace_option,
    click.option("--version", required=True, type=click.IntRange(1), help="The package version."),
    platform_option,
    click.option("--reason", help="Why (recorded as the package's approval description; on Azure its "
                                  "mlops-dsl:approval-reason tag)."),
    click.option("--yes", is_flag=True, help="Do not ask for confirmation at a terminal."),
    blueprint_option,
    namespaces_option,
]


def _with(options: list[Any]) -> Any:
    def apply(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func
    return apply


def _status_command(name: str, status: str, help_text: str) -> None:
    """`mlops models approve` and `reject`: the same command, setting another status."""

    @models.command(name, help=help_text)
    @_with(status_options)
    @user_errors
    def command(wanted: str, version: int, platforms: tuple[str, ...], reason: str | None, yes: bool,
                blueprints: tuple[Path, ...], namespaces_file: Path) -> None:
        _set_status(wanted, version, platforms, reason, yes, blueprints, namespaces_file, status)


_status_command("approve", APPROVED, "Approve a version, so it may be promoted (asks at a terminal).")
_status_command("reject", REJECTED, "Reject a version; names the namespaces and variants that still pin it.")


@models.command()
@namespace_option
@click.option("--variant", required=True, help="The ModelServing variant (or the shadow variant).")
@click.option("--version", required=True, type=click.IntRange(1), help="The package version to serve.")
@platform_option
@blueprint_option
@namespaces_option
@user_errors
def promote(wanted: str, variant: str, version: int, platforms: tuple[str, ...], blueprints: tuple[Path, ...],
            namespaces_file: Path) -> None:
    """Pin VERSION for VARIANT in NAMESPACE: one line of models/<namespace>.yaml, to review and plan.

    Refused for a version that is not Approved, and in a namespace with a predecessor (models.promoted_from)
    for a version the predecessor does not serve.
    """
    from . import pins

    target = _one(_targets(wanted, platforms, blueprints, namespaces_file))
    ns, platform = target.namespace, target.platform.name
    registry = registry_of(target.platform.cloud)
    serving = target.serving
    declared = [v.name for v in serving.variants] + ([serving.shadow.name] if serving and serving.shadow else []) \
        if serving else []
    if variant not in declared:
        raise MlopsError(f"--variant {variant}: ModelServing of {platform!r} has no such variant "
                         f"(variants: {', '.join(declared) or 'none'})")
    pkg = registry.package(ns, platform, version)
    if pkg.status != APPROVED:
        raise click.ClickException(f"refused: {pkg.group} version {version} is {pkg.status}, not Approved "
                                   f"(`mlops models approve -n {wanted} --version {version}` after review)")
    if ns.promoted_from is not None:
        before = target.spaces[ns.promoted_from].pins.get(platform, {})
        if not any(p.version == version and p.group == pkg.group for p in before.values()):
            served = ", ".join(f"{v}: {p.version}" for v, p in before.items()) or "nothing"
            raise click.ClickException(f"refused: {ns.promoted_from} does not serve version {version} "
                                       f"({ns.promoted_from} serves {served}); a version reaches {wanted} only "
                                       f"after {ns.promoted_from}")
    tag, _ = _serving_image(target, ns)
    pin = pins.Pin(version=version, group=pkg.group, image=tag, sha256=registry.artifact_sha256(ns, pkg),
                   artifact=pkg.artifact)
    path = target.pins_file()
    old = ns.pins.get(platform, {}).get(variant)
    if old == pin:
        click.echo(f"{path}: {platform}.{variant} already serves version {version} with image {tag}")
        return
    pins.write(path, ns.name, platform, variant, pin)
    was = f"version {old.version} (image {old.image})" if old else "nothing"
    click.echo(f"{path}: {platform}.{variant}: {was} -> version {version} (image {tag})")
    click.echo(f"next: review the diff, then `mlops plan -n {wanted}`")


def check_pins(namespace: Namespace, platforms: list[str], cloud: str = "aws") -> list[str]:
    """Problems of the pins a plan would deploy: a version no longer Approved, or no longer the
    package the pin says (artifact or digest). Called by `mlops plan` before any terraform runs,
    for the platforms of one cloud."""
    from .pins import path_for

    registry = registry_of(cloud)
    problems = []
    source = path_for(Path(namespace.source), namespace.name)
    for platform in platforms:
        for variant, pin in namespace.pins.get(platform, {}).items():
            where = f"{source}: {platform}.{variant} pins {pin.group} version {pin.version}"
            try:
                pkg = registry.package(namespace, platform, pin.version)
            except MlopsError as exc:
                problems.append(f"{where}: {exc}")
                continue
            if pkg.status != APPROVED:
                problems.append(f"{where}, which is {pkg.status}: promote an Approved version")
            elif pkg.artifact != pin.artifact or (pkg.sha256 and pkg.sha256 != pin.sha256):
                problems.append(f"{where}, whose artifact is {pkg.artifact} (sha256 {pkg.sha256}), not the pinned "
                                f"{pin.artifact} (sha256 {pin.sha256}): promote it again")
    return problems
