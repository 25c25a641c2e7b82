"""The `mlops` command.

The library raises typed MlopsErrors; this module alone turns them into `Error: ...` lines and
exit code 2, so a user's mistake never shows a traceback while a real bug keeps its own.
Nothing heavy is imported at start-up: `mlops --help` and synth need only click and PyYAML.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .cli_azure_rollout import update_online_endpoint
from .cli_common import InputError, blueprint_option, namespaces_option, user_errors
from .cli_cost import cost
from .cli_endpoint import update_endpoint
from .cli_featuresets import featuresets
from .cli_init import init
from .cli_models import models
from .cli_release import release
from .cli_smoke import loadtest, smoke

if TYPE_CHECKING:  # only for hints: the commands import what they use when they run
    from .namespaces import Namespace
    from .runner.operations import Runner
    from .runner.schedule import Outcome
    from .runner.units import Unit
    from .synth import Rendered

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_OUT = Path("terraform")
CDKTN_OUT = Path("cdktn.out")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlops-dsl")
def main() -> None:
    """Render ML platform blueprints to reviewable Terraform, one stack per template per namespace."""


def _select(all_names: list[str], wanted: tuple[str, ...], all_flag: bool, source: Path) -> list[str]:
    if all_flag or not wanted:
        return all_names
    problems = []
    for name in wanted:
        if name not in all_names:
            close = difflib.get_close_matches(name, all_names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            problems.append(f"{source}: no namespace {name!r} (namespaces: {', '.join(all_names)}).{hint}")
    if problems:
        raise InputError(problems)
    return [n for n in all_names if n in wanted]


def _load(blueprints: tuple[Path, ...], namespaces_file: Path, wanted: tuple[str, ...], all_flag: bool):
    from . import blueprints as bp
    from . import namespaces

    spaces = namespaces.load(namespaces_file)
    selected = _select(list(spaces), wanted, all_flag, namespaces_file)
    platforms = bp.load(list(blueprints) or None)
    return platforms, [spaces[n] for n in selected]


@main.command()
@click.option("-n", "--namespace", "wanted", multiple=True, help="A namespace to render (repeatable).")
@click.option("--all", "all_flag", is_flag=True,
              help="Render every namespace and remove namespaces no longer declared (the default without -n).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the tree differs from the blueprints.")
@click.option("--format", "fmt", type=click.Choice(["hcl", "json"]), default="hcl", show_default=True,
              help="HCL (.tf) or Terraform JSON (.tf.json).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where the stacks go: <out>/<namespace>/<platform>/<template>/. "
                   "Default: terraform (native), cdktn.out (cdktn).")
@click.option("--engine", type=click.Choice(["native", "cdktn", "cdktf"]), default="native", show_default=True,
              metavar="[native|cdktn]",
              help="native writers, or CDK Terrain and its provider bindings (cdk.tf.json per stack). "
                   "cdktf, the archived CDK for Terraform, is refused: use cdktn.")
@click.option("--drop-moves", is_flag=True,
              help="Leave out the moved blocks carried over from terraform/ at git HEAD (README: Renames).")
@blueprint_option
@namespaces_option
@user_errors
def synth(wanted: tuple[str, ...], all_flag: bool, check: bool, fmt: str, out: Path | None, engine: str,
          drop_moves: bool, blueprints: tuple[Path, ...], namespaces_file: Path) -> None:
    """Render the blueprints to Terraform under OUT."""
    from . import synth as s

    platforms, spaces = _load(blueprints, namespaces_file, wanted, all_flag)
    rendered = s.render_tree(platforms, spaces, fmt, carry_moves=not drop_moves)
    if engine != "native":
        _synth_cdktn(rendered, out or CDKTN_OUT, check, engine)
        return
    out = out or DEFAULT_OUT
    whole = all_flag or not wanted
    stacks = sum(len(b) for b in rendered.builds.values())
    if check:
        changes = s.diff(out, rendered, whole)
        if changes.written or changes.removed:
            for rel in changes.written:
                state = "differs from the blueprints" if (out / rel).exists() else "is missing"
                click.echo(f"out of date: {out / rel} {state}", err=True)
            for rel in changes.removed:
                click.echo(f"out of date: {out / rel} is no longer declared", err=True)
            click.echo(f"{out}/ is out of date: run `mlops synth` and commit the result.", err=True)
            sys.exit(1)
        click.echo(f"{out}/ is up to date: {stacks} stacks in {len(spaces)} namespaces "
                   f"({len(rendered.files)} files).")
        return
    changes = s.write(out, rendered, whole)
    for line in changes.lines():
        click.echo(line)
    click.echo(f"synth: {stacks} stacks in {len(spaces)} namespaces -> {out}/ "
               f"({len(changes.written)} written, {len(changes.removed)} removed, "
               f"{changes.unchanged} unchanged)")


def _synth_cdktn(rendered: Rendered, out: Path, check: bool, engine: str) -> None:
    import time

    from . import cdktn_engine

    if engine == cdktn_engine.RETIRED:
        raise InputError([f"--engine {engine}: CDK for Terraform was archived in December 2025; the engine now "
                          f"runs on its maintained fork, CDK Terrain: use --engine cdktn (README: Engines and "
                          f"schema validation)"])
    if check:
        raise InputError(["--check compares the committed native tree; it does not apply to --engine cdktn"])
    stacks = rendered.stacks()
    clashes = [path for path, _ in stacks if any((out / path).glob("*.tf"))]
    if clashes:
        raise InputError([f"--out {out}: {out / clashes[0]} holds native .tf files; cdk.tf.json beside them would "
                          f"declare every resource twice. Choose another --out (default {CDKTN_OUT})."])
    click.echo(f"cdktn: building {len(stacks)} stacks through the provider bindings (starts Node; about a "
               f"minute)...", err=True)
    started = time.monotonic()
    written = cdktn_engine.synth(stacks, out)
    click.echo(f"synth --engine cdktn: {len(written)} stacks -> {out}/<namespace>/<platform>/<template>/"
               f"{cdktn_engine.OUTPUT} in {time.monotonic() - started:.1f} s")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@blueprint_option
@user_errors
def graph(fmt: str, blueprints: tuple[Path, ...]) -> None:
    """Print the templates' dependency graph (arrows point in deploy order)."""
    from . import blueprints as bp
    from .graph import render_graph

    click.echo(render_graph(bp.load(list(blueprints) or None), fmt), nl=False)


