"""Finding the terraform/tofu binary and a local provider mirror, for offline init.

Machines without registry access can still `terraform init` from a filesystem mirror; this
module finds one and writes the CLI configuration that points Terraform at it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MIRROR_ROOTS = (
    "/opt/tf-plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
)


def find_binary() -> str | None:
    """TF_BINARY if set, else terraform, else tofu, from PATH."""
    wanted = os.environ.get("TF_BINARY")
    if wanted:
        return shutil.which(wanted)
    return shutil.which("terraform") or shutil.which("tofu")


def find_mirror(provider: str = "aws") -> Path | None:
    """A filesystem mirror root holding registry.terraform.io/hashicorp/<provider>."""
    roots = [os.environ["MLOPS_TF_PLUGIN_MIRROR"]] if os.environ.get("MLOPS_TF_PLUGIN_MIRROR") else []
    for root in [*roots, *MIRROR_ROOTS]:
        path = Path(root).expanduser()
        if any((path / "registry.terraform.io" / "hashicorp" / provider).glob("*/*/terraform-provider-*")):
            return path
    return None


def mirrored_providers(mirror: Path) -> list[str]:
    """Source addresses (registry.terraform.io/hashicorp/aws, ...) of the providers a mirror holds."""
    base = mirror / "registry.terraform.io"
    return sorted(f"registry.terraform.io/{p.parent.name}/{p.name}" for p in base.glob("*/*")
                  if any(p.glob("*/*/terraform-provider-*")))


def cli_config(mirror: Path, plugin_cache: Path) -> str:
    """A CLI config that installs the providers `mirror` holds from it only (every other provider
    from its registry as usual), sharing one plugin cache."""
    listed = ", ".join(f'"{p}"' for p in mirrored_providers(mirror))
    return (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror}"\n'
        f"    include = [{listed}]\n"
        "  }\n"
        "  direct {\n"
        f"    exclude = [{listed}]\n"
        "  }\n"
        "}\n"
        f'plugin_cache_dir = "{plugin_cache}"\n'
        # Without this, every `init` of a stack whose fresh lock file has no checksums yet installs
        # the provider into the cache again (Terraform >= 1.4), replacing the files another stack's
        # plan is running from at that moment: "there is no package ... cached in .terraform/providers".
        # With it, the first init fills the cache and the others link to it; the mirror is the only source.
        "plugin_cache_may_break_dependency_lock_file = true\n"
    )
