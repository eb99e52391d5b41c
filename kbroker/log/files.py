"""Appending to a file all or nothing.

Segment and index files are opened O_APPEND and grow by one write of whole batches (or whole index
entries). A regular file takes the whole write unless the disk is full or failing; then a write may
have landed part of the bytes before the error. ``append_fully`` removes such a partial write by
truncating the file back to its size before the write, so the file never holds half a batch after
the last whole one and the owner's idea of the file's size stays true. When the truncation fails too
it raises ``TornWrite`` (the owner must stop writing after the garbage; recovery truncates it).
"""

from __future__ import annotations

import os

from kbroker.log.errors import TornWrite

# the system call, looked up at each write so a test can make the disk "full"
write = os.write


def append_fully(fd: int, data, size_before: int) -> None:
    """Write all of ``data`` at the end of ``fd`` (a file ``size_before`` bytes long), or raise the
    OSError with the file back at ``size_before`` (``TornWrite`` if it cannot be put back)."""
    try:
        written = write(fd, data)
        while written < len(data):
            written += write(fd, data[written:])
    except OSError as exc:
        try:
            os.ftruncate(fd, size_before)
        except OSError as undo:
            raise TornWrite(exc.errno, f"{exc.strerror}; the partial write could not be truncated: {undo}") from exc
        raise
