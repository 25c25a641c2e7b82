"""Who may apply or destroy a namespace, decided before anything runs.

`approval: auto` namespaces (dev, a pipeline's `make apply ENV=dev`) proceed. `approval: manual`
namespaces need a person: the namespace name typed at a terminal, or `--approve <summary hash>`
naming the exact summary that was reviewed (CI after an environment approval). `--auto-approve`
is refused there, and with neither a terminal nor an approval nothing runs. Destroying a manual
namespace always needs `destroy <namespace>` typed.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import MlopsError, OperationError
from ..namespaces import Namespace

Prompt = Callable[[str], str]


class NotApproved(OperationError):
    """The run stopped before changing anything because no valid approval was given."""


def check_apply(namespace: Namespace, summary_hash: str, summary_path: str, approve: str | None,
                auto_approve: bool, prompt: Prompt | None) -> str:
    """Raise unless applying is approved; returns how it was approved, for the log."""
    ns = namespace.name
    if namespace.approval == "auto":
        return "approval: auto"
    if auto_approve:
        raise MlopsError(f"--auto-approve is refused for namespace '{ns}' (approval: manual in {namespace.source}): "
                         f"type its name at the prompt, or pass --approve {summary_hash} after reviewing "
                         f"{summary_path}")
    if approve is not None:
        if approve.strip() != summary_hash:
            raise NotApproved(f"--approve {approve} does not match the summary of the saved plans ({summary_hash}): "
                              f"nothing was applied. Review {summary_path} and approve the hash it was saved with.")
        return f"approved by summary hash {summary_hash}"
    if prompt is None:
        raise NotApproved(f"namespace '{ns}' needs approval (approval: manual) and there is no terminal: nothing "
                          f"was applied. Review {summary_path}, then run with --approve {summary_hash}.")
    typed = prompt(f"Namespace '{ns}' needs approval. Type its name to apply the plans above")
    if typed.strip() != ns:
        raise NotApproved(f"approval not given (typed {typed.strip()!r}, expected {ns!r}): nothing was applied")
    return "approved at the terminal"


def check_destroy(namespace: Namespace, auto_approve: bool, prompt: Prompt | None) -> str:
    ns = namespace.name
    if namespace.approval == "auto":
        return "approval: auto"
    if auto_approve:
        raise MlopsError(f"--auto-approve is refused for destroying namespace '{ns}' (approval: manual in "
                         f"{namespace.source}): type 'destroy {ns}' at the prompt")
    if prompt is None:
        raise NotApproved(f"destroying namespace '{ns}' (approval: manual) needs 'destroy {ns}' typed at a "
                          f"terminal, and there is none: nothing was destroyed")
    typed = prompt(f"This destroys every stack of namespace '{ns}'. Type 'destroy {ns}' to go on")
    if typed.strip() != f"destroy {ns}":
        raise NotApproved(f"destroy not confirmed (typed {typed.strip()!r}, expected 'destroy {ns}'): "
                          f"nothing was destroyed")
    return "confirmed at the terminal"
