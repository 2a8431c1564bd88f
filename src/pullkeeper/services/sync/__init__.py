"""Keeping every cluster's Secrets as the store says, and saying where they stand.

manager.py runs one loop (cluster_loop.py) per registered cluster in the replica that holds
the sync lease; discovery.py records the namespaces the loops find; statuses.py holds where
each delivered Secret stands, and stored_statuses.py shares that with the other replicas.
"""

from pullkeeper.services.sync.cluster_loop import ClusterSync, Options
from pullkeeper.services.sync.manager import SyncManager, start
from pullkeeper.services.sync.statuses import status_of

__all__ = ["ClusterSync", "Options", "SyncManager", "start", "status_of"]
