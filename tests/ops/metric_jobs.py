"""A job for the multi-worker metrics test: counts one applied event from inside an RQ work horse."""
from billing import metrics


def count_one_applied() -> None:
    metrics.webhook_applied("test.event", "processed")
