"""``python -m jobs.worker``: an RQ worker with RQ's scheduler, for every queue the portal uses."""
from __future__ import annotations

import logging

from redis import Redis
from rq import Worker

from jobs.context import portal_app
from jobs.queues import QUEUES
from jobs.schedules import register as register_schedules

log = logging.getLogger(__name__)


def main() -> None:
    app = portal_app()
    connection = Redis.from_url(app.config["REDIS_URL"])
    # Stable ids: a restart or a second worker finds the schedules already there (see jobs/schedules.py).
    for job_id in register_schedules(connection):
        log.info("schedule ready: %s", job_id)
    worker = Worker(QUEUES, connection=connection)
    log.info("RQ worker listening on %s", ", ".join(QUEUES))
    # The scheduler runs delayed jobs (retries with backoff, dunning steps) and the recurring schedules.
    worker.work(with_scheduler=True, logging_level="INFO")


if __name__ == "__main__":
    main()
