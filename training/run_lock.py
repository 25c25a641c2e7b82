"""One ingestion run of a group at a time on Azure: a lease on a lock blob beside its ledger.

Two runs of a group can start close together: two Event Grid deliveries, a delivery and the
schedule, or a run by hand. Each would list the same new objects and write the same files and
markers: harmless, but paid twice. On AWS the state machine asks SageMaker whether a job of the
group is in progress; Azure ML has no such check before a job starts, so the run itself takes a
lease on `<ledger prefix>run.lock` in the offline container (Lease Blob: 15 to 60 seconds, or
infinite) and renews it while it works. A run that finds the lease held ends at once; the holder
lists the prefix again until a listing brings nothing new before it lets go, so what arrived while
it worked is not left for the schedule (but for the moment between its last listing and the
release, and beyond ingest_azure.MAX_PASSES listings). A run that dies loses its lease within
LEASE_SECONDS, so the lock never outlives it.

The lease needs the blob write data action on the lock blob's path (Lease Blob's RBAC action is
`blobs/write`), which the ingestion identity's condition already allows under the ledger prefix.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

LOCK_NAME = "run.lock"
LEASE_SECONDS = 60  # the longest finite lease Azure grants
RENEW_EVERY = 20.0  # three renewals per lease: one lost call does not lose the lock


class LockHeld(Exception):
    """Another run holds the lease."""


class RunLock:
    """A renewed lease on one blob, created empty if missing. `with RunLock(...)` raises LockHeld."""

    def __init__(self, container: Any, key: str, renew_every: float = RENEW_EVERY) -> None:
        self.container, self.key, self.renew_every = container, key, renew_every
        self.lease: Any = None
        self.lost: str | None = None  # why a renewal failed, for the run's log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RunLock:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        blob = self.container.get_blob_client(self.key)
        try:
            self.lease = self._acquire(blob)
        except ResourceNotFoundError:  # the group's first run: make the lock blob, then lease it
            try:
                blob.upload_blob(b"", overwrite=False)
            except HttpResponseError as exc:
                # Another first run made it in between (409 BlobAlreadyExists) and may hold it already:
                # real Azure answers a create over a leased blob 412 LeaseIdMissing, Azurite 409
                # (Azure/Azurite#2637). Either way the acquire below decides.
                if exc.status_code not in (409, 412):
                    raise
            self.lease = self._acquire(blob)
        self._thread = threading.Thread(target=self._renew, name="run-lock", daemon=True)
        self._thread.start()
        return self

    def _acquire(self, blob: Any) -> Any:
        """The lease; LockHeld when another run has it (409 LeaseAlreadyPresent). A missing blob's 404
        (ResourceNotFoundError) goes to the caller."""
        from azure.core.exceptions import HttpResponseError

        try:
            return blob.acquire_lease(lease_duration=LEASE_SECONDS)
        except HttpResponseError as exc:
            if exc.status_code == 409:
                raise LockHeld(self.key) from None
            raise

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_every):
            try:
                self.lease.renew()
            except Exception as exc:  # the run goes on: a second run would only repeat its writes
                self.lost = f"{type(exc).__name__}: {exc}"
                return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(Exception):  # expired or broken already: it frees itself within LEASE_SECONDS
            self.lease.release()
