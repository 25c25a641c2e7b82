"""The `mlops` command.

The library raises typed MlopsErrors; this module alone turns them into `Error: ...` lines and
exit code 2, so a user's mistake never shows a traceback while a real bug keeps its own.
Nothing heavy is imported at start-up: `mlops --help` and synth need only click and PyYAML.
"""

from __future__ import annotations

import difflib
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .errors import MlopsError, OperationError

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_OUT = Path("terraform")
DEFAULT_NAMESPACES = Path("namespaces.yaml")


class InputError(click.ClickException):
    """Bad input from the user: every problem on its own `Error:` line, exit code 2."""

    exit_code = 2

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems

    def show(self, file: Any = None) -> None:
        for problem in self.problems:
            click.echo(f"Error: {problem}", err=True)


def user_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OperationError as exc:
            raise click.ClickException("\n".join(exc.problems)) from None
        except MlopsError as exc:
            raise InputError(exc.problems) from None

    return wrapper  # type: ignore[return-value]


blueprint_option = click.option(
    "--blueprint", "blueprints", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
    help="A blueprint file to load (repeatable). Default: every blueprints/*.py.")
namespaces_option = click.option(
    "--namespaces", "namespaces_file", default=DEFAULT_NAMESPACES, show_default=True,
    type=click.Path(path_type=Path, dir_okay=False), help="The namespaces file.")


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
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_OUT, show_default=True,
              help="Where the stacks go: <out>/<namespace>/<platform>/<template>/.")
@blueprint_option
@namespaces_option
@user_errors
def synth(wanted: tuple[str, ...], all_flag: bool, check: bool, fmt: str, out: Path,
          blueprints: tuple[Path, ...], namespaces_file: Path) -> None:
    """Render the blueprints to Terraform under OUT."""
    from . import synth as s

    platforms, spaces = _load(blueprints, namespaces_file, wanted, all_flag)
    rendered = s.render_tree(platforms, spaces, fmt)
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
@click.option("-n", "--namespace", "wanted", required=True, multiple=True, help="The namespace to plan.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_OUT, show_default=True)
@blueprint_option
@namespaces_option
@user_errors
def plan(wanted: tuple[str, ...], out: Path, blueprints: tuple[Path, ...], namespaces_file: Path) -> None:
    """Synthesize NAMESPACE and show, in deploy order, what would be planned.

    This is a configuration preview: it runs no terraform and knows no state.
    """
    from . import synth as s

    platforms, spaces = _load(blueprints, namespaces_file, wanted, False)
    rendered = s.render_tree(platforms, spaces)
    changes = s.write(out, rendered, all_namespaces=False)
    changed = {"/".join(rel.split("/")[:3]) for rel in changes.written + changes.removed}
    click.echo("Configuration preview (no terraform run, no state read): stacks in deploy order.")
    for (ns, platform), builds in rendered.builds.items():
        approval = next(n.approval for n in spaces if n.name == ns)
        click.echo(f"\n{ns} / {platform}  (approval: {approval})")
        for i, build in enumerate(builds, 1):
            path = f"{ns}/{platform}/{build.template}"
            after = f" after {', '.join(build.depends_on)}" if build.depends_on else ""
            state = "changed" if path in changed else "unchanged"
            click.echo(f"  {i}. {build.template:<12} {len(build.stack.resources):>3} resources  "
                       f"{out / path}  [{state} since last synth]{after}")


if __name__ == "__main__":
    main()
