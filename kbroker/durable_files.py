"""Small files that must never be seen half-written (checkpoints, catalogues, identities).

write_atomically writes a temporary file, fsyncs it, renames it over the target and fsyncs the
directory, so after a crash the file holds either its old or its new contents.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: str | Path, data: bytes) -> None:
    path = Path(path)
    os.replace(write_temp(path, data), path)
    fsync_dir(path.parent)


def write_temp(path: str | Path, data: bytes) -> Path:
    """Write and fsync ``<path>.tmp``, the first half of write_atomically; returns its path."""
    path = Path(path)
    temp = path.with_name(path.name + ".tmp")
    with open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return temp


def fsync_dir(path: str | Path) -> None:
    """Make a rename durable; some filesystems refuse to fsync a directory, which is then moot."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