@main.command()
@click.option("-n", "--namespace", "wanted", required=True, help="The namespace whose registry receives the images.")
@click.option("--dry-run", is_flag=True, help="Only print the commands.")
@blueprint_option
@namespaces_option
@user_errors
def images(wanted: str, dry_run: bool, blueprints: tuple[Path, ...], namespaces_file: Path) -> None:
    """Build the images and push them, tagged by content hash, to NAMESPACE's registry."""
    from . import publish

    platforms, spaces = _load(blueprints, namespaces_file, (wanted,), False)
    builds = publish.plan(platforms, spaces[0], Path("."))
    if dry_run:
        click.echo("\n".join(publish.commands(builds)))
        return
    problem = publish.docker_problem()
    if problem:
        click.echo(f"Nothing was built or pushed: {problem}. On a machine with Docker and AWS credentials for "
                   f"the namespace's account, run:\n", err=True)
        click.echo("\n".join(f"  {line}" for line in publish.commands(builds)), err=True)
        raise click.ClickException("images were not built or pushed")
    publish.run(builds, click.echo)
    click.echo(f"pushed {len(builds)} images: " + ", ".join(b.uri for b in builds))


@main.command()
@click.option("-n", "--namespace", "wanted", multiple=True, help="A namespace to check (repeatable; default all).")
@click.option("--schema", is_flag=True,
              help="Also check every type, argument and nested block against the pinned provider bindings.")
