"""Where sgl-conveyor keeps what it builds on a user's machine (the converted model, tool data
caches). One rule for every part of the project; nothing here creates anything."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`$CONVEYOR_CACHE`, else `$XDG_CACHE_HOME/sgl-conveyor`, else `~/.cache/sgl-conveyor`."""
    explicit = os.environ.get("CONVEYOR_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "sgl-conveyor"
