"""`mlops featuresets`: upload the Azure feature sets' specifications that the features stack needs.

Run it after the data stack's apply and before the features stack's (README, "First apply" on
Azure). Exit 0 when every specification is there (written or unchanged), 1 when one was refused
or failed (each named; the others still go), 2 for a user's error (an unknown namespace, a
specification missing from terraform/).
"""

from __future__ import annotations

from pathlib import Path

import click

from .cli_common import InputError, blueprint_option, namespaces_option, user_errors


@click.command()
@click.option("-n", "--namespace", "name", required=True, help="The namespace whose lake receives them.")
@click.option("--dry-run", is_flag=True, help="Only list what would be uploaded where.")
@click.option("--tree", type=click.Path(path_type=Path, file_okay=False), default=Path("terraform"),
              show_default=True, help="The rendered tree the specifications are read from.")
@blueprint_option
@namespaces_option
@user_errors
def featuresets(name: str, dry_run: bool, tree: Path, blueprints: tuple[Path, ...], namespaces_file: Path) -> None:
    """Upload each Azure feature set's FeatureSetSpec.yaml from terraform/ to the offline zone."""
    from . import blueprints as bp
    from . import namespaces
    from .azureml import featuresets as fs

    spaces = namespaces.load(namespaces_file)
    if name not in spaces:
        raise InputError([f"{namespaces_file}: no namespace {name!r} (namespaces: {', '.join(spaces)})"])
    uploads = fs.plan(bp.load(list(blueprints) or None), spaces[name], tree)
    if not uploads:
        click.echo(f"no Azure feature store in namespace {name!r}: nothing to upload")
        return
    if dry_run:
        click.echo("\n".join(f"{u.source} -> {u.url}" for u in uploads))
        return
    written, problems = fs.run(uploads, click.echo)
    for problem in problems:
        click.echo(f"Error: {problem}", err=True)
    click.echo(f"{written} uploaded, {len(uploads) - written - len(problems)} unchanged, {len(problems)} not")
    if problems:
        raise SystemExit(1)
