"""Model pins: which registered model version each variant serves, per namespace, as reviewed code.

`models/<namespace>.yaml` beside namespaces.yaml, one line per variant:

    customer-churn:
      champion: {version: 7, group: customer-churn-dev, image: 0123456789ab, sha256: <64 hex>, artifact: s3://...}

`version` and `group` name the model package; `artifact` is its model.tar.gz and `sha256` that
file's digest; `image` is the tag of the serving image the variant runs. On Azure `group` is the
model's name in the Azure ML registry, `artifact` the version's asset id
(`azureml://registries/<registry>/models/<model>/versions/<n>`, what the deployment's `model` names)
and `sha256` the digest of the model directory (mlops_dsl/azureml/registry.py directory_sha256).
`mlops synth` reads only this file (no cloud call), so the generated serving stack changes exactly
when a pin does, and a promotion is a one-line diff a reviewer reads as `champion: {version: 7`.

`write` changes one pin line and keeps every other line, comment and blank line as it was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import NamespaceError

FIELDS = ("version", "group", "image", "sha256", "artifact")
# Tags on each served SageMaker model: which variant, package and artifact it is (the plan summary reads them).
TAG_VARIANT = "mlops-dsl:variant"
TAG_PACKAGE = "mlops-dsl:model-package"
TAG_SHA256 = "mlops-dsl:artifact-sha256"
_RULES: dict[str, tuple[str, str]] = {
    "group": (r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "a model package group name"),
    "image": (r"[0-9a-f]{12}", "a 12-character image tag (the content hash `mlops images` pushes)"),
    "sha256": (r"[0-9a-f]{64}", "the 64 hex digits of the artifact's SHA-256"),
    "artifact": (r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+\.tar\.gz"
                 r"|azureml://registries/[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}/models/[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}"
                 r"/versions/[1-9][0-9]*",
                 "an s3:// URI of a model.tar.gz, or the azureml://registries/<registry>/models/<model>/versions/<n> "
                 "id of an Azure ML registry's model version"),
}
HEADER = """\
# The model version each variant serves in the {namespace} namespace: reviewed like code.
# `mlops models promote -n {namespace} --variant V --version N` writes these lines (README: the model lifecycle).
"""


@dataclass(frozen=True)
class Pin:
    version: int
    group: str
    image: str
    sha256: str
    artifact: str

    def line(self, variant: str) -> str:
        return (f"  {variant}: {{version: {self.version}, group: {self.group}, image: {self.image}, "
                f"sha256: {self.sha256}, artifact: {self.artifact}}}")

    def package_arn(self, partition: str, region: str, account_id: str) -> str:
        return package_arn(partition, region, account_id, self.group, self.version)


def package_arn(partition: str, region: str, account_id: str, group: str, version: int) -> str:
    """A versioned model package's ARN, as SageMaker names it."""
    return f"arn:{partition}:sagemaker:{region}:{account_id}:model-package/{group}/{version}"


def group_name(platform: str, registry: str) -> str:
    """The model package group of a platform in the namespace that owns the registry."""
    return f"{platform}-{registry}"


def path_for(namespaces_file: Path, namespace: str) -> Path:
    return namespaces_file.parent / "models" / f"{namespace}.yaml"


def _pin(value: Any, where: str, problems: list[str]) -> Pin | None:
    if not isinstance(value, Mapping):
        problems.append(f"{where}: expected {{{', '.join(f'{f}: ...' for f in FIELDS)}}}; got {value!r}")
        return None
    unknown = [k for k in value if k not in FIELDS]
    missing = [f for f in FIELDS if f not in value]
    for key in unknown:
        problems.append(f"{where}.{key}: unknown field (fields: {', '.join(FIELDS)})")
    for key in missing:
        problems.append(f"{where}.{key}: required")
    version = value.get("version")
    if "version" in value and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        problems.append(f"{where}.version: expected a package version (an integer >= 1); got {version!r}")
    for key, (pattern, rule) in _RULES.items():
        if key in value and not (isinstance(value[key], str) and re.fullmatch(pattern, value[key])):
            problems.append(f"{where}.{key}: expected {rule}; got {value[key]!r}")
    if unknown or missing or len(problems):
        return None
    return Pin(version=version, group=value["group"], image=value["image"], sha256=value["sha256"],  # type: ignore[arg-type]
               artifact=value["artifact"])


def parse(text: str, source: str) -> dict[str, dict[str, Pin]]:
    """platform -> variant -> Pin; NamespaceError naming the file, platform, variant and field."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise NamespaceError(f"{source}{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise NamespaceError(f"{source}: expected a mapping of platform -> variant -> pin; got {doc!r}")
    problems: list[str] = []
    pins: dict[str, dict[str, Pin]] = {}
    for platform, variants in doc.items():
        if not isinstance(variants, dict):
            problems.append(f"{source}: {platform}: expected a mapping of variant -> pin; got {variants!r}")
            continue
        for variant, value in variants.items():
            found: list[str] = []
            pin = _pin(value, f"{source}: {platform}.{variant}", found)
            problems += found
            if pin is not None:
                pins.setdefault(str(platform), {})[str(variant)] = pin
    if problems:
        raise NamespaceError(problems)
    return pins


def load(path: Path) -> dict[str, dict[str, Pin]]:
    """The pins of one namespace; none when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as exc:
        raise NamespaceError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse(text, str(path))


def updated(text: str, namespace: str, platform: str, variant: str, pin: Pin) -> str:
    """The file's text with one variant's pin set: its line replaced in place, or added under the
    platform (the platform added at the end when it has no section yet). Everything else is kept."""
    lines = text.splitlines()
    if not text.strip():
        lines = HEADER.format(namespace=namespace).splitlines()
    platform_at = next((i for i, line in enumerate(lines) if re.fullmatch(rf"{re.escape(platform)}:\s*(#.*)?", line)),
                       None)
    if platform_at is None:
        lines += [f"{platform}:", pin.line(variant)]
        return "\n".join(lines) + "\n"
    end = platform_at + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith((" ", "#"))):
        end += 1
    for i in range(platform_at + 1, end):
        if re.match(rf"\s+{re.escape(variant)}:", lines[i]):
            comment = re.search(r"\}\s*(#.*)$", lines[i])
            lines[i] = pin.line(variant) + (f"  {comment.group(1)}" if comment else "")
            return "\n".join(lines) + "\n"
    last = max((i for i in range(platform_at + 1, end) if lines[i].startswith(" ")), default=platform_at)
    lines.insert(last + 1, pin.line(variant))
    return "\n".join(lines) + "\n"


def write(path: Path, namespace: str, platform: str, variant: str, pin: Pin) -> None:
    """Set one pin, atomically: the new text is checked to parse to the intended pin first."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    new = updated(text, namespace, platform, variant, pin)
    if parse(new, str(path)).get(platform, {}).get(variant) != pin:
        raise NamespaceError(f"{path}: could not set the pin of {platform}.{variant} without rewriting the file; "
                             f"edit it by hand: {pin.line(variant).strip()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(path)
