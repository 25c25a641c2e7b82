"""Regenerate mlops_dsl/vendor/floors/<provider>.json: what the pinned bindings accept that the
lowest provider version of the declared range does not, and what that version requires.

`mlops validate --schema` reads argument names from the cdktn-provider-* bindings, each generated
from one recent provider release, while the stacks declare ranges that start lower: hashicorp/aws
`>= 5.100, < 7.0` (the bindings are 6.x; the local namespace runs 5.100 from the filesystem mirror)
and hashicorp/azurerm `>= 4.55, < 5.0`. An argument added after the lower bound (every AWS
resource's `region` since 6.0, for one) would pass the bindings and fail on the lower bound; an
argument the lower bound requires and a later release made optional would not be asked for. The
floor file lists both, per type, so validate can hold every argument to both ends of the range.

The lower bound's schema comes from one of:

- the provider itself: `terraform providers schema -json` of the version in the local mirror
  (`--version`; hashicorp/aws 5.100.0 here);
- a bindings package generated from it (`--from-bindings`, a Python package name importable from
  `--path`): azurerm has no binary here, but cdktf-cdktf-provider-azurerm 14.23.1 is generated from
  azurerm 4.55.0 exactly (`pip install --no-deps --target DIR cdktf-cdktf-provider-azurerm==14.23.1`).

Usage (from the repository root, with the `cdktn` extra installed):

    python tools/vendor_floors.py aws --version 5.100.0
    python tools/vendor_floors.py azurerm --from-bindings cdktf_cdktf_provider_azurerm --path DIR
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlops_dsl import bindings, toolchain  # noqa: E402

OUT = ROOT / "mlops_dsl" / "vendor" / "floors"


def provider_schema(provider: str, version: str) -> dict[str, Any]:
    """The provider's schema as `terraform providers schema -json` prints it, installed offline
    from the local mirror."""
    binary, mirror = toolchain.find_binary(), toolchain.find_mirror(provider)
    if binary is None or mirror is None:
        raise SystemExit(f"needs terraform (or tofu) and a local filesystem mirror of hashicorp/{provider}")
    with tempfile.TemporaryDirectory(prefix="floor-") as tmp:
        work = Path(tmp)
        (work / "cache").mkdir()
        (work / "rc").write_text(toolchain.cli_config(mirror, work / "cache"))
        (work / "main.tf").write_text('terraform {\n  required_providers {\n'
                                      f'    {provider} = {{ source = "hashicorp/{provider}", version = "{version}" }}\n'
                                      '  }\n}\n')
        env = {"TF_CLI_CONFIG_FILE": str(work / "rc"), "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1",
               "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": tmp}
        subprocess.run([binary, "init", "-input=false", "-no-color", "-backend=false"], cwd=work, env=env,
                       check=True, capture_output=True)
        out = subprocess.run([binary, "providers", "schema", "-json"], cwd=work, env=env, check=True,
                             capture_output=True, text=True).stdout
    return json.loads(out)["provider_schemas"][f"registry.terraform.io/hashicorp/{provider}"]


def _as_block(provider: str, schema: bindings.Schema) -> dict[str, Any]:
    """A bindings schema in the layout of `terraform providers schema -json` (what compare reads)."""
    attributes, nested = {}, {}
    for name, spec in schema.fields.items():
        if spec.kind == "block" and spec.block:
            nested[name] = {"block": _as_block(provider, bindings.block(schema, provider, spec.block)),
                            "min_items": 1 if spec.required else 0}
        else:
            attributes[name] = {"required": spec.required, "optional": not spec.required}
    return {"attributes": attributes, "block_types": nested}


def schema_from_bindings(provider: str, package: str) -> tuple[dict[str, Any], str]:
    """Every type's schema from an older bindings package, and the provider version it was generated
    from (its README's first line)."""
    caches = (bindings.package_dir, bindings._modules, bindings._module)
    current = bindings.PACKAGES[provider]
    bindings.PACKAGES[provider] = package
    for cached in caches:
        cached.cache_clear()
    try:
        out: dict[str, Any] = {"resource_schemas": {}, "data_source_schemas": {}}
        for data, key in ((False, "resource_schemas"), (True, "data_source_schemas")):
            for type_name in bindings.known_types(provider, data):
                schema = bindings.resource(type_name, data)
                if schema is not None:
                    out[key][type_name] = {"block": _as_block(provider, schema)}
        config = bindings.provider_config(provider)
        out["provider"] = {"block": _as_block(provider, config) if config else {}}
    finally:
        bindings.PACKAGES[provider] = current
        for cached in caches:
            cached.cache_clear()
    names = importlib.metadata.packages_distributions().get(package, [])
    meta = importlib.metadata.metadata(names[0]) if names else None
    found = bindings._GENERATED_FROM.search(meta.get("Description") or meta.get_payload() or "") if meta else None  # type: ignore[attr-defined]
    if not found:
        raise SystemExit(f"{package}: cannot tell which provider version it was generated from")
    return out, found[2]


def _settable(attribute: dict[str, Any]) -> bool:
    return bool(attribute.get("required") or attribute.get("optional"))


def compare(provider: str, floor: dict[str, Any], schema: bindings.Schema, path: str = "") -> dict[str, list[str]]:
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
                sub = compare(provider, nested[name]["block"], bindings.block(schema, provider, spec.block),
                              f"{path}{name}.")
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


def build(provider: str, floor: dict[str, Any], version: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "provider": f"hashicorp/{provider}", "version": version, "bindings": bindings.describe(provider),
        "types_added": {}, "arguments": {},
    }
    for kind, key in (("resource", "resource_schemas"), ("data", "data_source_schemas")):
        added_types, arguments = [], {}
        for type_name in bindings.known_types(provider, kind == "data"):
            schema = bindings.resource(type_name, kind == "data")
            if schema is None:
                continue
            if type_name not in floor[key]:
                added_types.append(type_name)
                continue
            found = {k: v for k, v in compare(provider, floor[key][type_name]["block"], schema).items() if v}
            if found:
                arguments[type_name] = found
        out["types_added"][kind] = added_types
        out["arguments"][kind] = arguments
    config = bindings.provider_config(provider)
    if config is not None:
        found = compare(provider, floor["provider"]["block"], config)
        # alias is a meta-argument of every provider block, in no provider's schema
        found["added"] = [p for p in found["added"] if p != "alias"]
        out["arguments"]["provider"] = {provider: {k: v for k, v in found.items() if v}}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("provider", choices=sorted(bindings.PACKAGES))
    parser.add_argument("--version", help="the lower bound's version, from the local mirror's provider")
    parser.add_argument("--from-bindings", help="a bindings package generated from the lower bound instead")
    parser.add_argument("--path", type=Path, help="where --from-bindings is installed (pip --target)")
    args = parser.parse_args()
    if args.from_bindings:
        if args.path:
            sys.path.insert(0, str(args.path.resolve()))
        floor, version = schema_from_bindings(args.provider, args.from_bindings)
    elif args.version:
        floor, version = provider_schema(args.provider, args.version), args.version
    else:
        raise SystemExit("give --version (from the mirror) or --from-bindings")
    data = build(args.provider, floor, version)
    target = OUT / f"{args.provider}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    counts = {k: len(v) for k, v in data["arguments"].items()}
    print(f"{target.relative_to(ROOT)}: hashicorp/{args.provider} {version} against {data['bindings']}: "
          f"{len(data['types_added']['resource'])} resource and {len(data['types_added']['data'])} data source types "
          f"added since, argument differences in {counts}")


if __name__ == "__main__":
    main()
