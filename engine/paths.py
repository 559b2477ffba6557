"""Where dllab keeps its files: the home (the run store, saved recipes, the runs service's socket)
and the data folder (the image sets `dllab data get` fetches and the loaders read).

Torch-free and below every other engine module: it imports nothing from the engine.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "DLLAB_HOME"
DATA_ENV = "DLLAB_DATA"
APP_NAME = "dllab"
DATA_SUBDIR = "data"


def default_home() -> Path:
    """``$DLLAB_HOME`` if set, else the platform's user data directory for dllab
    (``~/.local/share/dllab`` on Linux)."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


def default_data_folder() -> Path:
    """``$DLLAB_DATA`` if set, else ``data`` inside the home: where `dllab data get` writes and
    where the loaders look when a recipe gives no ``data.root``."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return default_home() / DATA_SUBDIR
