"""A small stand-in for the terraform binary, for the runner's tests.

It records every call (with start and end times) in $FAKE_TF_DIR/calls.jsonl and answers in
Terraform's real formats: `version -json`, and `show -json <plan>` with `resource_changes`,
`output_changes` and `resource_drift` as Terraform 1.x writes them. State is one file per stack:
a stack with no state plans every resource and output as created; after `apply` it plans no-ops.
$FAKE_TF_DIR/scenario.json changes that per template: {"<template>": {"fail": "plan"|"apply"|
"destroy"|"drift", "sleep": seconds, "changes": [[address, [actions]]], "drift": [address]}}.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

HOME = Path(os.environ["FAKE_TF_DIR"])


def record(args: list[str], started: float) -> None:
    with (HOME / "calls.jsonl").open("a") as log:
        log.write(json.dumps({"cwd": os.getcwd(), "args": args, "start": started, "end": time.time()}) + "\n")


def stack_key() -> str:
    return "__".join(Path.cwd().parts[-3:])


def scenario() -> dict:
    path = HOME / "scenario.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    return data.get(Path.cwd().name, {})


def declared() -> tuple[list[str], list[str]]:
    text = "".join(p.read_text() for p in Path.cwd().glob("*.tf"))
    resources = [f"{t}.{n}" for t, n in re.findall(r'^resource "([^"]+)" "([^"]+)"', text, re.M)]
    outputs = re.findall(r'^output "([^"]+)"', text, re.M)
    return resources, outputs


def option(args: list[str], name: str) -> str | None:
    for arg in args:
        if arg.startswith(f"-{name}="):
            return arg.split("=", 1)[1]
    return None


def main() -> int:
    args = sys.argv[1:]
    started = time.time()
    command = args[0] if args else ""
    case = scenario()
    state = HOME / "state" / f"{stack_key()}.json"
    try:
        if command == "version":
            print(json.dumps({"terraform_version": os.environ.get("FAKE_TF_VERSION", "1.9.8"),
                              "platform": "linux_amd64", "provider_selections": {}, "terraform_outdated": False}))
            return 0
        time.sleep(case.get("sleep", 0) if command in ("apply", "destroy") else 0)
        refresh = "-refresh-only" in args
        if case.get("fail") == ("drift" if refresh else command):
            print(f"Error: simulated failure of {command}", file=sys.stderr)
            return 1
        if command == "init":
            print("Terraform has been successfully initialized!")
            return 0
        if command == "plan":
            out = option(args, "out")
            resources, outputs = declared()
            if refresh:
                drift = [{"address": a, "mode": "managed", "change": {"actions": ["update"]}}
                         for a in case.get("drift", [])]
                plan = {"format_version": "1.2", "resource_drift": drift, "resource_changes": []}
            else:
                exists = state.exists()
                changes = case.get("changes") or [[a, ["no-op"] if exists else ["create"]] for a in resources]
                plan = {
                    "format_version": "1.2",
                    "resource_changes": [{"address": a, "mode": "managed", "type": a.split(".")[0],
                                          "name": a.split(".")[1], "change": {"actions": acts}}
                                         for a, acts in changes],
                    "output_changes": {o: {"actions": ["no-op"] if exists else ["create"]} for o in outputs},
                }
            Path(out).write_text(json.dumps(plan))
            print("Saved the plan to: " + out)
            return 0
        if command == "show":
            print(Path(args[-1]).read_text())
            return 0
        if command == "apply":
            plan = json.loads(Path(args[-1]).read_text())
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text(json.dumps(plan))
            print("Apply complete!")
            return 0
        if command == "destroy":
            state.unlink(missing_ok=True)
            print("Destroy complete!")
            return 0
        print(f"fake terraform: unknown command {command}", file=sys.stderr)
        return 1
    finally:
        record(args, started)


if __name__ == "__main__":
    sys.exit(main())
