"""This process's name among the replicas of one store: its host and process id.

The sync lease names its holder with it (services/leader.py), and the Kubernetes client sends
it in its User-Agent (kube/api.py), so the API server's audit log says which replica wrote.
Each replica runs on a host of its own (a pod), so the host name tells them apart; the
process id tells apart the processes of one host, and a restarted one from the one before.
"""

from __future__ import annotations

import os
import socket

from pullkeeper import __version__

__all__ = ["identity", "user_agent"]


def identity() -> str:
    """`HOST:PID`, read when asked: a forked child is a process of its own."""
    return f"{socket.gethostname()}:{os.getpid()}"


def user_agent() -> str:
    """What this process's Kubernetes requests call it: `pullkeeper/VERSION (HOST:PID)`."""
    return f"pullkeeper/{__version__} ({identity()})"
