"""`mlops smoke` and `mlops loadtest`: does each served variant answer like its model, and at what load.

    mlops smoke -n NS [--platform P]... [--endpoint-id ARM_ID]
    mlops loadtest -n NS --rps R --duration S [--max-p99-ms X] [--max-error-rate Y] [--max-requests N]
                   [--url URL] [--request FILE] [--platform P] [--variant V]

The smoke test invokes every pinned variant of the namespace's endpoint on its own (SageMaker's
`TargetVariant`; on Azure the `azureml-model-deployment` header, azureml/smoke.py) with the pinned
package's input example, and checks the answer (smoke.py). The endpoint's name is derived offline,
as the serving stack renders it (aws/naming.py endpoint_name): no Terraform state is read.

The load test sends only to the namespace's endpoint or to a server on 127.0.0.1 (`--url`, for a
model served by `python -m serving serve`); any other URL is refused before a request leaves.
Exit codes: 0 passed, 1 a failed smoke test or a load test over its limits, 2 a user's error.
"""

from __future__ import annotations

import json
import tempfile
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .cli_common import blueprint_option, namespaces_option, user_errors
from .errors import MlopsError

if TYPE_CHECKING:
    from .cli_models import Target
    from .pins import Pin
    from .smoke import Example
    from .templates.serving import Variant

LOCAL_HOSTS = ("127.0.0.1", "localhost")
REQUEST_TIMEOUT_S = 30.0


def _targets(wanted: str, platforms: tuple[str, ...], blueprints: tuple[Path, ...], namespaces_file: Path,
             every: bool) -> list[Target]:
    from .cli_models import _targets as model_targets  # the platforms of a namespace, as `mlops models` picks them

    return model_targets(wanted, platforms, blueprints, namespaces_file, every=every)


def _declared(target: Target) -> list[tuple[Variant, bool]]:
    """(variant, is_shadow) of the platform's ModelServing, in declaration order."""
    serving = target.serving
    if serving is None:
        return []
    return [(v, False) for v in serving.variants] + ([(serving.shadow, True)] if serving.shadow else [])


def _served(target: Target) -> list[tuple[str, Pin, bool]]:
    """(variant, pin, is_shadow) for every pinned variant of the platform's ModelServing, in declaration order."""
    pins = target.namespace.pins.get(target.platform.name, {})
    return [(v.name, pins[v.name], shadow) for v, shadow in _declared(target) if v.name in pins]


def _reads_online_features(target: Target, variant: str) -> bool:
    return any(v.name == variant and v.online_features is not None for v, _ in _declared(target))


def aws_endpoint(target: Target) -> str:
    from .aws.naming import endpoint_name

    return endpoint_name(target.platform.name, target.namespace.name, target.serving.name)


def fetch_example(target: Target, pin: Pin) -> Example:
    """The pinned package's input example: model.tar.gz streamed from the registry's S3 into a scratch dir."""
    from . import registry, smoke

    bucket, key = registry._split_s3(pin.artifact)
    s3 = registry.client(registry._registry(target.namespace), "s3")
    body = registry.aws_call(f"reading {pin.artifact}", s3.get_object, Bucket=bucket, Key=key)["Body"]
    with tempfile.TemporaryDirectory(prefix="mlops-smoke-") as tmp:
        try:
            smoke.unpack(body, Path(tmp), pin.sha256, pin.artifact)
        finally:
            body.close()
        return smoke.example(Path(tmp), pin.artifact)


def _runtime(target: Target) -> Any:
    from . import registry

    aws = target.namespace.aws
    assert aws is not None
    return registry.client(aws, "sagemaker-runtime")


def invoke(runtime: Any, endpoint: str, variant: str | None, body: bytes) -> bytes:
    """One InvokeEndpoint (to `variant` alone when named); the answer's body, or an OperationError."""
    from .errors import OperationError
    from .registry import aws_call

    kwargs: dict[str, Any] = {"EndpointName": endpoint, "Body": body, "ContentType": "application/json",
                              "Accept": "application/json"}
    if variant:
        kwargs["TargetVariant"] = variant
    answer = aws_call(f"InvokeEndpoint {endpoint}" + (f" (variant {variant})" if variant else ""),
                      runtime.invoke_endpoint, **kwargs)
    served = answer.get("InvokedProductionVariant")
    if variant and served and served != variant:
        raise OperationError(f"endpoint {endpoint}: asked for variant {variant}, answered by {served}")
    return answer["Body"].read()


