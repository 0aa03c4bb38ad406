"""Job runs: one launch at a time, one successful run per window, one tenant's failure never stops a batch.

The guard is the unique ``job_runs.run_key``:

* while a run is live its key is ``<name>:running``, so a second launch of the
  same job (a second worker, a double click on "run now", the CLI beside the
  schedule) fails on the constraint and is skipped;
* when it succeeds the key becomes ``<name>:<window>`` (a scheduled run's window is
  its day), so the same window is not run again; an on-demand run has no window
  and keeps ``<name>:run:<id>``;
* a failed run keeps ``<name>:failed:<id>``, so its window can be run again.

A run that stayed ``running`` longer than ``STALE_AFTER`` (its worker died) is
marked abandoned and no longer blocks.
"""
from __future__ import annotations

import logging
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterator, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import clock
from billing.db import insert_once
from billing.models import JobRun, RunStatus

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(hours=2)
MAX_ERRORS_KEPT = 20


def _running_key(name: str) -> str:
    return f"{name}:running"


def _window_key(name: str, window: str) -> str:
    return f"{name}:{window}"


def claim_run(session: Session, name: str, *, window: Optional[str] = None, trigger: str = "schedule",
              rq_job_id: Optional[str] = None) -> Optional[JobRun]:
    """Start a run of ``name`` and commit it; None if one is running or ``window`` was already done."""
    if window and _done(session, name, window):
        log.info("%s: window %s already done; skipped", name, window)
        return None
    run = JobRun(name=name, run_key=_running_key(name), status=RunStatus.RUNNING, rq_job_id=rq_job_id,
                 details={"window": window, "trigger": trigger}, started_at=clock.now())
    for _ in range(2):
        if insert_once(session, run):
            break
        if not _abandon_stale(session, name):
            session.rollback()
            log.info("%s: already running; skipped", name)
            return None
    else:  # pragma: no cover - a third run took the slot between our two tries
        session.rollback()
        return None
    if window and _done(session, name, window):  # finished between our check and our claim
        session.rollback()
        return None
    session.commit()
    return run


def _done(session: Session, name: str, window: str) -> bool:
    return session.scalar(select(JobRun.id).where(JobRun.run_key == _window_key(name, window))) is not None


def _abandon_stale(session: Session, name: str) -> bool:
    """Free the slot of a run whose worker died; True if there was one."""
    holder = session.scalar(select(JobRun).where(JobRun.run_key == _running_key(name)))
    if holder is None:
        return True  # finished meanwhile: try again
    if clock.now() - holder.started_at < STALE_AFTER:
        return False
    log.warning("%s: run %s started at %s never finished; marking it abandoned", name, holder.id, holder.started_at)
    holder.status, holder.run_key, holder.error = RunStatus.FAILED, f"{name}:abandoned:{holder.id}", "abandoned"
    holder.finished_at = clock.now()
    session.flush()
    return True


def finish_run(session: Session, run: JobRun, batch: "Batch", *, error: Optional[str] = None,
               details: Optional[dict[str, Any]] = None) -> JobRun:
    """Record the outcome and release the running slot."""
    window = (run.details or {}).get("window")
    run.processed, run.failed = batch.processed, batch.failed
    run.details = {**(run.details or {}), "steps": dict(batch.steps), "errors": batch.errors[:MAX_ERRORS_KEPT],
                   **(details or {})}
    run.finished_at = clock.now()
    if error is not None:
        run.status, run.error, run.run_key = RunStatus.FAILED, error[:2000], f"{run.name}:failed:{run.id}"
    else:
        run.status = RunStatus.SUCCEEDED
        run.run_key = _window_key(run.name, window) if window else f"{run.name}:run:{run.id}"
    session.commit()
    return run


@dataclass
class Batch:
    """Counts a batch's items; ``item()`` isolates each one in its own transaction."""

    session: Session
    name: str
    processed: int = 0
    failed: int = 0
    steps: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @contextmanager
    def item(self, label: str) -> Iterator["Batch"]:
        """Commit the item's work, or roll it back, log and count it and carry on with the next one."""
        try:
            yield self
            self.session.commit()
            self.processed += 1
        except Exception as error:  # one tenant's failure never aborts the batch
            self.session.rollback()
            self.failed += 1
            log.exception("%s: %s failed; skipped", self.name, label)
            self.errors.append(f"{label}: {type(error).__name__}: {error}"[:300])

    def count(self, step: str) -> None:
        self.steps[str(step)] += 1