@blueprint_option
@namespaces_option
@user_errors
def validate(wanted: tuple[str, ...], schema: bool, blueprints: tuple[Path, ...], namespaces_file: Path) -> None:
    """Check the rendered stacks: references and names; with --schema, the provider schemas too."""
    from . import bindings
    from . import synth as s
    from .validate import validate as check

    platforms, spaces = _load(blueprints, namespaces_file, wanted, False)
    rendered = s.render_tree(platforms, spaces)
    stacks = rendered.stacks()
    try:
        report = check(stacks, schema)
    except bindings.NoBindings as exc:
        raise click.ClickException(str(exc)) from None
    if report.problems:
        raise InputError(report.problems)
    floors = f" (and {', '.join(sorted(report.floors))}, their ranges' lowest)" if report.floors else ""
    checked = (f"; {report.checked} resources, data sources and providers match the pinned provider schemas{floors}, "
               f"{report.pipeline_values} values of SageMaker requests (pipeline steps, state machines) match the API "
               "request shapes, "
               f"{report.azapi_bodies} azapi bodies match the types of their API versions"
               if schema else "")
    unchecked = (f" (no bindings to check the arguments of {', '.join(sorted(report.unchecked))} against)"
                 if report.unchecked else "")
    click.echo(f"{len(stacks)} stacks in {len(spaces)} namespaces are valid{checked}{unchecked}")


# --- plan, apply, destroy, drift ------------------------------------------------------------------

def workdir() -> Path:
    """Where plans, logs and the emulator's pid live: .mlops, or MLOPS_WORKDIR."""
    path = Path(os.environ.get("MLOPS_WORKDIR") or ".mlops")
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_options(func: F) -> F:
    """The options every terraform-running command shares."""
    for option in reversed([
        click.option("-n", "--namespace", "wanted", required=True, help="The namespace to work on."),
        click.option("--platform", "platforms", multiple=True, help="Only this platform's stacks (repeatable)."),
        click.option("--template", "templates", multiple=True, help="Only this template's stacks (repeatable)."),
        click.option("--changed", is_flag=True,
                     help="Only stacks whose rendered files changed since --base, plus their dependents."),
        click.option("--base", default="HEAD", show_default=True, help="The git ref --changed compares with."),
        click.option("--parallelism", type=click.IntRange(1, 64), default=4, show_default=True,
                     help="How many independent stacks run at the same time."),
        click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_OUT,
                     show_default=True, help="Where the stacks are rendered."),
        blueprint_option,
        namespaces_option,
    ]):
        func = option(func)
    return func


def _interactive() -> bool:
    return sys.stdin.isatty()


def _prompt() -> Callable[[str], str] | None:
    if not _interactive():
        return None
    return lambda text: click.prompt(text, default="", show_default=False)


def _prepare(wanted: str, platforms: tuple[str, ...], templates: tuple[str, ...], changed: bool, base: str,
             out: Path, blueprints: tuple[Path, ...], namespaces_file: Path,
             write: bool | Callable[[Namespace], bool]) -> tuple[Namespace, list[Unit], Rendered]:
    """Render the namespace in memory, pick the stacks, and write them where `write` says so (plan,
    destroy and drift always; apply only when it must plan first)."""
    from . import synth as s
    from .runner import git, units

    loaded, spaces = _load(blueprints, namespaces_file, (wanted,), False)
    namespace = spaces[0]
    rendered = s.render_tree(loaded, spaces)
    every = units.units_of(rendered, out)
    if not every:
        raise InputError([f"{namespace.source}: namespace {wanted!r} renders no stacks"])
    chosen = units.select(every, platforms, templates)
    if changed:
        stacks = {u.key: (u.path.relative_to(out).as_posix(), dict(u.files)) for u in chosen}
        seeds = git.changed_since(base, out, stacks)
        chosen = units.with_dependents(chosen, seeds)
        click.echo(f"--changed: {len(chosen)} stacks changed since {base} or depend on one that did"
                   + (": " + ", ".join(u.name for u in chosen) if chosen else ""))
    if write(namespace) if callable(write) else write:
        s.write(out, rendered, all_namespaces=False)
    return namespace, chosen, rendered


def _runner_if_any(namespace: Namespace, parallelism: int) -> Runner | None:
    """A runner on the terraform/tofu binary, the namespace's emulator started; None without a binary."""
    from . import emulator
    from .runner.operations import Runner
    from .runner.terraform import locate

    terraform = locate(workdir())
    if terraform is None:
        return None
    emulator.ensure(namespace, workdir(), click.echo)
    click.echo(f"using {terraform.label}; logs in {terraform.logs}/")
    return Runner(terraform, namespace, workdir(), parallelism, say=click.echo)


