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

import selectors
import time
from concurrent import futures
from functools import partial

from gunicorn.workers.gthread import ThreadWorker

# How long one turn of the loop waits for a socket: short while draining, so the worker leaves soon after
# its last connection closed.
DRAIN_POLL_SECONDS = 0.1


class GracefulThreadWorker(ThreadWorker):
    def run(self) -> None:
        for listener in self.sockets:
            listener.setblocking(False)
            # gthread captures the name once: during shutdown the listener may already be closed.
            self.poller.register(listener, selectors.EVENT_READ, partial(self.accept, listener.getsockname()))

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

    def _turn(self, timeout: float) -> None:
        """One turn of gthread's loop: dispatch ready sockets, then collect finished requests."""
        if self.nr_conns < self.worker_connections:
            for key, _ in self.poller.select(timeout):
                key.data(key.fileobj)
            result = futures.wait(self.futures, timeout=0, return_when=futures.FIRST_COMPLETED)
        else:
            result = futures.wait(self.futures, timeout=timeout, return_when=futures.FIRST_COMPLETED)
        for done in result.done:
            self.futures.remove(done)

    def _drain(self) -> None:
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
