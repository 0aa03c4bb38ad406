"""The dj-stripe peer against OUR sandbox, with the realistic events: the like-for-like side of (c).

``/work/shared/peers/djstripe`` builds a minimal Django project around dj-stripe 2.11's webhook
view (``setup.sh``; its ``run.sh`` measures it against localstripe with made-up invoices). Here
the same project is served (gunicorn 2 x 4 gthread, SQLite WAL, IMMEDIATE transactions, as in
``run.sh``) with ``STRIPE_API_HOST`` pointing at the benchmark's sandbox, and it is sent the
sandbox's own renewal events, re-signed with the peer's secret: the five types the portal
subscribes to, about the same sandbox objects. Every one of them is a "CRUD-like" event in
dj-stripe: it re-fetches the object from the sandbox inside the request (and inside its open
transaction) and syncs it, fetching what it references that it does not hold yet (the
customer, the subscription, the price and product, the PaymentIntent, the payment method).
So both sides pay the same Stripe stand-in. Applied = acknowledged with a 200: dj-stripe does
everything in the request.

A fresh copy of the peer's project (and database) is made per run, so no run finds another's
rows.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.webhooks import Result, send_all
from scripts.services import Service, wait_until

PEER = Path(os.environ.get("PEER_DJSTRIPE", "/work/shared/peers/djstripe"))
PEER_ROOT = Path(os.environ.get("PEER_ROOT", "/tmp/peer-djstripe"))
UUID = "5e1f0c2a-7b3d-4c8e-9f10-000000000001"
SECRET = "whsec_peerbench0123456789"
PATH = f"/stripe/webhook/{UUID}/"


def available() -> bool:
    return (PEER / "setup.sh").exists()


def ensure_setup() -> None:
    if not (PEER_ROOT / "venv" / "bin" / "python").exists() or not (PEER_ROOT / "proj" / "db.sqlite3").exists():
        print("Setting the dj-stripe peer up (about a minute) ...", flush=True)
        subprocess.run(["bash", str(PEER / "setup.sh")], check=True, capture_output=True,
                       env={**os.environ, "ROOT": str(PEER_ROOT)})


@dataclass
class Peer:
    service: Service
    port: int
    database: Path

    def send(self, bodies: list[bytes], senders: int) -> Result:
        return send_all(self.port, PATH, bodies, senders, secret=SECRET)

    def stored(self, bodies: list[bytes]) -> dict[str, int]:
        """What dj-stripe stored for ``bodies``: events, and triggers not processed or with an exception."""
        import json

        ids = [json.loads(body)["id"] for body in bodies]
        found = failed = 0
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30) as db:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                found += db.execute(f"SELECT count(*) FROM djstripe_event WHERE id IN ({marks})", chunk).fetchone()[0]
                failed += db.execute(f"SELECT count(*) FROM djstripe_webhookeventtrigger WHERE event_id IN ({marks})"
                                     " AND (processed = 0 OR exception != '')", chunk).fetchone()[0]
        return {"stored": found, "failed": failed}

    def stop(self) -> None:
        self.service.stop()


def start(sandbox_url: str, workdir: Path, port: int, log: Path) -> Peer:
    """The peer's project copied into ``workdir`` (a fresh database) and served on ``port`` against the sandbox."""
    ensure_setup()
    project = workdir / "peer-proj"
    shutil.copytree(PEER_ROOT / "proj", project)
    env = {**os.environ, "PEER_SQLITE_MODE": "wal", "PEER_STRIPE_API_HOST": sandbox_url,
           "PEER_DJSTRIPE_LOG": "WARNING"}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [str(PEER_ROOT / "venv" / "bin" / "gunicorn"), "peerproj.wsgi:application", "-b", f"127.0.0.1:{port}",
             "-w", "2", "--threads", "4", "-k", "gthread", "--no-control-socket"],
            cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    service = Service("djstripe", process)
    # Django answers a POST without a signature with 400 once it is up.
    wait_until(lambda: _answers(port), "the dj-stripe peer", timeout=60, process=process)
    return Peer(service, port, project / "db.sqlite3")


def _answers(port: int) -> bool:
    import http.client

    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("POST", PATH, body=b"{}")
        status = connection.getresponse().status
        connection.close()
        return status == 400
    except OSError:
        return False

