"""`mlops release -n NS`: the model lifecycle as one command, with a report of every step.

    mlops release -n NS [--platform P] [--variant V] [--skip-training [--version N]] [--skip-local-test]
                  [--skip-deploy] [--data PATH] [--config FILE] [--latency-margin X] [--out DIR]

Steps (release_steps.py): train, register, local-test, approve, promote, plan, apply. The first
namespace of a promotion chain (no models.promoted_from) trains; a later one needs --skip-training
and promotes the version its predecessor pins for the variant. The report goes to
`<workdir>/releases/<ns>-<UTC timestamp>.json` (workdir: .mlops, or MLOPS_WORKDIR), rewritten after
every step. Exit codes: 0 released, 1 a step failed or was refused, 2 a user's error, 3 deferred (a
person must approve the version or the plan; the last line says what to run).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli_common import blueprint_option, namespaces_option, user_errors
from .errors import MlopsError

DEFAULT_OUT = Path("terraform")


@click.command("release")
@click.option("-n", "--namespace", "wanted", required=True, help="The namespace to release to.")
@click.option("--platform", "platforms", multiple=True,
              help="The platform; may be left out when the namespace holds one platform.")
@click.option("--variant", default=None, help="The variant to promote (default: the first declared variant).")
@click.option("--skip-training", is_flag=True,
              help="Train and register nothing: release --version N (first namespace) or the predecessor's pin.")
@click.option("--version", type=click.IntRange(1), default=None,
              help="With --skip-training in the first namespace: the registered version to release.")
@click.option("--skip-local-test", is_flag=True, help="Do not serve and test the model on 127.0.0.1.")
@click.option("--skip-deploy", is_flag=True, help="Promote (write the pin), but do not plan or apply.")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Training data (as `python -m training train --data`); default: the generated sample.")
@click.option("--config", "config", type=click.Path(path_type=Path), default=None,
              help="The training configuration (default: training/config.yaml).")
@click.option("--latency-margin", type=click.FloatRange(0.1, 100.0), default=None,
              help="The local test's p99 limit is the blueprint's p99 alarm times this (default 1.5).")
@click.option("--parallelism", type=click.IntRange(1, 64), default=4, show_default=True,
              help="How many independent stacks plan and apply at the same time.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_OUT, show_default=True,
              help="Where the stacks are rendered.")
@blueprint_option
@namespaces_option
@user_errors
def release(wanted: str, platforms: tuple[str, ...], variant: str | None, skip_training: bool, version: int | None,
            skip_local_test: bool, skip_deploy: bool, data: Path | None, config: Path | None,
            latency_margin: float | None, parallelism: int, out: Path, blueprints: tuple[Path, ...],
            namespaces_file: Path) -> None:
    """Train, register, test locally, approve, promote, plan and apply one model version in NAMESPACE."""
    from . import release as r
    from . import release_steps as steps
    from .cli import workdir
    from .cli_models import _one, _targets

    target = _one(_targets(wanted, platforms, blueprints, namespaces_file))
    ns = target.namespace
    serving = target.serving
    if serving is None:
        raise MlopsError(f"platform {target.platform.name!r} declares no ModelServing: there is nothing to release")
    declared = [v.name for v in serving.variants]
    chosen = variant or declared[0]
    if chosen not in declared:
        raise MlopsError(f"--variant {chosen}: ModelServing of {target.platform.name!r} has no such production "
                         f"variant (variants: {', '.join(declared)})")
    problem = r.refusal(wanted, ns.promoted_from, skip_training, version, str(namespaces_file))
    if problem:
        raise MlopsError(problem)
    if ns.promoted_from is not None:
        before = target.spaces[ns.promoted_from].pins.get(target.platform.name, {}).get(chosen)
        if before is None:
            raise click.ClickException(f"refused: {ns.promoted_from} pins no version for {target.platform.name}."
                                       f"{chosen} (models/{ns.promoted_from}.yaml): release {ns.promoted_from} "
                                       f"first")
        version = before.version

    context = steps.Context(wanted, target, chosen, blueprints, namespaces_file, out, parallelism, data,
                            config or steps.DEFAULT_CONFIG, latency_margin or steps.LATENCY_MARGIN)
    run = r.Release(wanted, target.platform.name, chosen, flags={
        "skip_training": skip_training, "skip_local_test": skip_local_test, "skip_deploy": skip_deploy,
        "version": version, "data": str(data) if data else None, "config": str(context.config),
        "latency_margin": context.latency_margin, "promoted_from": ns.promoted_from, "approval": ns.approval},
        steps=r.steps_for(ns.promoted_from is None, skip_training, skip_local_test, skip_deploy), version=version)
    path = r.report_path(workdir() / "releases", wanted, run.started)
    which = f"version {version}" + (f", as {ns.promoted_from} pins" if ns.promoted_from else "") if version else ""
    click.echo(f"release of {target.platform.name} to namespace {wanted!r} (variant {chosen}"
               f"{', ' + which if which else ''}); report: {path}")
    try:
        r.run(run, context.actions(), lambda done: r.write_atomically(path, done.to_json()), click.echo)
    except Exception as exc:
        # A cloud SDK's error that a registry call let through (no credentials, access denied): the
        # report has it; the user gets its message, not a traceback.
        if type(exc).__module__.split(".")[0] in ("botocore", "boto3", "azure"):
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
        raise
    finally:
        click.echo(f"report: {path}")
    if run.outcome == r.DEFERRED:
        deferred = next(s for s in run.steps if s.outcome == r.DEFERRED)
        click.echo(f"deferred at {deferred.name}: {deferred.reason}", err=True)
        sys.exit(3)
    click.echo(f"released version {run.version} of {target.platform.name} to {wanted} ({chosen})"
               + (": pinned, not deployed (--skip-deploy)" if skip_deploy else ""))
