"""gunicorn's settings file, read from the working directory (``gunicorn wsgi:app``); command-line flags win.

Only what the portal needs from gunicorn's hooks lives here: when a worker exits, its
Prometheus counters are folded into the shared archive (billing/metrics.py), so
/metrics keeps counting what it served and the directory does not fill with the
files of workers long gone (a graceful reload, ``kill -HUP <master pid>``, replaces
every worker).
"""

from billing import metrics  # here, not in the hook: the hook runs in a signal handler, which may nest


def child_exit(server, worker):
    metrics.process_exited(worker.pid)
