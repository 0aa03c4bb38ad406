"""Background work on RQ: webhook processing, dunning, reconciliation and their schedules."""