def _runner(namespace: Namespace, parallelism: int) -> Runner:
    runner = _runner_if_any(namespace, parallelism)
    if runner is None:
        raise click.ClickException("no terraform or tofu binary found on PATH (set TF_BINARY to use another); "
                                   "this command needs one")
    return runner


def _check_pins(namespace: Namespace, chosen: list[Unit]) -> None:
    """Every model version the serving stacks pin is still Approved, and still the pinned artifact."""
    from .cli_models import check_pins

    def serving(marker: str) -> list[str]:
        return sorted({u.platform for u in chosen if namespace.pins.get(u.platform)
                       and any(marker in text for text in u.files.values())})

    problems = []
    aws = serving('resource "aws_sagemaker_model"')
    if namespace.aws is not None and aws:
        problems += check_pins(namespace, aws)
    azure = serving("Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments@")
    if namespace.azure is not None and azure:
        problems += check_pins(namespace, azure, cloud="azure")
    if problems:
        raise click.ClickException("a pinned model version cannot be served:\n" + "\n".join(problems))


def _finish(command: str, namespace: Namespace, chosen: list[Unit], outcomes: dict[str, Outcome]) -> bool:
    from .runner.operations import Report

    report = Report(command, namespace.name, chosen, outcomes)
    click.echo("")
    for line in report.lines():
        click.echo(line)
    return report.failed


@main.command()
@run_options
@user_errors
def plan(wanted: str, platforms: tuple[str, ...], templates: tuple[str, ...], changed: bool, base: str,
         parallelism: int, out: Path, blueprints: tuple[Path, ...], namespaces_file: Path) -> None:
    """Synthesize NAMESPACE and plan its stacks in dependency order, saving each plan.

    Writes .mlops/plans/<ns>/summary.md and prints its hash, which `mlops apply --approve` takes.
    With no terraform or tofu on PATH it shows a configuration diff against git HEAD instead.
    """
    namespace, chosen, rendered = _prepare(wanted, platforms, templates, changed, base, out, blueprints,
                                           namespaces_file, write=True)
    if not chosen:
        click.echo("nothing to plan")
        return
    for unit in chosen:
        for note in unit.notes:
            click.echo(f"{unit.name}: {note}")
    runner = _runner_if_any(namespace, parallelism)
    if runner is None:
        _offline_plan(namespace, chosen, rendered, out)
        return
    _check_pins(namespace, chosen)
    click.echo(f"planning {len(chosen)} stacks of namespace '{namespace.name}' (approval: {namespace.approval})")
    from .runner.plans import summary_file

    outcomes, _, digest = runner.plan(chosen)
    failed = _finish("plan", namespace, chosen, outcomes)
    click.echo(f"\nsummary: {summary_file(workdir(), namespace.name)}")
    click.echo(f"summary hash: {digest}")
    if failed:
        raise click.ClickException("some stacks could not be planned; see the table above")
    how = (f"mlops apply -n {namespace.name} --approve {digest}" if namespace.approval == "manual"
           else f"mlops apply -n {namespace.name}")
    click.echo(f"to apply exactly these plans: {how}")


def _offline_plan(namespace: Namespace, chosen: list[Unit], rendered: Rendered, out: Path) -> None:
    from . import bindings
    from .runner.offline import config_diff
    from .validate import validate as check

    keys = {u.key for u in chosen}
    stacks = [(key, stack) for key, stack in rendered.stacks() if key in keys]
    try:
        report, how = check(stacks, schema=True), "references, names and the pinned provider schemas"
    except bindings.NoBindings:
        report, how = check(stacks, schema=False), "references and names (no provider bindings installed)"
    if report.problems:
        raise InputError(report.problems)

    rule = "=" * 78
    click.echo(rule)
    click.echo("CONFIGURATION DIFF, NOT A STATE-AWARE PLAN")
    click.echo("No terraform or tofu binary was found on PATH (TF_BINARY selects one), so this compares the")
    click.echo(f"rendered stacks with {out}/ as committed at git HEAD. It reads no state: it cannot see what")
    click.echo("is deployed, drift, or values known only after apply.")
    click.echo(rule)
    diffs, compared = config_diff(chosen, out)
    click.echo(f"validated {len(stacks)} stacks: {how}")
    if not compared:
        click.echo(f"(nothing of {out}/ is committed at HEAD here: every stack is shown as new)")
    current = None
    for i, unit in enumerate(chosen, 1):
        if unit.platform != current:
            current = unit.platform
            click.echo(f"\n{namespace.name} / {unit.platform}  (approval: {namespace.approval})")
        d = diffs[unit.key]
        after = f"  after {', '.join(unit.depends_on)}" if unit.depends_on else ""
        state = "new stack" if d.new_stack else ("no changes" if d.empty else
                                                 f"+{len(d.added)} ~{len(d.changed)} -{len(d.removed)}")
        click.echo(f"  {i}. {unit.template:<12} {state}{after}")
        for sign, names in (("-", d.removed), ("~", d.changed), ("+", d.added)):
            for name in names:
                click.echo(f"       {sign} {name}")


