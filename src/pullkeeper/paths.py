"""Where pullkeeper keeps per-user files."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["certs_dir", "config_dir"]


def config_dir() -> Path:
    """`$XDG_CONFIG_HOME/pullkeeper`, by default `~/.config/pullkeeper`."""
    # The XDG base-directory spec: a relative XDG_CONFIG_HOME is invalid and ignored.
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    return base / "pullkeeper"


def certs_dir() -> Path:
    """Trusted registry CAs, laid out as container runtimes' certs.d: `HOST[:PORT]/ca.crt`."""
    return Path(os.environ.get("PULLKEEPER_CERTS_DIR") or config_dir() / "certs.d")
