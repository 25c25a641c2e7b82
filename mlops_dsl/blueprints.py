"""Finding and loading blueprint files: Python modules that declare Platform objects.

A blueprint runs user code, so anything it raises is the user's mistake: it becomes one
BlueprintError line naming the file and line, never a traceback.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path

from .errors import BlueprintError, MlopsError
from .platform import Platform

DEFAULT_DIR = Path("blueprints")


def discover(directory: Path = DEFAULT_DIR) -> list[Path]:
    if not directory.is_dir():
        raise BlueprintError(f"{directory}/: no blueprint directory here; run from the project root "
                             f"or name a file with --blueprint")
    files = sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))
    if not files:
        raise BlueprintError(f"{directory}/: holds no blueprint (*.py) files")
    return files


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _line_in(path: Path, tb: object) -> int | None:
    """The deepest line of the blueprint file in a traceback: where the user's code failed."""
    target = str(path.resolve())
    line = None
    for frame, lineno in traceback.walk_tb(tb):  # type: ignore[arg-type]
        if str(Path(frame.f_code.co_filename).resolve()) == target:
            line = lineno
    return line


def load_file(path: Path) -> list[Platform]:
    """Run one blueprint and return the platforms it declares at module level."""
    shown = _display(path)
    if not path.is_file():
        raise BlueprintError(f"{shown}: no such blueprint file")
    module_name = f"mlops_blueprint_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # As `python blueprints/x.py` would: the blueprint's directory is importable while it runs, so a
    # team's own templates can live beside it (blueprints/team_templates/; README: Your own templates).
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except MlopsError as exc:
        line = _line_in(path, exc.__traceback__)
        where = f"{shown}:{line}: " if line else f"{shown}: "
        raise type(exc)([p if p.startswith(shown) else where + p for p in exc.problems]) from None
    except SyntaxError as exc:
        raise BlueprintError(f"{shown}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        line = _line_in(path, exc.__traceback__)
        where = f"{shown}:{line}" if line else shown
        raise BlueprintError(f"{where}: the blueprint raised {type(exc).__name__}: {exc}") from None
    finally:
        sys.modules.pop(module_name, None)
        sys.path.remove(str(path.resolve().parent))
    platforms = [v for v in vars(module).values() if isinstance(v, Platform)]
    if not platforms:
        raise BlueprintError(f"{shown}: declares no Platform at module level")
    for platform in platforms:
        platform.source = shown
        if not platform.templates:
            raise BlueprintError(f"{shown}: platform '{platform.name}' has no templates; add them with "
                                 f"platform.add(...)")
    return platforms


def load(files: list[Path] | None = None) -> list[Platform]:
    """All platforms from the given files (default: every blueprint in blueprints/)."""
    platforms: list[Platform] = []
    for path in files or discover():
        platforms += load_file(path)
    seen: dict[str, Platform] = {}
    for platform in platforms:
        if platform.name in seen:
            raise BlueprintError(f"platform '{platform.name}' is declared twice: in {seen[platform.name].source} "
                                 f"and in {platform.source}")
        seen[platform.name] = platform
        platform.edges()  # a cycle or an undeclared dependency fails here, before anything renders
    return platforms