@main.command()
@run_options
@click.option("--approve", "approve", metavar="HASH",
              help="Approve a manual namespace's plans by the summary hash that was reviewed (for CI).")
@click.option("--auto-approve", is_flag=True, help="Accepted for approval: auto namespaces; refused for manual ones.")
@user_errors
def apply(wanted: str, platforms: tuple[str, ...], templates: tuple[str, ...], changed: bool, base: str,
          parallelism: int, out: Path, blueprints: tuple[Path, ...], namespaces_file: Path,
          approve: str | None, auto_approve: bool) -> None:
    """Apply exactly the saved plans of NAMESPACE, in dependency order; deferred stacks follow in later waves.

    Refuses plans made from a configuration that has changed since. In an approval: auto namespace
    with no saved plans, it plans first. Exits 3 when it applied what was approved and deferred
    stacks of a manual namespace await their own review.
    """
    from .runner.plans import plan_dir

    def plans_first(ns: Namespace) -> bool:
        return ns.approval == "auto" and not (plan_dir(workdir(), ns.name) / "index.json").exists()

    namespace, chosen, _ = _prepare(wanted, platforms, templates, changed, base, out, blueprints, namespaces_file,
                                    write=plans_first)
    runner = _runner(namespace, parallelism)
    if plans_first(namespace):
        click.echo(f"no saved plans for namespace '{namespace.name}' (approval: auto): planning first")
        outcomes, _, _ = runner.plan(chosen)
        if _finish("plan", namespace, chosen, outcomes):
            raise click.ClickException("some stacks could not be planned; nothing was applied")
    outcomes = runner.apply(chosen, approve, auto_approve, _prompt())
    if _finish("apply", namespace, chosen, outcomes):
        raise click.ClickException("some stacks were not applied; see the table above")
    if any(o.status == "deferred" for o in outcomes.values()):
        sys.exit(3)


@main.command()
@run_options
@click.option("--auto-approve", is_flag=True, help="Accepted for approval: auto namespaces; refused for manual ones.")
@user_errors
def destroy(wanted: str, platforms: tuple[str, ...], templates: tuple[str, ...], changed: bool, base: str,
            parallelism: int, out: Path, blueprints: tuple[Path, ...], namespaces_file: Path,
            auto_approve: bool) -> None:
    """Destroy NAMESPACE's stacks in exact reverse dependency order."""
    from . import emulator

    namespace, chosen, _ = _prepare(wanted, platforms, templates, changed, base, out, blueprints, namespaces_file,
                                    write=True)
    endpoint = namespace.aws.endpoint if namespace.aws else None
    if endpoint and not emulator.answering(endpoint):
        click.echo(f"the local emulator is not running on {endpoint}: its resources and state went with it; "
                   f"nothing to destroy")
        return
    runner = _runner(namespace, parallelism)
    outcomes = runner.destroy(chosen, auto_approve, _prompt())
    if _finish("destroy", namespace, chosen, outcomes):
        raise click.ClickException("some stacks were not destroyed; see the table above")


