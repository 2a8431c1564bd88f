"""What a server's background parts offer the rest of the process: the running sync and
the admission webhook, as far as the server's callers use them.

Protocols, so that the server need not import the sync (which imports the server).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = [
    "AdmissionIndex",
    "DeliveryStatus",
    "DeliveryStatuses",
    "RunningAdmission",
    "RunningRefresh",
    "RunningSync",
]


class DeliveryStatus(Protocol):
    """Where one delivered Secret stands."""

    @property
    def state(self) -> str: ...

    def as_dict(self) -> dict[str, Any]: ...


class DeliveryStatuses(Protocol):
    """Where every delivered Secret stands, as the syncing replica last saw it."""

    def of(self, credential_id: str) -> Sequence[DeliveryStatus]: ...

    def errors(self) -> dict[str, str]:
        """Why each cluster that cannot be synced cannot, by cluster id."""

    def counts(self) -> dict[str, int]:
        """How many Secrets are in each state."""

    def cluster_counts(self, cluster_id: str) -> dict[str, int]:
        """How many of one cluster's Secrets are in each state."""

    def conflicts(self, cluster_id: str, namespace: str) -> frozenset[str]:
        """Names of Secrets in the namespace that pullkeeper found but does not manage."""


class RunningSync(Protocol):
    @property
    def statuses(self) -> DeliveryStatuses: ...

    @property
    def leading(self) -> bool:
        """Whether this replica is the one that syncs."""

    @property
    def synced_by(self) -> str: ...


class RunningRefresh(Protocol):
    @property
    def results(self) -> Counter[str]:
        """How many refreshes ended each way (token_refresh.RESULTS) since start."""


class AdmissionIndex(Protocol):
    @property
    def ready(self) -> threading.Event:
        """Set once the index is first built."""

    @property
    def revision(self) -> int: ...


class RunningAdmission(Protocol):
    @property
    def index(self) -> AdmissionIndex: ...

    @property
    def decides_in_memory(self) -> bool:
        """Whether a decision now reads nothing but memory (may run on the event loop)."""

    @property
    def audit_dropped(self) -> int:
        """Audit records not queued: over the namespace's records a minute."""

    @property
    def audit_queued(self) -> int:
        """Audit records queued, not written yet."""

    @property
    def audit_overflow(self) -> int:
        """Audit records not queued: the queue was full."""

    @property
    def audit_write_errors(self) -> int:
        """Writes of queued audit records the store refused."""

    @property
    def audit_lost(self) -> int:
        """Queued audit records given up after the store refused them again and again."""

    def stop(self) -> None:
        """Write what is queued and stop the index."""

    def snapshot(self) -> dict[tuple[str, str], int]:
        """Reviews answered, by (webhook, result)."""

    def mutate(self, request: Mapping[str, Any], cluster: str | None) -> dict[str, Any]: ...

    def validate(self, request: Mapping[str, Any], cluster: str | None) -> dict[str, Any]: ...
