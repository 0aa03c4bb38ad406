"""gunicorn's threaded worker, made to finish every connection it accepted before it exits.

gunicorn 23's ``gthread`` worker, told to stop gracefully (SIGTERM: a reload with ``kill -HUP``, the
master stopping, ``max_requests``), leaves its loop within a second and closes its poller. Connections it
had accepted in that second but whose request it had not read yet are closed unanswered: the client sees
"connection reset" or "remote end closed connection without response" (6 of 19,400 requests over 3
reloads, measured here; 8 of 276 in the fault run of issue #11). Idle keep-alive connections are cut the
same way, while their client may be sending on them.

This worker stops accepting first (the listening socket stays open in the master and the new workers,
so new connections wait there for them), then keeps its loop running until every connection it holds
has been answered, or has stayed idle past the keep-alive timeout, or ``graceful_timeout`` runs out.
Requests answered meanwhile carry ``Connection: close`` (gunicorn does that once the worker is no longer
alive), so clients move to the new workers.
"""
from __future__ import annotations

import multiprocessing
import os
import selectors
import time
from concurrent import futures
from functools import partial
from typing import Any, Optional

from gunicorn.workers.gthread import ThreadWorker

# How long one turn of the loop waits for a socket: short while draining, so the worker leaves soon after
# its last connection closed.
DRAIN_POLL_SECONDS = 0.1

# The fewest connections accept (see GracefulThreadWorker._balance). A board in shared memory, made by the
# master when it imports this module and inherited by every worker it forks: per worker slot, the connections
# it holds (-1: a free slot) and when it last said so (monotonic ms, one clock for every process on a machine).
SLOTS = 64
_board = multiprocessing.RawArray("q", SLOTS * 2)
for _slot in range(SLOTS):
    _board[2 * _slot] = -1
# A worker that has not said anything for this long (hung, or stopping) is not waited for.
FRESH_MS = 3000
# How often a worker that stepped aside looks whether it holds the fewest again.
RECHECK_SECONDS = 0.01


def _now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def assign_slot(server: Any, worker: Any) -> None:
    """gunicorn's ``pre_fork`` (in the master): a free slot on the board for the worker about to start."""
    if os.environ.get("WEB_BALANCE", "1") == "0":  # first come takes it, as gthread does (to measure against)
        return
    used = {getattr(other, "balance_slot", None) for other in server.WORKERS.values()}
    worker.balance_slot = next((slot for slot in range(SLOTS) if slot not in used), None)
    if worker.balance_slot is not None:
        _board[2 * worker.balance_slot], _board[2 * worker.balance_slot + 1] = 0, _now_ms()


def release_slot(worker: Any) -> None:
    """gunicorn's ``child_exit`` (in the master): the slot of a worker gone is free."""
    slot = getattr(worker, "balance_slot", None)
    if slot is not None:
        _board[2 * slot] = -1


class GracefulThreadWorker(ThreadWorker):
    balance_slot: Optional[int] = None  # set by assign_slot before the fork

    def run(self) -> None:
        self._names = {}
        for listener in self.sockets:
            listener.setblocking(False)
            # gthread captures the name once: during shutdown the listener may already be closed.
            self._names[listener] = listener.getsockname()
            self.poller.register(listener, selectors.EVENT_READ, partial(self.accept, self._names[listener]))
        self._listening = True

        while self.alive:
            self.notify()
            self._turn(1.0)
            if not self.is_parent_alive():
                break
            self.murder_keepalived()

        self._drain()

    def finish_request(self, fs) -> None:
        """gthread closes a kept-alive connection once the worker is stopping; but its last answer went out
        saying "keep-alive", so the client may be sending the next request on it already. Keep it: that
        request is answered (with ``Connection: close``), or the connection is closed after the keep-alive
        timeout, as on any other day."""
        if fs.cancelled() or self.alive:
            super().finish_request(fs)
            return
        try:
            keepalive, conn = fs.result()
            if not keepalive:
                self.nr_conns -= 1
                conn.close()
                return
            conn.sock.setblocking(False)
            conn.set_timeout()
            with self._lock:
                self._keep.append(conn)
                self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn))
        except Exception:
            self.nr_conns -= 1
            fs.conn.close()

    def accept(self, server, listener) -> None:
        super().accept(server, listener)
        self._balance()

    def _balance(self) -> None:
        """Accept new connections only while no other worker holds fewer (nginx's ``least_conn``).

        Every worker waits on the same listening socket and the first to call ``accept`` takes the connection,
        whatever it already holds; a kept-alive connection then stays with that worker. Browsers arriving at
        an idle server mostly landed on one worker (11,576 requests against 808 in one run), and under a crowd
        the users whose connection sat on the busier worker waited 61 ms for what the others got in 9
        (docs/benchmarks.md, Pages). Here a worker publishes how many connections it holds and steps aside
        (stops listening) while another live worker holds fewer; the one with the fewest always listens, so
        a new connection never waits for a worker to come back."""
        slot = self.balance_slot
        if slot is None or not self.alive:
            # Stopping (a reload): _drain has left the board, and a worker that no longer listens must not
            # be counted, or the new workers would step aside for it and no one would accept.
            return
        now = _now_ms()
        mine = self.nr_conns
        _board[2 * slot], _board[2 * slot + 1] = mine, now
        fewest = True
        for other in range(SLOTS):
            held = _board[2 * other]
            if other != slot and 0 <= held < mine and now - _board[2 * other + 1] < FRESH_MS:
                fewest = False
                break
        if fewest != self._listening:
            for listener, name in self._names.items():
                if fewest:
                    self.poller.register(listener, selectors.EVENT_READ, partial(self.accept, name))
                else:
                    self.poller.unregister(listener)
            self._listening = fewest

    def _turn(self, timeout: float) -> None:
        """One turn of gthread's loop: dispatch ready sockets, then collect finished requests."""
        self._balance()
        if not self._listening:
            timeout = min(timeout, RECHECK_SECONDS)
        if self.nr_conns < self.worker_connections:
            for key, _ in self.poller.select(timeout):
                key.data(key.fileobj)
            result = futures.wait(self.futures, timeout=0, return_when=futures.FIRST_COMPLETED)
        else:
            result = futures.wait(self.futures, timeout=timeout, return_when=futures.FIRST_COMPLETED)
        for done in result.done:
            self.futures.remove(done)

    def _drain(self) -> None:
        if self.balance_slot is not None:
            _board[2 * self.balance_slot] = -1  # stopping: no longer a worker for the others to wait for
        for listener in self.sockets:
            try:
                self.poller.unregister(listener)
            except (KeyError, ValueError):
                pass
            listener.close()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while (self.nr_conns > 0 or self.futures) and time.monotonic() < deadline and self.is_parent_alive():
            self.notify()  # still working: the master must not take this worker for hung
            self._turn(DRAIN_POLL_SECONDS)
            self.murder_keepalived()
        self.tpool.shutdown(False)
        self.poller.close()
        futures.wait(self.futures, timeout=max(0.0, deadline - time.monotonic()))
