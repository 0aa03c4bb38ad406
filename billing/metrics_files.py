"""Housekeeping of the Prometheus multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``).

Apart from ``billing/metrics.py`` because gunicorn's master imports it (its ``child_exit`` hook, in
gunicorn.conf.py): it imports nothing of the portal but prometheus-client, so the master holds no copy of
the models or counters that a reload would have to replace.
"""
from __future__ import annotations

import fcntl
import glob
import json
import os
from contextlib import contextmanager
from typing import Iterator, Optional

from prometheus_client import multiprocess
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiproc_dir() -> Optional[str]:
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


@contextmanager
def _dir_lock(path: str, exclusive: bool) -> Iterator[None]:
    """Scrapes read the directory under a shared lock, compaction rewrites it under an exclusive one, so a scrape
    never sees a dead process counted twice (or not at all)."""
    with open(os.path.join(path, ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


ARCHIVE_PID = "archive"
COMPACT_ABOVE = 32  # files of processes that are gone; below this, folding them is not worth a job's time


def _pid_of(filename: str) -> Optional[int]:
    stem = os.path.basename(filename)[:-3]
    typ, _, pid = stem.partition("_")
    if typ not in ("counter", "histogram") or not pid.isdigit():
        return None  # the archives, and gauges (this portal keeps none per process)
    return int(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def compact(path: Optional[str] = None, *, minimum: int = 1) -> int:
    """Fold the counter and histogram files of processes that are gone into one archive file per kind; returns how
    many files were folded. The directory must belong to one machine (pids are checked locally)."""
    path = path or multiproc_dir()
    if not path:
        return 0
    dead = [name for name in glob.glob(os.path.join(path, "*.db"))
            if (pid := _pid_of(name)) is not None and pid != os.getpid() and not _alive(pid)]
    if len(dead) < minimum:
        return 0
    with _dir_lock(path, exclusive=True):
        for typ in ("counter", "histogram"):
            files = [name for name in dead if os.path.basename(name).startswith(typ + "_")]
            if not files:
                continue
            archive = os.path.join(path, f"{typ}_{ARCHIVE_PID}.db")
            sources = files + ([archive] if os.path.exists(archive) else [])
            merged = MultiProcessCollector.merge(sources, accumulate=False)
            scratch = archive + ".new"  # not *.db: invisible to scrapes until renamed
            if os.path.exists(scratch):
                os.unlink(scratch)
            out = MmapedDict(scratch)
            try:
                for metric in merged:
                    for sample in metric.samples:
                        key = json.dumps([metric.name, sample.name, sample.labels, metric.documentation],
                                         sort_keys=True)
                        out.write_value(key, sample.value, 0.0)
            finally:
                out.close()
            os.replace(scratch, archive)
            for name in files:
                os.unlink(name)
    return len(dead)


_folding = False
_exited: list[int] = []  # workers reaped while a folding was under way, left to that folding's next turn


def process_exited(pid: int) -> None:
    """gunicorn's ``child_exit``: forget the worker's live gauges and fold its counters into the archive.

    gunicorn calls it from its SIGCHLD handler, so a second worker's exit can interrupt the first one's
    folding (a reload stops every worker at once). The nested call cannot wait on the lock its own process
    holds, so it only notes the pid; the folding under way goes round again until no exit came in meanwhile.
    A worker still a zombie when a turn looked is alive to it, so dropping the nested call instead would leave
    that worker's files unfolded until the next exit.
    """
    global _folding
    path = multiproc_dir()
    if not path:
        return
    _exited.append(pid)
    if _folding:
        return
    while _exited:
        _folding = True
        try:
            while _exited:
                multiprocess.mark_process_dead(_exited.pop(), path)
            compact(path)
        finally:
            _folding = False
