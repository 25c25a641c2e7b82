"""Regenerate mlops_dsl/vendor/aws_floor/floor.json: what the pinned AWS bindings accept that the
lowest hashicorp/aws version of the declared range does not, and what that version requires.

`mlops validate --schema` reads argument names from the cdktn-provider-aws bindings, which are
generated from one hashicorp/aws 6.x release; the stacks declare `>= 5.100, < 7.0`, and the local
namespace runs 5.100 (the filesystem mirror). An argument added in 6.x (every resource's
`region`, for one) would pass the bindings and fail `terraform validate` on 5.100; an argument that
5.100 requires and 6.x made optional would not be asked for. This file lists both, per type, from
the real 5.100 schema (`terraform providers schema -json` of the mirrored provider) compared with
the installed bindings, so validate can hold every argument to both ends of the range.

Usage (from the repository root, with the `cdktn` extra installed and a mirror of the provider):

    python tools/vendor_aws_floor.py [--version 5.100.0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlops_dsl import bindings, toolchain  # noqa: E402

OUT = ROOT / "mlops_dsl" / "vendor" / "aws_floor" / "floor.json"
SOURCE = "registry.terraform.io/hashicorp/aws"


def provider_schema(version: str) -> dict[str, Any]:
    """The provider's schema as `terraform providers schema -json` prints it, installed offline
    from the local mirror."""
    binary, mirror = toolchain.find_binary(), toolchain.find_mirror("aws")
    if binary is None or mirror is None:
        raise SystemExit("needs terraform (or tofu) and a local filesystem mirror of hashicorp/aws")
    with tempfile.TemporaryDirectory(prefix="aws-floor-") as tmp:
        work = Path(tmp)
        (work / "cache").mkdir()
        (work / "rc").write_text(toolchain.cli_config(mirror, work / "cache"))
        (work / "main.tf").write_text('terraform {\n  required_providers {\n'
                                      f'    aws = {{ source = "hashicorp/aws", version = "{version}" }}\n  }}\n}}\n')
        env = {"TF_CLI_CONFIG_FILE": str(work / "rc"), "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1",
               "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": tmp}
        subprocess.run([binary, "init", "-input=false", "-no-color", "-backend=false"], cwd=work, env=env,
                       check=True, capture_output=True)
        out = subprocess.run([binary, "providers", "schema", "-json"], cwd=work, env=env, check=True,
                             capture_output=True, text=True).stdout
    return json.loads(out)["provider_schemas"][SOURCE]


def _settable(attribute: dict[str, Any]) -> bool:
    return bool(attribute.get("required") or attribute.get("optional"))


def compare(floor: dict[str, Any], schema: bindings.Schema, path: str = "") -> dict[str, list[str]]:
    """Argument paths the bindings accept that `floor` (a schema block) lacks or only computes, and
    paths `floor` requires that the bindings do not; nested blocks in both are compared in turn."""
    attributes, nested = floor.get("attributes", {}), floor.get("block_types", {})
    added: list[str] = []
    required: list[str] = []
    for name, spec in schema.fields.items():
        if name in attributes and _settable(attributes[name]):
            continue
        if name in nested:
            if spec.kind == "block" and spec.block:
                sub = compare(nested[name]["block"], bindings.block(schema, "aws", spec.block), f"{path}{name}.")
                added += sub["added"]
                required += sub["required"]
            continue
        added.append(path + name)
    for name, attribute in attributes.items():
        if attribute.get("required") and not (name in schema.fields and schema.fields[name].required):
            required.append(path + name)
    for name, block_type in nested.items():
        if block_type.get("min_items", 0) > 0 and not (name in schema.fields and schema.fields[name].required):
            required.append(path + name)
    return {"added": added, "required": required}


def build(version: str) -> dict[str, Any]:
    floor = provider_schema(version)
    out: dict[str, Any] = {
        "provider": "hashicorp/aws", "version": version, "bindings": bindings.describe("aws"),
        "types_added": {}, "arguments": {},
    }
    for kind, key in (("resource", "resource_schemas"), ("data", "data_source_schemas")):
        added_types, arguments = [], {}
        for type_name in bindings.known_types("aws", kind == "data"):
            schema = bindings.resource(type_name, kind == "data")
            if schema is None:
                continue
            if type_name not in floor[key]:
                added_types.append(type_name)
                continue
            found = {k: v for k, v in compare(floor[key][type_name]["block"], schema).items() if v}
            if found:
                arguments[type_name] = found
        out["types_added"][kind] = added_types
        out["arguments"][kind] = arguments
    config = bindings.provider_config("aws")
    if config is not None:
        found = compare(floor["provider"]["block"], config)
        found["added"].remove("alias")  # a meta-argument of every provider block, in no provider's schema
        out["arguments"]["provider"] = {"aws": {k: v for k, v in found.items() if v}}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default="5.100.0", help="the hashicorp/aws version of the range's lower bound")
    args = parser.parse_args()
    data = build(args.version)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    counts = {k: len(v) for k, v in data["arguments"].items()}
    print(f"{OUT.relative_to(ROOT)}: hashicorp/aws {args.version} against {data['bindings']}: "
          f"{len(data['types_added']['resource'])} resource and {len(data['types_added']['data'])} data source types "
          f"added since, argument differences in {counts}")


if __name__ == "__main__":
    main()
