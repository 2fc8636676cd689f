"""Locating the pip-installed tools (YoWASP Yosys/nextpnr/sby, yices) from inside Python."""

import shutil
import sys
from pathlib import Path


def tool(name):
    """Path of console script ``name``: next to the running interpreter (the venv), else PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)
