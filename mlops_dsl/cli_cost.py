"""`mlops cost`: each stack's estimated monthly cost, from the stacks as rendered for a namespace.

Why the rendered stacks: namespace overrides (bigger instances in prod, no autoscaling in local)
only exist there. Exit 0 with an estimate (missing prices listed, never guessed), 2 for a user's
error, 1 when a live price API was asked for and failed.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import click

from .cli_common import InputError, blueprint_option, namespaces_option, user_errors


def namespace_costs(platforms: list, namespace, book, wanted: tuple[str, ...] = (), root: Path = Path(".")) -> list:
    """StackCost of every stack of the namespace's platforms (all, or those named), in deploy order."""
    from .cost import estimate, stack_resources
    from .synth import render_tree

    rendered = render_tree(platforms, [namespace], root=root)
    clouds = {p.name: p.cloud for p in platforms}
    costs = []
    for (_, platform), builds in rendered.builds.items():
        if wanted and platform not in wanted:
            continue
        cloud = clouds[platform]
        settings = getattr(namespace, cloud)
        region = settings.region if cloud == "aws" else settings.location
        for build in builds:
            costs.append(estimate(f"{platform}/{build.template}", cloud, region, stack_resources(build.stack), book))
    return costs


@click.command()
@click.option("-n", "--namespace", "name", required=True, help="The namespace to estimate.")
@click.option("--platform", "wanted", multiple=True, help="A platform to estimate (repeatable; default: all).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--live", is_flag=True,
              help="Ask the AWS Price List API (needs credentials) and the Azure retail prices API first; "
                   "the shipped table answers the rest.")
@blueprint_option
@namespaces_option
@user_errors
def cost(name: str, wanted: tuple[str, ...], fmt: str, live: bool, blueprints: tuple[Path, ...],
         namespaces_file: Path) -> None:
    """Estimate each stack's monthly cost (a range where autoscaling makes one), with every assumption."""
    from . import blueprints as bp
    from . import namespaces
    from .cost import to_json, to_text
    from .cost_prices import AwsPriceList, AzureRetail, Chain, ShippedTable

    spaces = namespaces.load(namespaces_file)
    if name not in spaces:
        raise InputError([f"{namespaces_file}: no namespace {name!r} (namespaces: {', '.join(spaces)})"])
    platforms = bp.load(list(blueprints) or None)
    known = [p.name for p in platforms]
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise InputError([f"--platform {w}: no blueprint declares it (platforms: {', '.join(known)})" for w in unknown])
    table = ShippedTable()
    book = table
    if live:
        today = datetime.date.today().isoformat()
        aws_book = AwsPriceList(table, date=today)
        book = Chain(aws_book, AzureRetail(table, date=today))
    try:
        costs = namespace_costs(platforms, spaces[name], book, wanted)
    except Exception as exc:  # a live API failing is an operational failure, not the user's
        if live and type(exc).__module__.split(".")[0] in ("botocore", "boto3", "urllib"):
            raise click.ClickException(f"price API: {exc}") from None
        raise
    sources = table.sources()
    if live:
        aws_live = (f"AWS Price List API not asked ({aws_book.unavailable}): the shipped table answered"
                    if aws_book.unavailable else "AWS Price List API (GetProducts), read now")
        sources = [aws_live, "Azure retail prices API, read now", *sources]
    click.echo((to_json if fmt == "json" else to_text)(name, costs, sources), nl=False)
