"""`mlops init`: start a new project that declares its platform with mlops-dsl.

    mlops init DIR --cloud aws|azure [--name NAME] [--source CHECKOUT] [--wheel FILE]

Exit codes: 0 created, 1 the filesystem refused (nothing written), 2 a user's error (a bad name, a
non-empty directory, a source that is not an mlops-dsl checkout).
"""

from __future__ import annotations

from pathlib import Path

import click

from .cli_common import user_errors


@click.command("init")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--cloud", type=click.Choice(["aws", "azure"]), required=True,
              help="The cloud of the platform (aws also gets a `local` namespace on the AWS emulator).")
@click.option("--name", default=None,
              help="The platform's name (3 to 24 lowercase letters, digits, hyphens). Default: DIR's name.")
@click.option("--source", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The mlops-dsl checkout to copy training/ and serving/ from and depend on by path. "
                   "Default: the checkout this mlops runs from.")
@click.option("--wheel", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Depend on this mlops-dsl wheel, copied into DIR/wheels/, instead of the checkout's path.")
@user_errors
def init(directory: Path, cloud: str, name: str | None, source: Path | None, wheel: Path | None) -> None:
    """Create a new mlops-dsl project in DIR (new or empty): blueprint, namespaces, Makefile, CI, code, tests."""
    from . import scaffold

    scaffold.check_target(directory)  # before anything is read: the likeliest mistake first
    if name is None:
        name = scaffold.default_name(directory)
        problems = scaffold.name_problems(name, f"{directory} (the default --name)")
        if problems:
            raise scaffold.ScaffoldError([*problems, "give the platform a name with --name"])
    if source is None:
        source = scaffold.installed_checkout()
        if source is None:
            raise scaffold.ScaffoldError(
                "this mlops-dsl is installed from a wheel, without the training/ and serving/ code a project "
                "starts from: pass --source /path/to/an/mlops-dsl/checkout (and --wheel FILE to depend on the wheel)")
    problems = scaffold.source_problems(source)
    if problems:
        raise scaffold.ScaffoldError(problems)
    dependency = scaffold.wheel_dependency(wheel, source) if wheel else scaffold.path_dependency(source)
    files = scaffold.project_files(name, cloud, source, dependency)
    scaffold.create(directory, files)
    click.echo(f"created {directory}/: platform {name} on {cloud}, {len(files)} files; mlops-dsl "
               f"{dependency.described}.")
    click.echo(f"next: cd {directory} && make synth && make test, then replace the placeholder ids in "
               f"namespaces.yaml (README.md)")
