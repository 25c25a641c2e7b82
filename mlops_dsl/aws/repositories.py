"""ECR repositories of a platform's images: immutable content-hash tags, scanned, on the platform's key."""

from __future__ import annotations

from ..context import StackContext
from ..templates.training import TrainingInfrastructure
from ..terraform import Block, Expr, Resource, jsonencode


def repository_name(platform: str, namespace: str, repository: str) -> str:
    """The ECR repository of an image; `mlops images` pushes to the same name."""
    return f"{platform}-{namespace}/{repository}"


def repositories(t: TrainingInfrastructure, ctx: StackContext, key_arn: Expr) -> dict[str, Resource]:
    """One repository per image role (training, serving), each with its lifecycle policy."""
    repos = {}
    for role_name, image in t.images.items():
        name = image.repository
        repo = Resource("aws_ecr_repository", role_name, {
            "name": repository_name(ctx.platform, ctx.namespace.name, name),
            # Tags are content hashes: a tag must always mean the same image.
            "image_tag_mutability": "IMMUTABLE",
            "image_scanning_configuration": Block({"scan_on_push": True}),
            "encryption_configuration": Block({"encryption_type": "KMS", "kms_key": key_arn}),
        })
        repos[role_name] = repo
        pinned = sorted({pin.image for pin in ctx.namespace.pins.get(ctx.platform, {}).values()}) \
            if role_name == "serving" else []
        ctx.stack.add(repo, Resource("aws_ecr_lifecycle_policy", role_name, {
            "repository": repo.attr("name"),
            "policy": jsonencode({"rules": lifecycle_rules(pinned, t.keep_images)}),
        }))

    return repos


def lifecycle_rules(pinned: list[str], keep: int) -> list[dict[str, object]]:
    """Expire all but the newest `keep` images, never one a pin of this namespace serves.

    ECR evaluates rules by priority, and "an image that matches the tagging requirements of a rule
    cannot be expired by a rule with a lower priority": one rule per pinned tag that selects only
    that image (a tag is a content hash, so one image) and never reaches its count, then the rule
    for everything else. One rule per tag, because a rule's tagPrefixList selects images carrying
    all of its prefixes.
    """
    rules: list[dict[str, object]] = [{
        "rulePriority": i,
        "description": f"Keep {tag}: pinned in models/ (a model serves it)",
        "selection": {"tagStatus": "tagged", "tagPrefixList": [tag], "countType": "imageCountMoreThan",
                      "countNumber": 1},
        "action": {"type": "expire"},
    } for i, tag in enumerate(pinned, 1)]
    rules.append({
        "rulePriority": len(pinned) + 1,
        "description": f"Keep the last {keep} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
        "action": {"type": "expire"},
    })
    return rules
