"""The terraform (or tofu) binary: finding it, checking its version, running it for one stack.

Every call is non-interactive (`-input=false`, TF_IN_AUTOMATION) and its whole output goes to the
stack's log under `.mlops/logs/`, so parallel stacks never interleave on the terminal and a
failure can be read in full afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import toolchain
from ..errors import OperationError

MIN_VERSION = (1, 6)
# Terraform's plugin cache is not safe for concurrent installs: one `init` at a time.
_INIT_LOCK = threading.Lock()


class StackFailed(Exception):
    """A terraform command failed for one stack; the message ends with the last lines it printed."""


@dataclass
class Terraform:
    binary: str
    version: str
    env: dict[str, str] = field(default_factory=dict)
    logs: Path = Path(".mlops/logs")

    @property
    def label(self) -> str:
        return f"{Path(self.binary).name} {self.version}"

    def run(self, cwd: Path, log_name: str, *args: str, env: Mapping[str, str | None] | None = None,
            ok_codes: tuple[int, ...] = (0,), timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        log = self.logs / f"{log_name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        command = [self.binary, *args]
        merged = {**os.environ, **self.env, **(env or {})}  # None removes a variable
        # The serving stack's update step runs `mlops update-endpoint`: this interpreter's command.
        merged["PATH"] = os.pathsep.join(p for p in (str(Path(sys.executable).parent), merged.get("PATH")) if p)
        result = subprocess.run(command, cwd=cwd, env={k: v for k, v in merged.items() if v is not None},
                                capture_output=True, text=True, timeout=timeout, check=False)
        with log.open("a", encoding="utf-8") as handle:
            handle.write(f"$ {' '.join(command)}   (in {cwd}, exit {result.returncode})\n")
            handle.write(result.stdout)
            handle.write(result.stderr)
        if result.returncode not in ok_codes:
            raise StackFailed(f"`{Path(self.binary).name} {args[0]}` exited {result.returncode}: "
                              f"{_last_error(result.stderr or result.stdout)} (full output: {log})")
        return result

    def init(self, cwd: Path, log_name: str, env: Mapping[str, str | None] | None = None) -> None:
        with _INIT_LOCK:
            self.run(cwd, log_name, "init", "-input=false", "-no-color", env=env)

    def show_json(self, cwd: Path, log_name: str, plan: Path,
                  env: Mapping[str, str | None] | None = None) -> dict[str, Any]:
        result = self.run(cwd, log_name, "show", "-json", "-no-color", str(plan.resolve()), env=env)
        return json.loads(result.stdout)


def _last_error(text: str) -> str:
    """The first `Error:` line and the line after it, else the last non-empty line.

    A failed provisioner's own message (the update step's "rolled back ...") comes after Terraform's
    "Output:", so there the last `Error:` line of that output is the one that says why.
    """
    lines = [ln.strip(" │╷╵") for ln in text.splitlines()]
    lines = [ln for ln in lines if ln.strip()]
    ran = [i for i, line in enumerate(lines) if line.startswith("Error running command")]
    if ran:  # Terraform wraps the output at 78 columns: the message runs to the end
        said = [i for i in range(ran[0], len(lines)) if lines[i].startswith("Error:")]
        return "a provisioner failed: " + " ".join(lines[said[-1]:] if said else lines[-1:])
    for i, line in enumerate(lines):
        if line.startswith("Error:"):
            return " ".join(lines[i:i + 2])
    return lines[-1] if lines else "no output"


def parse_version(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    if not match:
        raise ValueError(text)
    return tuple(int(p) for p in match.groups())


def locate(workdir: Path) -> Terraform | None:
    """The binary (TF_BINARY, else terraform, else tofu on PATH), checked to be >= 1.6; None if absent.

    Where the machine has a local mirror of the hashicorp providers and the user has no CLI config
    of their own, Terraform is pointed at the mirror, so `init` works without a registry.
    """
    wanted = os.environ.get("TF_BINARY")
    binary = toolchain.find_binary()
    if binary is None:
        if wanted:
            raise OperationError(f"TF_BINARY={wanted}: no such executable on PATH")
        return None
    result = subprocess.run([binary, "version", "-json"], capture_output=True, text=True, check=False)
    try:
        version = json.loads(result.stdout)["terraform_version"]
        parsed = parse_version(version)
    except (ValueError, KeyError, TypeError):
        raise OperationError(f"{binary}: could not read its version from `{binary} version -json` "
                             f"(exit {result.returncode}); mlops needs terraform or tofu >= 1.6") from None
    if parsed[:2] < MIN_VERSION:
        raise OperationError(f"{binary} is version {version}; mlops needs terraform or tofu >= "
                             f"{'.'.join(map(str, MIN_VERSION))} (set TF_BINARY to another binary)")
    env = {"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}
    named = os.environ.get("TF_CLI_CONFIG_FILE")
    user_config = Path(named).expanduser().exists() if named else any(
        Path(p).expanduser().exists() for p in ("~/.terraformrc", "~/terraform.rc"))
    mirror = toolchain.find_mirror("aws")
    if not user_config and mirror is not None:
        cache = (workdir / "plugin-cache").resolve()
        cache.mkdir(parents=True, exist_ok=True)
        config = workdir / "terraformrc"
        config.write_text(toolchain.cli_config(mirror, cache))
        env["TF_CLI_CONFIG_FILE"] = str(config.resolve())
    return Terraform(binary, version, env, workdir / "logs")
