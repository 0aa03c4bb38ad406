"""A job for the correlation test: writes one log line from inside a job."""
import logging

from jobs.context import in_app_context

log = logging.getLogger("tests.ops.log_jobs")


@in_app_context
def say_something() -> None:
    log.info("inside the job", extra={"event": "test.job"})