def _smoke_aws(target: Target, say: Callable[[str], None]) -> list[tuple[str, str | None]]:
    from . import smoke
    from .errors import OperationError

    endpoint, runtime, results = aws_endpoint(target), _runtime(target), []
    examples: dict[str, Example] = {}
    for variant, pin, shadow in _served(target):
        where = f"endpoint {endpoint} variant {variant} (version {pin.version})"
        if shadow:
            say(f"{where}: a shadow variant takes no TargetVariant requests (SageMaker); its answers go to "
                "data capture only, not checked here")
            continue
        if _reads_online_features(target, variant):
            say(f"{where}: reads online_features, so a request names a record id the online store holds, which "
                "the package's input example does not; not checked here (send one with `mlops loadtest --request`)")
            continue
        try:
            if pin.artifact not in examples:
                examples[pin.artifact] = fetch_example(target, pin)
            ex = examples[pin.artifact]
            problem = smoke.check_answer(invoke(runtime, endpoint, variant, ex.body), ex.rows, ex.classes)
        except OperationError as exc:  # includes SmokeFailed: the package or the call failed
            problem = "; ".join(exc.problems)
        results.append((where, problem))
    return results


def _azure_client() -> Any:  # the tests replace it with a fake of Azure
    from .azureml.rollout import RefreshingClient

    return RefreshingClient()


def _smoke_azure(target: Target, endpoint_id: str | None) -> list[tuple[str, str | None]]:
    from . import smoke
    from .azure.rollout import smoke_request
    from .azure.serving import deployment_name
    from .azureml.smoke import smoke_test
    from .errors import OperationError
    from .serving_pins import Pinned

    if not endpoint_id:
        raise MlopsError(f"--endpoint-id: platform {target.platform.name!r} is on Azure; give the online "
                         "endpoint's ARM id (the serving stack's `endpoint_id` output)")
    body = json.dumps(smoke_request(target.serving), sort_keys=True).encode()
    client, results = _azure_client(), []
    serving = target.serving
    variants = {v.name: v for v in [*serving.variants, *([serving.shadow] if serving.shadow else [])]}
    for variant, pin, _ in _served(target):
        deployment = deployment_name(Pinned(variant, variants[variant], pin))
        where = f"online endpoint {endpoint_id.rsplit('/', 1)[-1]} deployment {deployment}"
        try:
            smoke_test(client, endpoint_id, deployment, body,
                       check=lambda answer: smoke.check_answer(json.dumps(answer).encode(), 1, None))
            results.append((where, None))
        except OperationError as exc:
            results.append((where, "; ".join(exc.problems)))
    return results


namespace_option = click.option("-n", "--namespace", "wanted", required=True, help="The namespace.")


@click.command("smoke")
@namespace_option
@click.option("--platform", "platforms", multiple=True,
              help="A platform (repeatable); default: every platform of the namespace.")
@click.option("--endpoint-id", default=None, help="Azure only: the online endpoint's ARM id.")
@blueprint_option
@namespaces_option
@user_errors
def smoke(wanted: str, platforms: tuple[str, ...], endpoint_id: str | None, blueprints: tuple[Path, ...],
          namespaces_file: Path) -> None:
    """Invoke every pinned variant with its model's input example; exit 1 unless each answers one
    prediction per row, among the model's classes, with probabilities summing to 1."""
    from . import smoke as checks

    results: list[tuple[str, str | None]] = []
    targets = _targets(wanted, platforms, blueprints, namespaces_file, every=True)
    azure = [t.platform.name for t in targets if t.platform.cloud == "azure" and _served(t)]
    if azure and not endpoint_id:  # before any request: a half-run smoke test reads as a pass
        raise MlopsError(f"--endpoint-id: platform {azure[0]!r} is on Azure; give the online endpoint's ARM id "
                         f"(the serving stack's `endpoint_id` output), or leave it out with --platform")
    if len(azure) > 1:
        raise MlopsError(f"--endpoint-id names one endpoint; platforms {', '.join(azure)} are on Azure: "
                         "smoke-test them one --platform at a time")
    for target in targets:
        if not _served(target):
            click.echo(f"{target.platform.name}: no variant pinned in {target.pins_file()}, so nothing is served")
            continue
        say = lambda s: click.echo(s, err=True)  # noqa: E731
        results += (_smoke_azure(target, endpoint_id) if target.platform.cloud == "azure"
                    else _smoke_aws(target, say))
    if not results:
        raise MlopsError(f"namespace {wanted!r}: nothing to smoke-test (no variant pinned)")
    for line in checks.describe(results):
        click.echo(line)
    failed = [r for r in results if r[1] is not None]
    if failed:
        raise click.ClickException(f"smoke test failed for {len(failed)} of {len(results)}: "
                                   + "; ".join(where for where, _ in failed))


