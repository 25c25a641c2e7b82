"""Typed errors for users' mistakes.

The library raises these; only the CLI turns them into exit codes (2 for bad input), so a
user's mistake never shows a traceback while a real bug still does.
"""

from __future__ import annotations


class MlopsError(Exception):
    """Base of every error caused by the user's input rather than by a bug here."""

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class BlueprintError(MlopsError):
    """A blueprint that cannot be loaded or declares something invalid."""


class ParameterError(BlueprintError, ValueError):
    """A template parameter outside its declared constraints.

    Also a ValueError so that code calling a template's constructor directly can catch it the
    usual Python way.
    """


class GraphError(BlueprintError):
    """A dependency cycle, or a template that is referenced but not part of the platform."""


class NamespaceError(MlopsError):
    """A malformed or inconsistent namespaces.yaml."""


class OperationError(MlopsError):
    """An external step failed (docker, terraform): not bad input, so the CLI exits 1."""