@main.command()
@run_options
@user_errors
def drift(wanted: str, platforms: tuple[str, ...], templates: tuple[str, ...], changed: bool, base: str,
          parallelism: int, out: Path, blueprints: tuple[Path, ...], namespaces_file: Path) -> None:
    """Report which stacks of NAMESPACE drifted from their state (refresh-only plans). Exit 1 on drift.

    Drift is a failed check, not a user's mistake: 1, as for a stack that could not be checked (the
    table and the last line say which); 2 stays a user's error, as for every command.
    """
    namespace, chosen, _ = _prepare(wanted, platforms, templates, changed, base, out, blueprints, namespaces_file,
                                    write=True)
    runner = _runner(namespace, parallelism)
    outcomes = runner.drift(chosen)
    failed = _finish("drift", namespace, chosen, outcomes)
    drifted = [k for k, o in outcomes.items() if isinstance(o.data, list) and o.data]
    if failed:
        raise click.ClickException("some stacks could not be checked; see the table above")
    if drifted:
        click.echo(f"{len(drifted)} of {len(chosen)} stacks drifted from their state", err=True)
        sys.exit(1)
    click.echo(f"no drift in {len(chosen)} stacks")


@main.group()
def emulator() -> None:
    """The local AWS emulator (moto's server on 127.0.0.1) behind namespaces with aws.endpoint."""


def _emulated(wanted: str, namespaces_file: Path) -> tuple[Namespace, str]:
    """The namespace and its emulator's URL; an error for a namespace on real AWS."""
    from . import namespaces

    ns = namespaces.load(namespaces_file).get(wanted)
    if ns is None:
        raise InputError([f"{namespaces_file}: no namespace {wanted!r}"])
    if ns.aws is None or not ns.aws.endpoint:
        raise InputError([f"{namespaces_file}: namespaces.{wanted}.aws.endpoint is not set: that namespace "
                          f"uses real AWS, not the emulator"])
    return ns, ns.aws.endpoint


def emulator_command(name: str) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        func = user_errors(func)
        func = namespaces_option(func)
        func = click.option("-n", "--namespace", "wanted", default="local", show_default=True)(func)
        return emulator.command(name)(func)  # type: ignore[return-value]
    return decorate


@emulator_command("start")
def emulator_start(wanted: str, namespaces_file: Path) -> None:
    """Start the emulator (if it is not running) and create the namespace's state bucket."""
    from . import emulator as emu

    ns, endpoint = _emulated(wanted, namespaces_file)
    emu.ensure(ns, workdir(), click.echo)
    click.echo(f"emulator answering on {endpoint}")


@emulator_command("stop")
def emulator_stop(wanted: str, namespaces_file: Path) -> None:
    """Stop the emulator; everything in it, state included, is gone."""
    from . import emulator as emu

    _, endpoint = _emulated(wanted, namespaces_file)
    if emu.stop(endpoint, workdir()):
        click.echo(f"stopped the emulator on {endpoint}")
    elif emu.answering(endpoint):
        raise click.ClickException(f"something answers on {endpoint} but was not started by mlops; stop it yourself")
    else:
        click.echo(f"no emulator was running on {endpoint}")


@emulator_command("status")
def emulator_status(wanted: str, namespaces_file: Path) -> None:
    """Say whether the emulator answers."""
    from . import emulator as emu

    _, endpoint = _emulated(wanted, namespaces_file)
    click.echo(f"{endpoint}: {'running' if emu.answering(endpoint) else 'not running'}")


@emulator_command("rehearse-rollback")
@click.option("--endpoint", "endpoint_name", required=True, help="The SageMaker endpoint's name.")
def emulator_rehearse_rollback(wanted: str, namespaces_file: Path, endpoint_name: str) -> None:
    """Roll the endpoint's next update back, as SageMaker does when a rollback alarm fires."""
    from . import emulator as emu

    _, endpoint = _emulated(wanted, namespaces_file)
    emu.rehearse_rollback(workdir(), endpoint, endpoint_name)
    click.echo(f"the next update of {endpoint_name} on {endpoint} will be rolled back")


main.add_command(models)
main.add_command(update_endpoint)
main.add_command(update_online_endpoint)
main.add_command(cost)
main.add_command(smoke)
main.add_command(loadtest)
main.add_command(release)
main.add_command(init)
main.add_command(featuresets)


if __name__ == "__main__":
    main()
