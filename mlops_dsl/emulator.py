"""The local AWS emulator behind the `local` namespace: moto's server on 127.0.0.1.

`ensure` starts it in the background when nothing answers at the namespace's `aws.endpoint`, and
creates the state bucket (the S3 backend needs it before `init`). It runs in its own session, so
it outlives the command that started it and keeps every resource and state file in memory until
`stop`. Only loopback URLs are accepted (namespaces.yaml checks it too).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from .emulator_server import REHEARSALS_ENV
from .errors import MlopsError, OperationError
from .namespaces import Namespace

START_TIMEOUT_S = 30.0


def _address(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(endpoint)
    host = parts.hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
        raise MlopsError(f"aws.endpoint {endpoint}: the emulator must listen on this machine (127.0.0.1)")
    return host, parts.port or 80


def answering(endpoint: str) -> bool:
    try:
        with socket.create_connection(_address(endpoint), timeout=1):
            return True
    except OSError:
        return False


def rehearsals_file(workdir: Path, endpoint: str) -> Path:
    """Endpoints whose next update the emulator rolls back, one name per line (`rehearse_rollback`)."""
    return workdir / "emulator" / f"{_address(endpoint)[1]}.roll-back-next-update"


def rehearse_rollback(workdir: Path, endpoint: str, endpoint_name: str) -> Path:
    """Make the emulator roll the next update of `endpoint_name` back, as an alarm would on AWS."""
    path = rehearsals_file(workdir, endpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(endpoint_name + "\n")
    return path


def _pidfile(workdir: Path, endpoint: str) -> Path:
    return workdir / "emulator" / f"{_address(endpoint)[1]}.pid"


def start(endpoint: str, workdir: Path) -> int:
    """Start the emulator in the background; returns its process id once it answers."""
    host, port = _address(endpoint)
    log = workdir / "emulator" / f"{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        import moto  # noqa: F401 - only to say clearly what is missing
    except ImportError:
        raise OperationError("the local namespace needs moto's server: pip install 'mlops-dsl[local]' "
                             "(make setup installs it)") from None
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "mlops_dsl.emulator_server", "-H", host, "-p", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True,
                                   env={**os.environ, REHEARSALS_ENV: str(rehearsals_file(workdir, endpoint))})
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answering(endpoint):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise OperationError(f"the emulator did not start on {endpoint} within {START_TIMEOUT_S:.0f} s; "
                                 f"see {log}")
        time.sleep(0.2)
    _pidfile(workdir, endpoint).write_text(f"{process.pid}\n")
    return process.pid


def ensure_bucket(endpoint: str, bucket: str, region: str) -> None:
    """Create the state bucket in the emulator if it is not there (a PUT is idempotent there)."""
    body = b"" if region == "us-east-1" else (
        f"<CreateBucketConfiguration><LocationConstraint>{region}</LocationConstraint>"
        f"</CreateBucketConfiguration>").encode()
    request = urllib.request.Request(f"{endpoint}/{bucket}", data=body, method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # already owned by us
            raise OperationError(f"could not create the state bucket {bucket} in the emulator at {endpoint}: "
                                 f"HTTP {exc.code}") from None
    except OSError as exc:
        raise OperationError(f"the emulator at {endpoint} did not answer: {exc}") from None


def ensure(namespace: Namespace, workdir: Path, say: Callable[[str], object] = print) -> None:
    """The namespace's emulator is up and its state bucket exists."""
    aws = namespace.aws
    if aws is None or not aws.endpoint:
        return
    if not answering(aws.endpoint):
        pid = start(aws.endpoint, workdir)
        say(f"started the local AWS emulator on {aws.endpoint} (pid {pid}); it keeps its state until "
            f"`mlops emulator stop -n {namespace.name}`")
    ensure_bucket(aws.endpoint, aws.backend.bucket, aws.backend.region)


def stop(endpoint: str, workdir: Path) -> bool:
    """Stop the emulator this tool started; False when none was running."""
    pidfile = _pidfile(workdir, endpoint)
    try:
        pid = int(pidfile.read_text())
    except (FileNotFoundError, ValueError):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + 10
    while answering(endpoint) and time.monotonic() < deadline:
        time.sleep(0.1)
    pidfile.unlink(missing_ok=True)
    return True
