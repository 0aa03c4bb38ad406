"""gunicorn's settings file, read from the working directory (``gunicorn wsgi:app``); command-line flags win.

A graceful reload (``python -m scripts.reload``, which sends SIGHUP to the master: docs/runbooks/deploy.md)
re-reads this file and replaces every worker with one running the code now on disk, without dropping a
request:

- ``worker_class``: gunicorn's threaded worker, but one that answers every connection it accepted before
  it exits (scripts/graceful_worker.py says what the stock one drops);
- ``post_fork``: a new worker forgets the portal's modules the master had imported, so it loads the
  release on disk rather than the master's copy;
- ``pre_fork`` / ``child_exit``: each worker gets a slot on a shared board where it says how many
  connections it holds, so the one holding the fewest accepts the next (scripts/graceful_worker.py);
- ``child_exit``: when a worker exits, its Prometheus counters are folded into the shared archive
  (billing/metrics_files.py), so /metrics keeps counting what it served and the directory does not fill with
  the files of workers long gone.
"""

import os
import sys

# Here, not in the hook: the hook runs in a signal handler, which may nest. metrics_files imports no model, so
# the master holds nothing of the portal that a reload must replace but this small module (post_fork below).
from billing import metrics_files
from scripts import graceful_worker

worker_class = "scripts.graceful_worker.GracefulThreadWorker"
# A page is CPU work under one GIL per process (docs/benchmarks.md, Pages): one process per core uses the cores;
# two per core measured no better here (more CPU a page, the same tail). Threads serve the requests that wait on
# Stripe (an action) meanwhile. WEB_CONCURRENCY, --workers and --threads override these.
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
threads = 4
# A kept-alive connection is served by the worker that accepted it, for as long as it lives; the worker holding
# the fewest connections accepts the next (scripts/graceful_worker.py). Connections also end: after this many
# requests on one the answer says "Connection: close" (nginx's keepalive_requests), so a worker that got busy
# sheds some, and the client's next connection goes to the least loaded. WEB_KEEPALIVE_REQUESTS overrides it
# (0: no limit).
KEEPALIVE_REQUESTS = int(os.environ.get("WEB_KEEPALIVE_REQUESTS", "50"))

# The master waits this long for old workers to finish their requests before it kills them.
graceful_timeout = 30

# Packages of this repository that the master itself imports (the line above, and the worker class).
_OWN_PACKAGES = ("billing", "portal", "jobs", "wsgi")


def post_fork(server, worker):
    # Forked workers inherit the master's sys.modules: without this, after a reload they would run the
    # billing package the master imported at its start, next to the new release's portal.
    if server.cfg.preload_app:
        return  # the app was built in the master from those modules: a second copy would split their state
    for name in [name for name in sys.modules if name.split(".", 1)[0] in _OWN_PACKAGES]:
        del sys.modules[name]


def pre_fork(server, worker):
    graceful_worker.assign_slot(server, worker)


def child_exit(server, worker):
    graceful_worker.release_slot(worker)
    metrics_files.process_exited(worker.pid)


def pre_request(worker, req):
    worker.log.debug("%s %s", req.method, req.path)  # gunicorn's own pre_request, which this one replaces
    if KEEPALIVE_REQUESTS and req.req_number >= KEEPALIVE_REQUESTS:
        req.must_close = True
