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
        ctx.stack.add(repo, Resource("aws_ecr_lifecycle_policy", role_name, {
            "repository": repo.attr("name"),
            "policy": jsonencode({"rules": [{
                "rulePriority": 1,
                "description": f"Keep the last {t.keep_images} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": t.keep_images},
                "action": {"type": "expire"},
            }]}),
        }))

    return repos
