"""``python -m sandbox``: run the Stripe sandbox server.

Prints one line ``Stripe sandbox listening on http://HOST:PORT`` on standard
output when it is ready (``--port 0`` picks a free port; the line tells which).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Sequence

from werkzeug.serving import WSGIRequestHandler, make_server

from .server import create_app


class _QuietHandler(WSGIRequestHandler):
    """Log request lines without query strings (they may carry ids someone considers private)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        logging.getLogger("sandbox.http").info('%s %s %s', self.command, path, code)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Local Stripe-compatible sandbox.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=12111, help="port (0 picks a free one; default 12111)")
    parser.add_argument("--db", default=os.environ.get("SANDBOX_DB", "instance/sandbox.sqlite3"),
                        help="SQLite file (env SANDBOX_DB; default instance/sandbox.sqlite3)")
    parser.add_argument("--webhook-url", default=os.environ.get("SANDBOX_WEBHOOK_URL"),
                        help="deliver every event here (env SANDBOX_WEBHOOK_URL)")
    parser.add_argument("--webhook-secret", default=os.environ.get("STRIPE_KERNEL_WEBHOOK_SECRET"),
                        help="signing secret whsec_... (env STRIPE_KERNEL_WEBHOOK_SECRET)")
    parser.add_argument("--webhook-retry-base", type=float, default=1.0,
                        help="seconds before the first retry; doubles each time (default 1)")
    parser.add_argument("--webhook-max-attempts", type=int, default=8, help="attempts before giving up (default 8)")
    parser.add_argument("--webhook-timeout", type=float, default=10.0, help="seconds per delivery (default 10)")
    parser.add_argument("--log-level", default=os.environ.get("SANDBOX_LOG_LEVEL", "WARNING"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.webhook_secret and not args.webhook_secret.startswith("whsec_"):
        print("--webhook-secret must start with whsec_", file=sys.stderr)
        return 2
    app = create_app(args.db, args.webhook_url, args.webhook_secret,
                     webhook_retry_base=args.webhook_retry_base, webhook_max_attempts=args.webhook_max_attempts,
                     webhook_timeout=args.webhook_timeout)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=_QuietHandler)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Stripe sandbox listening on http://{host}:{server.server_port} (db: {args.db})", flush=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.extensions["sandbox"].dispatcher.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
