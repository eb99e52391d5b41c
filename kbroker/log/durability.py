"""Making the log layer's small files and new directories durable, one at a time or in a batch.

Outside a batch, ``write_atomically`` is kbroker.durable_files.write_atomically: temp file, fsync,
rename, fsync of the directory — two fsyncs per file, each a journal commit of its own.

Inside ``batch()`` the writes are collected (the last write of a path wins, and reads of that path
see it), as are the directories created; leaving the batch makes them all durable together before
returning: every temp file written and fsynced (concurrently, so the filesystem commits them
together), renamed over its file, then every directory that got a new entry fsynced (concurrently
too) — the new partition directories and the log directory above them. Creating a topic's 50
partitions thus costs two rounds of concurrent fsyncs instead of 300 sequential ones, and when the
batch returns everything is on disk exactly as the one-at-a-time path leaves it. A crash before the
batch ends leaves each file either absent or whole (temp files are removed at recovery).

A batch belongs to the context that opened it (a contextvars.ContextVar): a trio task, or a worker
thread flushing a log meanwhile, is not affected by another task's batch. Batches nest: an inner
batch joins the outer one. Leaving a batch blocks its thread until both rounds are done, so the
broker runs the batch that creates a topic's partitions in a worker thread (trio.to_thread; see
kbroker.log.manager ``open_new`` and kbroker.broker), not on the event loop; recovery at startup,
before anything is served, runs its batch on the main thread.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, TypeVar

from kbroker import durable_files

# concurrent fsyncs: enough for the filesystem to group them into few journal commits
_FSYNC_THREADS = 8

T = TypeVar("T")

_current: contextvars.ContextVar["Batch | None"] = contextvars.ContextVar("kbroker_log_durability_batch",
                                                                          default=None)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_FSYNC_THREADS, thread_name_prefix="kbroker-fsync")
        return _pool


def _run_all(fn: Callable[[Any], T], items: list) -> list[T]:
    """fn over items, concurrently when there are several; the first failure is raised after all ran."""
    if len(items) <= 1:
        return [fn(item) for item in items]
    futures = [_executor().submit(fn, item) for item in items]
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]


class Batch:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.directories: set[str] = set()  # directories with a new entry (a renamed file or a new directory)

    def flush(self) -> None:
        files, self.files = list(self.files.items()), {}
        dirs, self.directories = self.directories, set()
        temps = _run_all(lambda item: durable_files.write_temp(*item), files)  # written and fsynced
        for (path, _), temp in zip(files, temps):
            os.replace(temp, path)
            dirs.add(os.path.dirname(os.path.abspath(path)))
        _run_all(durable_files.fsync_dir, sorted(dirs))


def current() -> Batch | None:
    return _current.get()


@contextlib.contextmanager
def batch() -> Iterator[Batch]:
    """Collect the log layer's file writes and new directories; make them durable together on exit."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    b = Batch()
    token = _current.set(b)
    try:
        yield b
    finally:
        _current.reset(token)
        b.flush()


def write_atomically(path: str, data: bytes) -> None:
    b = _current.get()
    if b is None:
        durable_files.write_atomically(path, data)
    else:
        b.files[path] = data


def read_text(path: str) -> str | None:
    """The file's text as last written (a batch's pending write included); None if there is none."""
    b = _current.get()
    if b is not None and path in b.files:
        return b.files[path].decode("utf-8")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def make_directory(path: str) -> bool:
    """Create ``path`` (and missing parents) if needed; True if it was created. The new entry is made
    durable in its parent (at once, or when the batch ends)."""
    if os.path.isdir(path):
        return False
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        make_directory(parent)
    try:
        os.mkdir(path)
    except FileExistsError:
        return False
    b = _current.get()
    if b is None:
        durable_files.fsync_dir(parent)
    else:
        b.directories.update((parent, path))  # the new entry, and the files about to be created in it
    return True
