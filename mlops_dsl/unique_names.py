"""Names the cloud holds once per account and region, rendered by two stacks of one namespace.

Each stack is planned on its own, so Terraform cannot see that two of them create the same
SageMaker model or IAM role: the second apply fails on the real account ("Cannot create already
existing model", EntityAlreadyExists), and moto accepts it by replacing the first. Synth checks it
instead, for the resource types whose name attribute the cloud module lists (aws: UNIQUE_NAMES).
Only literal names are compared; a name computed at apply time cannot be known here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .terraform import Stack


def clashes(stacks: Iterable[tuple[str, Stack]], unique: Mapping[str, str]) -> list[str]:
    """One problem per name rendered by two templates, naming both, the type and the name."""
    seen: dict[tuple[str, str], str] = {}
    problems: list[str] = []
    for template, stack in stacks:
        for resource in stack.resources:
            attribute = unique.get(resource.type)
            name = resource.body.get(attribute) if attribute else None
            if not isinstance(name, str):
                continue
            first = seen.setdefault((resource.type, name), template)
            if first != template:
                problems.append(f"templates '{first}' and '{template}' both create {resource.type} {name!r}: "
                                f"the cloud holds one per account and region, so the second apply would fail")
    return problems


__all__ = ["clashes"]
