"""`mlops init`: a new project's files, rendered in memory, then moved into place all at once.

A new project gets a blueprint, namespaces.yaml, a Makefile with this repository's targets, CI,
a small README and tests, all rendered from the templates in `scaffold_files/` (package data, so
a wheel install has them), plus copies of the training/ and serving/ code of an mlops-dsl
checkout. Copies rather than a dependency: an `Image("training")` is a build context directory
under the project's root (templates/image.py, synth.image_tags), the image tag is a hash of that
directory (images.py), `make train` and the emulator's model server run `python -m training` and
`python -m serving` from the working directory, and the training code is the team's to change.

`project_files()` is plain data in, plain data out; `create()` is the only side effect: it writes
into a fresh temporary directory and renames it (or, for an existing empty directory, its
entries) into place, so a failure leaves no half-written project behind.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import MlopsError, OperationError
from .platform import CLOUDS, PLATFORM_PATTERN

TEMPLATES = Path(__file__).with_name("scaffold_files")
CODE_DIRS = ("training", "serving")
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")  # `${{ github.x }}` in the workflows has spaces: not ours
CLOUD_ONLY = re.compile(r"\s*# (aws|azure)-only$")
EXECUTABLE = {".ci/run"}  # set here, not read from the template's mode: a wheel may not keep it
NAMESPACES = {"aws": ("dev", "staging", "prod", "local"), "azure": ("dev", "staging", "prod")}

# Where each template goes in the new project. Template names have no leading dot: setuptools'
# package-data globs do not match hidden files.
LAYOUT: dict[str, str] = {
    "README.md": "README.md",
    "Makefile": "Makefile",
    "requirements.txt": "requirements.txt",
    ".gitignore": "gitignore",
    "ruff.toml": "ruff_toml",  # not ruff.toml here: ruff would lint this package's templates by it
    ".ci/run": "ci_run",
    "namespaces.yaml": "{cloud}/namespaces.yaml",
    "blueprints/{module}.py": "{cloud}/blueprint.py",
    "examples/github-actions/mlops.yml": "{cloud}/mlops.yml",
    "tests/test_project.py": "tests/test_project.py",
}


class ScaffoldError(MlopsError):
    """A new project that cannot be created as asked: a bad name, directory or source."""


@dataclass(frozen=True)
class File:
    content: bytes
    executable: bool = False


@dataclass(frozen=True)
class Dependency:
    """How the new project installs mlops-dsl: a requirements.txt line, and a wheel to ship with it."""

    requirement: str
    described: str  # completes "this project installs it ..."
    wheel: Path | None = None


def extras(source: Path) -> str:
    """Every extra of the checkout's mlops-dsl, comma-separated: what its own `make setup` installs and
    the Makefile's targets need (the ML code, the emulator, the provider bindings, the test tools)."""
    project = tomllib.loads((source / "pyproject.toml").read_text("utf-8")).get("project", {})
    return ",".join(project.get("optional-dependencies", {}))


def _with_extras(requirement: str, names: str) -> str:
    return f"{requirement}[{names}]" if names else requirement


def name_problems(name: str, where: str) -> list[str]:
    if PLATFORM_PATTERN.fullmatch(name):
        return []
    return [f"{where}: {name!r} is not a platform name: 3 to 24 lowercase letters, digits and hyphens, starting "
            f"with a letter and not ending with a hyphen (it becomes part of bucket names)"]


def default_name(directory: Path) -> str:
    """The platform name a directory suggests: its own name, lowercased, `_`, `.` and spaces as hyphens."""
    return re.sub(r"[_. ]+", "-", directory.resolve().name.lower()).strip("-")


def source_problems(source: Path) -> list[str]:
    """What an mlops-dsl checkout lacks for `mlops init` to copy its code and depend on it."""
    problems = []
    try:
        name = tomllib.loads((source / "pyproject.toml").read_text("utf-8")).get("project", {}).get("name")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        name = None
    if name != "mlops-dsl":
        problems.append(f"--source {source}: not an mlops-dsl checkout (no pyproject.toml with name = \"mlops-dsl\")")
    problems += [f"--source {source}: no {d}/Dockerfile to copy" for d in CODE_DIRS
                 if not (source / d / "Dockerfile").is_file()]
    return problems


def installed_checkout() -> Path | None:
    """The checkout this mlops_dsl runs from (an editable install), or None for a wheel install."""
    root = Path(__file__).resolve().parents[1]
    return None if source_problems(root) else root


def path_dependency(source: Path) -> Dependency:
    return Dependency(f"{_with_extras('mlops-dsl', extras(source))} @ {source.resolve().as_uri()}",
                      f"from the mlops-dsl checkout at {source.resolve()} (a path: it exists on this machine only)")


def wheel_dependency(wheel: Path, source: Path) -> Dependency:
    if not wheel.is_file() or not re.fullmatch(r"mlops_dsl-[^-]+-.+\.whl", wheel.name):
        raise ScaffoldError(f"--wheel {wheel}: not an mlops-dsl wheel file (mlops_dsl-<version>-...whl; build one "
                            f"with `python -m pip wheel --no-deps /path/to/mlops-dsl -w wheels/`)")
    return Dependency(_with_extras(f"./wheels/{wheel.name}", extras(source)),
                      f"from the wheel wheels/{wheel.name}, committed with the project", wheel)


def _storage_account(name: str, namespace: str) -> str:
    """A state storage account name: 3 to 24 lowercase letters and digits (namespaces.py checks it)."""
    return f"{name.replace('-', '')[:15]}tf{namespace}"[:24]


