"""namespaces.yaml: load, validate, and resolve the settings of each namespace.

The file has `defaults` and `namespaces.<name>`; a namespace is `defaults` deep-merged with its
own section. Every problem is reported on one line naming the file, the key path and the value,
and all of them are collected before anything is raised, so one run shows every mistake.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from . import pins
from .errors import NamespaceError

NAMESPACE_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$")
APPROVALS = ("auto", "manual")


@dataclass(frozen=True)
class AwsBackend:
    """S3 state backend; the state key is `<platform>/<namespace>/<template>.tfstate`."""

    bucket: str
    region: str
    kms_key_id: str | None = None


@dataclass(frozen=True)
class AwsSettings:
    account_id: str
    region: str
    backend: AwsBackend
    # A local AWS emulator (moto's server) that the provider and the state backend talk to instead
    # of AWS: for the `local` namespace, never for a real account.
    endpoint: str | None = None


@dataclass(frozen=True)
class AzureBackend:
    resource_group_name: str
    storage_account_name: str
    container_name: str


@dataclass(frozen=True)
class AzureSettings:
    subscription_id: str
    tenant_id: str
    location: str
    backend: AzureBackend


@dataclass(frozen=True)
class NotebookUser:
    """One notebook user: a SageMaker Studio user profile on AWS, an Azure ML compute instance
    assigned to the Entra ID object on Azure (aws/notebooks.py, azure/notebooks.py)."""

    name: str
    azure_object_id: str | None = None


@dataclass(frozen=True)
class Namespace:
    name: str
    approval: str
    tags: Mapping[str, str]
    aws: AwsSettings | None
    azure: AzureSettings | None
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    alert_emails: tuple[str, ...] = ()
    budget_monthly: float | None = None  # USD; None renders no budget
    source: str = "namespaces.yaml"
    # The platforms rendered in this namespace; None renders every platform.
    platforms: tuple[str, ...] | None = None
    # The model lifecycle: the namespace whose model package groups hold the versions served here
    # (the registry), the namespace a version must be served in before it may be served here, and,
    # for a registry, the other accounts that read its packages. On Azure the registry is an Azure ML
    # registry in the registry namespace's subscription (registry_azure; mlops_dsl/azureml/naming.py).
    registry: str = ""
    promoted_from: str | None = None
    registry_aws: AwsSettings | None = None
    registry_azure: AzureSettings | None = None
    consumer_accounts: tuple[str, ...] = ()
    # platform -> variant -> the pinned model version (models/<namespace>.yaml).
    pins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Opt-ins billed around the clock (README: Tracking in the cloud, Notebooks): the size of the
    # SageMaker managed MLflow tracking server (None: none), and the notebook users.
    tracking_server: str | None = None
    notebook_users: tuple[NotebookUser, ...] = ()

    @property
    def owns_registry(self) -> bool:
        return self.registry == self.name

    def renders(self, platform: str) -> bool:
        return self.platforms is None or platform in self.platforms


# --- schema -------------------------------------------------------------------------------------
# A schema node is a dict (a section with known keys) or a checker: value -> problem text or None.

Checker = Callable[[Any], "str | None"]


def _string(pattern: str, rule: str) -> Checker:
    regex = re.compile(pattern)

    def check(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and "digit" in rule:
            return f"expected {rule}; write it in quotes, since YAML reads bare digits as a number"
        if not isinstance(value, str) or not regex.fullmatch(value):
            return f"expected {rule}"
        return None

    return check


def _choice(*options: str) -> Checker:
    def check(value: Any) -> str | None:
        return None if value in options else "expected one of " + ", ".join(options)

    return check


def _tags(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "expected a mapping of tag names to string values"
    for key, val in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            return f"tag name {key!r}: expected 1 to 128 characters, not starting with 'aws:'"
        if not isinstance(val, str) or len(val) > 256:
            return f"tag {key!r} has value {val!r}: expected a string of at most 256 characters (quote numbers)"
    return None


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _emails(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and _EMAIL.fullmatch(v) for v in value):
        return "expected a list of e-mail addresses"
    return None


def _amount(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 10_000_000:
        return "expected a monthly amount in USD greater than 0 (a number, such as 2000)"
    return None


def _names(value: Any) -> str | None:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        return "expected a non-empty list of platform names"
    return None


_LOCAL_URL = re.compile(r"https?://(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\])(:\d{1,5})?/?")


def _endpoint(value: Any) -> str | None:
    if not isinstance(value, str) or not _LOCAL_URL.fullmatch(value):
        return "expected the URL of a local AWS emulator on this machine, such as http://127.0.0.1:4566"
    return None


_USER = re.compile(r"[a-z][a-z0-9-]{0,30}[a-z0-9]")
_GUID = re.compile(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}")


def _users(value: Any) -> str | None:
    """Notebook users: a name (a Studio user profile, a compute instance name's prefix), and on
    Azure the user's Entra ID object id, to which the compute instance is assigned."""
    if not isinstance(value, list) or not value:
        return "expected a non-empty list of users, each {name: alice, azure_object_id: <GUID>} or a name"
    names = []
    for user in value:
        entry = {"name": user} if isinstance(user, str) else user
        if not isinstance(entry, dict) or set(entry) - {"name", "azure_object_id"}:
            return f"user {user!r}: expected a name or a mapping with keys name, azure_object_id"
        name, object_id = entry.get("name"), entry.get("azure_object_id")
        if not isinstance(name, str) or not _USER.fullmatch(name):
            return f"user name {name!r}: expected 2 to 32 lowercase letters, digits and hyphens, starting with a letter"
        if object_id is not None and (not isinstance(object_id, str) or not _GUID.fullmatch(object_id)):
            return f"user {name!r}: azure_object_id {object_id!r}: expected an Entra ID object id (a lowercase GUID)"
        names.append(name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    return f"user {duplicates[0]!r} is listed twice" if duplicates else None


def _overrides(value: Any) -> str | None:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        return "expected a mapping of template name -> {parameter: value}"
    return None


_AWS_REGION = _string(r"[a-z]{2}(-[a-z]+)+-\d", "an AWS region such as eu-west-1")
SCHEMA: dict[str, Any] = {
    "approval": _choice(*APPROVALS),
    "platforms": _names,
    "tags": _tags,
    "aws": {
        "account_id": _string(r"\d{12}", "a 12-digit AWS account id"),
        "region": _AWS_REGION,
        "endpoint": _endpoint,
        "backend": {
            "bucket": _string(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name"),
            "region": _AWS_REGION,
            "kms_key_id": _string(r"arn:aws[a-z-]*:kms:.+|alias/.+", "a KMS key ARN or alias/<name>"),
        },
    },
    "azure": {
        "subscription_id": _string(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", "a subscription id (a UUID)"),
        "tenant_id": _string(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", "a tenant id (a UUID)"),
        "location": _string(r"[a-z][a-z0-9]+", "an Azure location such as westeurope"),
        "backend": {
            "resource_group_name": _string(r"[-\w.()]{1,90}", "a resource group name"),
            "storage_account_name": _string(r"[a-z0-9]{3,24}", "3 to 24 lowercase letters and digits"),
            "container_name": _string(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]", "a blob container name"),
        },
    },
    "alerts": {"emails": _emails},
    # A monthly cost budget per platform in this namespace, alerting alerts.emails (aws/budget.py, azure/budget.py).
    "budget": {"monthly": _amount},
    "models": {
        "registry": _string(NAMESPACE_PATTERN.pattern.strip("^$"), "a namespace name"),
        "promoted_from": _string(NAMESPACE_PATTERN.pattern.strip("^$"), "a namespace name"),
    },
    # A SageMaker managed MLflow tracking server per platform (aws/tracking.py; Azure's workspace
    # has its own tracking), and notebooks (aws/notebooks.py, azure/notebooks.py): both opt-in.
    "tracking": {"server": _choice("Small", "Medium", "Large")},
    "notebooks": {"users": _users},
    "overrides": _overrides,
}
OPT_INS = ("tracking", "notebooks")
REQUIRED = {
    "aws": ["account_id", "region", "backend.bucket"],
    "azure": ["subscription_id", "tenant_id", "location", "backend.resource_group_name",
              "backend.storage_account_name", "backend.container_name"],
}


def _check(node: Any, schema: Any, path: str, problems: list[str], source: str) -> None:
    if isinstance(schema, dict):
        if not isinstance(node, dict):
            problems.append(f"{source}: {path}: expected a mapping with keys {', '.join(schema)}; got {node!r}")
            return
        for key, value in node.items():
            if key not in schema:
                problems.append(f"{source}: {path}.{key}: unknown key (known keys: {', '.join(schema)})")
                continue
            if value is None and (key in REQUIRED or key in OPT_INS):
                continue  # `azure: null`, `tracking: null`: none here, whatever defaults say
            _check(value, schema[key], f"{path}.{key}", problems, source)
        return
    problem = schema(node)
    if problem:
        problems.append(f"{source}: {path}: {problem}; got {node!r}")


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _get(section: Mapping[str, Any], dotted: str) -> Any:
    node: Any = section
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate keys, which plain YAML silently overwrites."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse(text: str, source: str = "namespaces.yaml") -> dict[str, Namespace]:
    """Validate the whole document and resolve every namespace; raises NamespaceError."""
    try:
        doc = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise NamespaceError(f"{source}{where}: not valid YAML: {problem}") from None
    if not isinstance(doc, dict):
        raise NamespaceError(f"{source}: expected a mapping with keys 'defaults' and 'namespaces'; got {doc!r}")

    problems: list[str] = []
    for key in doc:
        if key not in ("defaults", "namespaces"):
            problems.append(f"{source}: {key}: unknown top-level key (known keys: defaults, namespaces)")
    defaults = doc.get("defaults") or {}
    _check(defaults, SCHEMA, "defaults", problems, source)
    spaces = doc.get("namespaces")
    if not isinstance(spaces, dict) or not spaces:
        problems.append(f"{source}: namespaces: expected a mapping of namespace name -> settings; got {spaces!r}")
        spaces = {}
    for name, section in spaces.items():
        if not isinstance(name, str) or not NAMESPACE_PATTERN.fullmatch(name):
            problems.append(f"{source}: namespaces.{name}: a namespace name must be 2 to 16 lowercase letters, "
                            f"digits and hyphens, starting with a letter")
        _check(section or {}, SCHEMA, f"namespaces.{name}", problems, source)
    if problems:
        raise NamespaceError(problems)

    resolved = {}
    for name, section in spaces.items():
        merged = _merge(defaults, section or {})
        for cloud, required in REQUIRED.items():
            if merged.get(cloud) is None:
                merged.pop(cloud, None)
                continue
            for key in required:
                if _get(merged[cloud], key) is None:
                    problems.append(f"{source}: namespaces.{name}.{cloud}.{key}: required, and set neither "
                                    f"here nor under defaults.{cloud}")
        resolved[name] = merged
    if problems:
        raise NamespaceError(problems)
    built = {name: _build(name, merged, source) for name, merged in resolved.items()}
    problems += _lifecycle_problems(built, source)
    problems += [f"{source}: namespaces.{n}.budget.monthly: a budget notifies alerts.emails, and namespace {n!r} "
                 "sets none; add alerts.emails or remove the budget"
                 for n, ns in built.items() if ns.budget_monthly is not None and not ns.alert_emails]
    problems += _opt_in_problems(built, resolved, source)
    if problems:
        raise NamespaceError(problems)
    return _with_registries(built)


def _opt_in_problems(spaces: Mapping[str, Namespace], merged: Mapping[str, dict[str, Any]],
                     source: str) -> list[str]:
    """Tracking and notebooks need a real cloud (the emulator has neither), and an Azure notebook
    is assigned to its user's Entra ID object, so every user of a namespace with Azure names one."""
    problems = []
    for name, ns in spaces.items():
        if ns.aws is not None and ns.aws.endpoint is not None:
            for key, on in (("tracking", ns.tracking_server), ("notebooks", ns.notebook_users)):
                if on:
                    problems.append(f"{source}: namespaces.{name}.{key}: the local AWS emulator has no "
                                    f"{'MLflow tracking server' if key == 'tracking' else 'SageMaker Studio'}; "
                                    f"remove it from this namespace (or from defaults)")
        if ns.tracking_server is not None and not ns.owns_registry:
            problems.append(f"{source}: namespaces.{name}.tracking: a tracking server records the training pipeline's "
                            f"runs, and {name!r} does not train (models.registry is {ns.registry!r}); opt in there; "
                            f"got {{server: {ns.tracking_server}}}")
        if ns.azure is not None:
            problems += [f"{source}: namespaces.{name}.notebooks.users: user {u.name!r} has no azure_object_id, "
                         f"which an Azure ML compute instance is assigned to; got {u.name!r}"
                         for u in ns.notebook_users if u.azure_object_id is None]
        if merged[name].get("tracking") == {}:
            problems.append(f"{source}: namespaces.{name}.tracking: expected {{server: Small|Medium|Large}}; got {{}}")
    return problems


def _lifecycle_problems(spaces: Mapping[str, Namespace], source: str) -> list[str]:
    """The registry and the promotion chain name namespaces that exist, share one registry, and end."""
    problems = []
    for ns in spaces.values():
        where = f"{source}: namespaces.{ns.name}.models"
        registry = spaces.get(ns.registry)
        if registry is None:
            problems.append(f"{where}.registry: no namespace {ns.registry!r} (namespaces: {', '.join(spaces)})")
        elif ns.aws is not None and registry.aws is None:
            problems.append(f"{where}.registry: {ns.registry!r} has no aws settings, so it holds no model registry")
        if ns.promoted_from is None:
            continue
        before = spaces.get(ns.promoted_from)
        if before is None:
            problems.append(f"{where}.promoted_from: no namespace {ns.promoted_from!r} (namespaces: "
                            f"{', '.join(spaces)})")
            continue
        if before.registry != ns.registry:
            problems.append(f"{where}.promoted_from: {ns.promoted_from!r} reads the registry of {before.registry!r}, "
                            f"{ns.name!r} that of {ns.registry!r}: one artifact moves along a chain, so both must "
                            f"read the same registry")
        seen, current = [ns.name], before
        while current is not None and current.promoted_from is not None:
            if current.name in seen:
                problems.append(f"{where}.promoted_from: the promotion chain is a cycle "
                                f"({' -> '.join([*seen, current.name])})")
                break
            seen.append(current.name)
            current = spaces.get(current.promoted_from)
    return problems


def _with_registries(spaces: dict[str, Namespace]) -> dict[str, Namespace]:
    """Each namespace with its registry's AWS and Azure settings, and each registry with its consumers' accounts."""
    out = {}
    for name, ns in spaces.items():
        registry = spaces[ns.registry]
        consumers = sorted({other.aws.account_id for other in spaces.values()
                            if other.registry == name and other.aws is not None and ns.aws is not None
                            and other.aws.account_id != ns.aws.account_id})
        out[name] = replace(ns, registry_aws=registry.aws, registry_azure=registry.azure,
                            consumer_accounts=tuple(consumers))
    return out


def _build(name: str, merged: dict[str, Any], source: str) -> Namespace:
    aws = azure = None
    if "aws" in merged:
        a = merged["aws"]
        backend = a["backend"]
        aws = AwsSettings(
            account_id=a["account_id"],
            region=a["region"],
            backend=AwsBackend(bucket=backend["bucket"], region=backend.get("region", a["region"]),
                               kms_key_id=backend.get("kms_key_id")),
            endpoint=(a.get("endpoint") or "").rstrip("/") or None,
        )
    if "azure" in merged:
        z = merged["azure"]
        azure = AzureSettings(
            subscription_id=z["subscription_id"],
            tenant_id=z["tenant_id"],
            location=z["location"],
            backend=AzureBackend(**z["backend"]),
        )
    return Namespace(
        name=name,
        approval=merged.get("approval", "auto"),
        tags=dict(sorted((merged.get("tags") or {}).items())),
        aws=aws,
        azure=azure,
        overrides=merged.get("overrides") or {},
        alert_emails=tuple((merged.get("alerts") or {}).get("emails") or ()),
        budget_monthly=(merged.get("budget") or {}).get("monthly"),
        source=source,
        platforms=tuple(merged["platforms"]) if "platforms" in merged else None,
        registry=(merged.get("models") or {}).get("registry") or name,
        promoted_from=(merged.get("models") or {}).get("promoted_from"),
        tracking_server=(merged.get("tracking") or {}).get("server"),
        notebook_users=tuple(
            NotebookUser(u, None) if isinstance(u, str) else NotebookUser(u["name"], u.get("azure_object_id"))
            for u in (merged.get("notebooks") or {}).get("users") or ()),
    )


def load(path: str | Path) -> dict[str, Namespace]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NamespaceError(f"{path}: not found; namespaces.yaml declares dev, staging, prod, ... "
                             f"(see the README's Namespaces section)") from None
    except UnicodeDecodeError as exc:
        raise NamespaceError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    spaces = parse(text, str(path))
    return {name: replace(ns, pins=pins.load(pins.path_for(path, name))) for name, ns in spaces.items()}