def local_url(url: str) -> tuple[int, str]:
    """(port, path) of an http://127.0.0.1 or http://localhost URL; a MlopsError for anything else."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port or 80
    except ValueError:
        raise MlopsError(f"--url {url}: the port is not a number") from None
    if parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS or parts.username or parts.password:
        raise MlopsError(f"--url {url}: refused; a load test targets only http://127.0.0.1:PORT/... or "
                         "http://localhost:PORT/... (a locally served model); the namespace's endpoint is the "
                         "default target")
    path = parts.path or "/invocations"
    return port, path + (f"?{parts.query}" if parts.query else "")


def http_sender(port: int, path: str, body: bytes) -> Callable[[], None]:
    """A sender POSTing `body` to 127.0.0.1 (never a resolved name) over one connection per thread."""
    import http.client

    local = threading.local()

    def send() -> None:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
        try:
            connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            content = answer.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            local.connection = None
            raise
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}: {content[:200]!r}")

    return send


def _request_body(request: Path | None) -> bytes | None:
    if request is None:
        return None
    try:
        raw = request.read_bytes()
        json.loads(raw)
    except OSError as exc:
        raise MlopsError(f"--request {request}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise MlopsError(f"--request {request}: not JSON ({exc})") from None
    return raw


@click.command("loadtest")
@namespace_option
@click.option("--rps", type=click.FloatRange(0.1, 1000.0), required=True, help="Requests per second to hold.")
@click.option("--duration", type=click.FloatRange(0.1, 600.0), required=True,
              help="Seconds to run (at most 600).")
@click.option("--max-p99-ms", type=click.FloatRange(0.0, min_open=True), default=None,
              help="Exit 1 when the p99 latency is over this.")
@click.option("--max-error-rate", type=click.FloatRange(0.0, 1.0), default=None,
              help="Exit 1 when the share of failed requests is over this (0 to 1).")
@click.option("--max-requests", type=click.IntRange(1, 600_000), default=None,
              help="Send no more than this many requests.")
@click.option("--url", default=None, help="A locally served model: http://127.0.0.1:PORT/invocations.")
@click.option("--request", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="The JSON body to send (default: the pinned package's input example).")
@click.option("--platform", "platforms", multiple=True, help="The platform, when the namespace holds several.")
@click.option("--variant", default=None, help="Send to this variant alone (default: as the endpoint's weights say).")
@blueprint_option
@namespaces_option
@user_errors
def loadtest(wanted: str, rps: float, duration: float, max_p99_ms: float | None, max_error_rate: float | None,
             max_requests: int | None, url: str | None, request: Path | None, platforms: tuple[str, ...],
             variant: str | None, blueprints: tuple[Path, ...], namespaces_file: Path) -> None:
    """Hold RPS requests/s for DURATION seconds (open loop); report p50/p99 latency, errors and the
    achieved rate; exit 1 over --max-p99-ms or --max-error-rate."""
    from . import loadtest as lt

    local = local_url(url) if url is not None else None  # refuse a remote URL before anything else
    body = _request_body(request)
    if local is not None and body is not None:
        send, what = http_sender(*local, body), f"http://127.0.0.1:{local[0]}{local[1]}"
    else:
        from .cli_models import _one

        target = _one(_targets(wanted, platforms, blueprints, namespaces_file, every=False))
        served = {name: pin for name, pin, shadow in _served(target) if not shadow}
        if not served:
            raise MlopsError(f"{target.pins_file()}: no production variant of {target.platform.name!r} is pinned")
        if variant is not None and variant not in served:
            raise MlopsError(f"--variant {variant}: not a pinned production variant (pinned: {', '.join(served)})")
        if body is None:
            body = fetch_example(target, served[variant or next(iter(served))]).body
        if local is not None:
            send, what = http_sender(*local, body), f"http://127.0.0.1:{local[0]}{local[1]}"
        elif target.platform.cloud == "azure":
            raise MlopsError(f"platform {target.platform.name!r} is on Azure: give --url of a locally served model "
                             "(a load test of an Azure endpoint is not supported yet)")
        else:
            runtime, endpoint = _runtime(target), aws_endpoint(target)
            send = lambda: invoke(runtime, endpoint, variant, body) and None  # noqa: E731
            what = f"endpoint {endpoint}" + (f" variant {variant}" if variant else "")
    total = lt.planned(rps, duration, max_requests)
    click.echo(f"load test of {what}: {rps:g} requests/s for {duration:g} s ({total} requests)")
    report = lt.run(send, rps, duration, max_requests)
    for line in report.lines():
        click.echo(line)
    breaches = report.breaches(max_p99_ms, max_error_rate)
    if breaches:
        raise click.ClickException("load test over its limits: " + "; ".join(breaches))
