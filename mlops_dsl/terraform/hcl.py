"""HCL writer in canonical `terraform fmt` style.

The layout rules mirror hclwrite's formatter, so `terraform fmt -check` accepts the output as is:
two-space indent; in a run of consecutive one-line assignments the `=` signs line up (a line that
opens a multi-line value, a block, a comment or a blank line ends the run); one blank line
around nested blocks. The writer is a pure function of the model, so the same input always
gives byte-identical output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from .model import DataSource, Moved, Output, Provider, Resource, Settings, Stack, Variable
from .values import Block, Blocks, Call, Expr, Interp, Lifecycle, Value

INDENT = "  "
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_KEYWORDS = {"true", "false", "null", "for", "in", "if", "endfor", "endif", "else"}
_ONE_LINE_LIST_MAX = 72


def quote(text: str) -> str:
    """A double-quoted HCL string literal that evaluates back to exactly `text`.

    `${` and `%{` are doubled so they stay literal; control characters use `\\u` escapes.
    """
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or 0x7F <= code < 0xA0 or ch in "\u2028\u2029":
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    body = "".join(out).replace("${", "$${").replace("%{", "%%{")
    return f'"{body}"'


def _key(name: str) -> str:
    if _IDENT.match(name) and name not in _KEYWORDS:
        return name
    return quote(name)


def _interp(value: Interp) -> str:
    pieces = []
    for part in value.parts:
        if isinstance(part, Expr):
            pieces.append("${" + part.text + "}")
        else:
            pieces.append(quote(part)[1:-1])
    return '"' + "".join(pieces) + '"'


def _is_scalar(value: Value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, Expr, Interp))


def _scalar(value: Value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} has no Terraform literal")
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Expr):
        return value.text
    if isinstance(value, Interp):
        return _interp(value)
    raise TypeError(f"not a scalar: {type(value).__name__}")


def expression(value: Value, level: int) -> list[str]:
    """The lines of an expression; the first continues the current line, the rest are indented."""
    pad = INDENT * level
    if _is_scalar(value):
        return [_scalar(value)]
    if isinstance(value, Call):
        if len(value.args) == 1:
            inner = expression(value.args[0], level)
            inner[0] = f"{value.name}({inner[0]}"
            inner[-1] = f"{inner[-1]})"
            return inner
        return [f"{value.name}(" + ", ".join(_one_line(a) for a in value.args) + ")"]
    if isinstance(value, Block):
        raise TypeError("a Block is only valid as a body item, not inside an expression")
    if isinstance(value, Mapping):
        if not value:
            return ["{}"]
        lines = ["{"]
        lines += _assignments([(k, v) for k, v in value.items() if v is not None], level + 1, is_object=True)
        lines.append(f"{pad}}}")
        return lines
    if isinstance(value, Sequence):
        if not value:
            return ["[]"]
        if all(_is_scalar(v) for v in value):
            one = "[" + ", ".join(_scalar(v) for v in value) + "]"
            if len(one) <= _ONE_LINE_LIST_MAX:
                return [one]
        lines = ["["]
        for item in value:
            sub = expression(item, level + 1)
            sub[0] = INDENT * (level + 1) + sub[0]
            sub[-1] += ","
            lines += sub
        lines.append(f"{pad}]")
        return lines
    raise TypeError(f"cannot render {type(value).__name__} as HCL")


def _one_line(value: Value) -> str:
    lines = expression(value, 0)
    if len(lines) != 1:
        raise ValueError("a function with several arguments takes one-line arguments only")
    return lines[0]


def _assignments(items: list[tuple[str, Value]], level: int, is_object: bool = False) -> list[str]:
    """Attribute lines for one body level, with `=` aligned the way `terraform fmt` does it."""
    pad = INDENT * level
    rendered = [(_key(k) if is_object else k, expression(v, level)) for k, v in items]
    lines: list[str] = []
    run: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(k) for k, _ in run), default=0)
        lines.extend(f"{pad}{k.ljust(width)} = {v}" for k, v in run)
        run.clear()

    for key, value_lines in rendered:
        if len(value_lines) == 1:
            run.append((key, value_lines[0]))
            continue
        flush()
        lines.append(f"{pad}{key} = {value_lines[0]}")
        lines.extend(value_lines[1:])
    flush()
    return lines


def body(items: Mapping[str, Value], level: int, comments: Sequence[str] = ()) -> list[str]:
    """A block body: comments, then attributes and nested blocks in the given order."""
    pad = INDENT * level
    lines = [f"{pad}# {c}" for c in comments]
    pending: list[tuple[str, Value]] = []
    for key, value in items.items():
        if value is None:
            continue
        blocks = _as_blocks(value)
        if blocks is None:
            pending.append((key, value))
            continue
        if not blocks:  # zero blocks: nothing at all, and the run of aligned assignments goes on
            continue
        if pending:
            lines += _assignments(pending, level)
            pending = []
        for blk in blocks:
            if lines and lines[-1] != "":
                lines.append("")
            lines += block(key, blk.labels, blk.body, level)
            lines.append("")
    if pending:
        lines += _assignments(pending, level)
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def _as_blocks(value: Value) -> list[Block] | None:
    """The blocks a body item renders as (possibly none), or None when it is an argument."""
    if isinstance(value, Blocks):
        return list(value)
    if isinstance(value, Block):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Block) for v in value):
        return list(value)
    return None


def block(kind: str, labels: Sequence[str], items: Mapping[str, Value], level: int,
          comments: Sequence[str] = ()) -> list[str]:
    pad = INDENT * level
    head = " ".join([kind, *(quote(label) for label in labels)])
    inner = body(items, level + 1, comments)
    if not inner:
        return [f"{pad}{head} {{}}"]
    return [f"{pad}{head} {{", *inner, f"{pad}}}"]


def _lifecycle(lc: Lifecycle) -> Block:
    items: dict[str, Value] = {}
    if lc.create_before_destroy:
        items["create_before_destroy"] = True
    if lc.prevent_destroy:
        items["prevent_destroy"] = True
    if lc.ignore_changes:
        items["ignore_changes"] = [Expr(name) for name in lc.ignore_changes]
    return Block(items)


def _resource_items(resource: Resource | DataSource) -> dict[str, Value]:
    items: dict[str, Value] = {}
    if isinstance(resource, Resource):
        items["provider"] = resource.provider
        items["count"] = resource.count
        items["for_each"] = resource.for_each
    items.update(resource.body)
    if resource.depends_on:
        items["depends_on"] = [Expr(dep.address) for dep in resource.depends_on]
    if isinstance(resource, Resource) and resource.lifecycle and not resource.lifecycle.is_empty():
        items["lifecycle"] = _lifecycle(resource.lifecycle)
    return items


def resource_block(resource: Resource) -> list[str]:
    """The lines of one `resource` block, checkov skips included, as main.tf holds it."""
    return block("resource", (resource.type, resource.name), _resource_items(resource), 0,
                 comments=[f"checkov:skip={s.check_id}:{s.reason}" for s in resource.skips])


def _settings(settings: Settings) -> dict[str, Value]:
    items: dict[str, Value] = {"required_version": settings.required_version}
    if settings.required_providers:
        items["required_providers"] = Block(
            {name: {"source": p.source, "version": p.version} for name, p in settings.required_providers.items()}
        )
    if settings.backend is not None:
        items["backend"] = Block(settings.backend.config, (settings.backend.type,))
    return items


def _variable(var: Variable) -> dict[str, Value]:
    return {
        "description": var.description,
        "type": Expr(var.type) if var.type else None,
        "default": var.default,
        "sensitive": True if var.sensitive else None,
    }


def _output(out: Output) -> dict[str, Value]:
    return {
        "description": out.description,
        "value": out.value,
        "sensitive": True if out.sensitive else None,
    }


def _provider(provider: Provider) -> dict[str, Value]:
    return {"alias": provider.alias, **provider.body}


def _join(blocks: list[list[str]], header: str | None) -> str:
    parts = []
    if header:
        parts.append("\n".join(f"# {line}" if line else "#" for line in header.splitlines()))
    parts += ["\n".join(b) for b in blocks]
    return "\n\n".join(parts) + "\n"


def render_stack(stack: Stack) -> dict[str, str]:
    """File name -> HCL text, following the usual root-module file convention."""
    files: dict[str, str] = {}
    versions = [block("terraform", (), _settings(stack.settings), 0)]
    versions += [block("provider", (p.name,), _provider(p), 0) for p in stack.providers]
    files["versions.tf"] = _join(versions, stack.header)

    remote = [d for d in stack.data if d.type == "terraform_remote_state"]
    other_data = [d for d in stack.data if d.type != "terraform_remote_state"]
    main: list[list[str]] = []
    if stack.locals:
        main.append(block("locals", (), stack.locals, 0))
    main += [block("data", (d.type, d.name), _resource_items(d), 0) for d in other_data]
    main += [resource_block(r) for r in stack.resources]
    files["main.tf"] = _join(main, stack.header)
    if stack.variables:
        files["variables.tf"] = _join([block("variable", (v.name,), _variable(v), 0) for v in stack.variables],
                                      stack.header)
    if stack.outputs:
        files["outputs.tf"] = _join([block("output", (o.name,), _output(o), 0) for o in stack.outputs],
                                    stack.header)
    if remote:
        files["remote_state.tf"] = _join([block("data", (d.type, d.name), _resource_items(d), 0) for d in remote],
                                         stack.header)
    if stack.moved:
        files["moved.tf"] = _join([moved_block(m) for m in stack.moved], stack.header)
    return files


def moved_block(move: Moved) -> list[str]:
    """`moved { from = ..., to = ... }`: both are static addresses, written bare as Terraform requires."""
    return block("moved", (), {"from": Expr(move.source), "to": Expr(move.target)}, 0,
                 comments=[move.reason] if move.reason else [])