def _render(template: str, cloud: str, values: dict[str, str]) -> str:
    lines = []
    for line in template.splitlines(keepends=True):
        marked = CLOUD_ONLY.search(line.rstrip("\n"))
        if marked and marked.group(1) != cloud:
            continue
        lines.append(CLOUD_ONLY.sub("", line.rstrip("\n")) + "\n" if marked else line)

    def value(match: re.Match[str]) -> str:
        return values[match.group(1)]  # a KeyError here is a template bug, not a user's mistake

    return PLACEHOLDER.sub(value, "".join(lines))


def _values(name: str, cloud: str, source: Path, dependency: Dependency) -> dict[str, str]:
    spaces = NAMESPACES[cloud]
    return {
        "name": name,
        "module": name.replace("-", "_"),
        "cloud": cloud,
        "cloud_title": {"aws": "AWS", "azure": "Azure"}[cloud],
        "default_env": "local" if "local" in spaces else "dev",
        "namespaces_list": ", ".join(f"`{s}`" for s in spaces),
        "requirement": dependency.requirement,
        "extras": extras(source),
        "dependency_how": dependency.described,
        "start_plan": ("make plan ENV=local  # a real terraform plan against the local AWS emulator: no account"
                       if cloud == "aws" else
                       "make plan ENV=dev    # needs the Azure subscription: there is no Azure emulator"),
        **{f"storage_{s}": _storage_account(name, s) for s in spaces},
    }


def _code(source: Path, name: str) -> dict[str, File]:
    """training/ and serving/ as they are in the checkout (caches left out); the training
    configuration's `platform` (its MLflow experiment and registered model) renamed."""
    files = {}
    for directory in CODE_DIRS:
        for root, dirs, names in os.walk(source / directory):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
            for file in sorted(names):
                if file.endswith(".pyc"):
                    continue
                path = Path(root) / file
                files[path.relative_to(source).as_posix()] = File(path.read_bytes(), os.access(path, os.X_OK))
    config = files.get("training/config.yaml")
    text = config.content.decode("utf-8") if config else ""
    renamed, count = re.subn(r"(?m)^platform:[ \t]*[^\s#]+", f"platform: {name}", text)
    if count != 1:
        raise ScaffoldError(f"{source / 'training' / 'config.yaml'}: no top-level `platform:` line to name the "
                            f"model {name!r} by")
    files["training/config.yaml"] = File(renamed.encode("utf-8"))
    return files


def project_files(name: str, cloud: str, source: Path, dependency: Dependency) -> dict[str, File]:
    """Every file of the new project, by path relative to its root."""
    problems = name_problems(name, "--name")
    if cloud not in CLOUDS:
        problems.append(f"--cloud: one of {', '.join(CLOUDS)}. Got {cloud!r} instead.")
    problems += source_problems(source)
    if problems:
        raise ScaffoldError(problems)
    values = _values(name, cloud, source, dependency)
    files = _code(source, name)
    for target, template in LAYOUT.items():
        path = TEMPLATES / template.format(cloud=cloud)
        text = _render(path.read_text(encoding="utf-8"), cloud, values)
        files[target.format(module=values["module"])] = File(text.encode("utf-8"), target in EXECUTABLE)
    if dependency.wheel is not None:
        files[f"wheels/{dependency.wheel.name}"] = File(dependency.wheel.read_bytes())
    return files


def check_target(directory: Path) -> None:
    """The new project's directory must not exist yet, or be empty, and its parent must exist."""
    if directory.is_dir():
        held = sorted(p.name for p in directory.iterdir())
        if held:
            shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
            raise ScaffoldError(f"{directory}: not empty (holds {shown}); mlops init writes only into a new or "
                                f"empty directory")
    elif directory.exists():
        raise ScaffoldError(f"{directory}: exists and is not a directory")
    elif not directory.resolve().parent.is_dir():
        raise ScaffoldError(f"{directory}: its parent directory {directory.resolve().parent} does not exist")


def _write(staging: Path, files: dict[str, File]) -> None:
    for rel, file in sorted(files.items()):
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.content)
        if file.executable:  # execute where the umask lets read: rw-r--r-- becomes rwxr-xr-x
            mode = path.stat().st_mode
            path.chmod(mode | (mode & 0o444) >> 2)


def _move_into(staging: Path, target: Path) -> None:
    """Move staging's entries into the (empty) target, or none of them: the target directory itself
    stays, so a shell whose working directory it is (`mlops init .`) sees the project."""
    moved: list[Path] = []
    try:
        for entry in sorted(staging.iterdir()):
            os.rename(entry, target / entry.name)
            moved.append(entry)
    except OSError:
        for entry in reversed(moved):
            os.rename(target / entry.name, entry)
        raise
    staging.rmdir()


def create(directory: Path, files: dict[str, File]) -> None:
    """Write `files` into a new or empty directory at `directory`: all of them, or (on any failure) none.

    Everything is written to a temporary directory first: beside `directory` when it does not exist
    yet (then renamed to it in one step), inside it when it exists and is empty (then its entries are
    moved up, on the same filesystem)."""
    check_target(directory)
    target = directory.resolve()
    existing = target.is_dir()
    staging = Path(tempfile.mkdtemp(prefix=".mlops-init-", dir=target if existing else target.parent))
    try:
        _write(staging, files)
        if existing:
            _move_into(staging, target)
        else:
            # mkdtemp made the directory private (0700); give it the mode a plain mkdir would.
            probe = (staging / "README.md").stat().st_mode & 0o777
            staging.chmod(probe | (probe & 0o444) >> 2)
            os.rename(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OperationError(f"{directory}: could not create the project ({exc.strerror or exc}); nothing was "
                             f"written") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
