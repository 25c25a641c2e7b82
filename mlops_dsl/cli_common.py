"""What every `mlops` command module shares: how user errors are shown, and the common options."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .errors import MlopsError, OperationError

F = TypeVar("F", bound=Callable[..., Any])
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


