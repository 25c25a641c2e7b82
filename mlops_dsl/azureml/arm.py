"""Azure Resource Manager and Azure ML data-plane calls over HTTPS, with no Azure SDK.

The registry commands and the guarded rollout talk to a handful of REST operations; the Azure SDKs
would add hundreds of megabytes for them. A `Transport` is one function, (method, url, headers,
body) -> Response, so the tests hand in a fake of the control and data planes and nothing here
knows it is not Azure. Long-running operations are followed as ARM documents them
(https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations): the
`Azure-AsyncOperation` header's status, else the `Location` header until it stops answering 202.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import OperationError

MANAGEMENT = "https://management.azure.com"
TERMINAL = {"Succeeded", "Failed", "Canceled", "Cancelled"}


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: Any  # decoded JSON, the text when it is not JSON, or None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


Transport = Callable[[str, str, Mapping[str, str], bytes | None], Response]


def urllib_transport(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Response:
    """The real transport: HTTPS with the standard library."""
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return Response(answer.status, dict(answer.headers), _decode(answer.read()))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, dict(exc.headers or {}), _decode(exc.read()))
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise OperationError(f"{method} {url}: {getattr(exc, 'reason', exc)}") from None


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def token(resource: str = MANAGEMENT) -> str:
    """A bearer token: AZURE_ACCESS_TOKEN, else the Azure CLI's, else azure-identity's if installed."""
    if os.environ.get("AZURE_ACCESS_TOKEN"):
        return os.environ["AZURE_ACCESS_TOKEN"]
    if shutil.which("az"):
        done = subprocess.run(["az", "account", "get-access-token", "--resource", resource, "--query", "accessToken",
                               "-o", "tsv"], capture_output=True, text=True, check=False, timeout=60)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    try:
        from azure.identity import DefaultAzureCredential  # type: ignore[import-not-found]
    except ImportError:
        raise OperationError("no Azure credentials: set AZURE_ACCESS_TOKEN, log in with `az login`, or install "
                             "azure-identity") from None
    return str(DefaultAzureCredential().get_token(f"{resource}/.default").token)


@dataclass
class Client:
    """JSON over one transport with a bearer token; errors name the operation and Azure's message."""

    transport: Transport = urllib_transport
    bearer: Callable[[], str] = token
    poll_seconds: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _token: str | None = field(default=None, repr=False)

    def call(self, method: str, url: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 202, 204),
             headers: Mapping[str, str] | None = None) -> Response:
        if self._token is None:
            self._token = self.bearer()
        sent = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json", **(headers or {})}
        answer = self.transport(method, url, sent, None if body is None else json.dumps(body).encode())
        if answer.status not in ok:
            raise OperationError(f"{method} {url}: HTTP {answer.status}: {error_message(answer)}")
        return answer

    def get(self, url: str, missing_ok: bool = False) -> Any:
        answer = self.call("GET", url, ok=(200, 404) if missing_ok else (200,))
        return None if answer.status == 404 else answer.body

    def wait(self, answer: Response, what: str, timeout: float = 3600.0) -> Any:
        """Follow a long-running operation to its end; raise when it failed or took too long."""
        poll = answer.header("Azure-AsyncOperation") or answer.header("Location")
        if answer.status not in (201, 202) or not poll:
            return answer.body
        start = self.clock()
        while True:
            status = self.call("GET", poll, ok=(200, 202))
            state = (status.body or {}).get("status") if isinstance(status.body, dict) else None
            if answer.header("Azure-AsyncOperation") and state in TERMINAL:
                if state != "Succeeded":
                    raise OperationError(f"{what}: {state}: {error_message(status)}")
                return status.body
            if not answer.header("Azure-AsyncOperation") and status.status == 200:
                return status.body
            if self.clock() - start > timeout:
                raise OperationError(f"{what}: not finished after {timeout / 60:.0f} min")
            self.sleep(self.poll_seconds)


def error_message(answer: Response) -> str:
    """Azure's `error.code: error.message`, else the body as text."""
    body = answer.body
    if isinstance(body, dict):
        err = body.get("error") if isinstance(body.get("error"), dict) else body
        code, message = err.get("code"), err.get("message")
        if code or message:
            return f"{code or 'error'}: {message or ''}".strip()
    return str(body)[:500] if body else "no details"


__all__ = ["MANAGEMENT", "Client", "Response", "Transport", "error_message", "token", "urllib_transport"]
