"""Back up the portal's database, and restore a backup into an empty database.

    python -m scripts.backup dump  backup.dump                 # DATABASE_URL's database -> file
    python -m scripts.backup restore backup.dump --to URL      # file -> an EMPTY database at URL

PostgreSQL: ``pg_dump --format=custom`` (one consistent snapshot, taken while the
portal keeps writing; readers and writers are not blocked) and ``pg_restore
--no-owner --exit-on-error --single-transaction`` (all or nothing). SQLite: the
online backup API, consistent while the portal writes. A restore refuses a
database that already has tables, so it can never land on top of live data.
The password of a URL goes to the tools through ``PGPASSWORD``, never on their
command line. docs/runbooks/backup-restore.md says when and how; the test
(tests/ops/test_backup.py) restores into a fresh database and reconciles it with
Stripe: 0 divergences.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import URL, make_url


class BackupError(RuntimeError):
    pass


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    from scripts.services import postgres_bin

    return str(postgres_bin() / name)


def _libpq(url: URL) -> tuple[str, dict]:
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _sqlite_path(url: URL) -> str:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return url.database


def dump(database_url: str, path: Path) -> Path:
    url = make_url(database_url)
    path = Path(path)
    if url.get_backend_name() == "sqlite":
        source = sqlite3.connect(_sqlite_path(url))
        target = sqlite3.connect(path)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        return path
    if url.get_backend_name() != "postgresql":
        raise BackupError(f"no backup for {url.get_backend_name()}")
    target, env = _libpq(url)
    result = subprocess.run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={path}", target],
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    return path


def _empty(database_url: str) -> bool:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return not inspect(connection).get_table_names()
    finally:
        engine.dispose()


def restore(path: Path, database_url: str) -> None:
    url = make_url(database_url)
    path = Path(path)
    if not path.exists():
        raise BackupError(f"no backup at {path}")
    if url.get_backend_name() == "sqlite":
        destination = Path(_sqlite_path(url))
        if destination.exists() and not _empty(database_url):
            raise BackupError(f"{destination} already has tables: restore into an empty database")
        source = sqlite3.connect(path)
        target = sqlite3.connect(destination)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        return
    if not _empty(database_url):
        raise BackupError("the target database already has tables: restore into an empty database")
    target, env = _libpq(url)
    result = subprocess.run([_tool("pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction",
                             f"--dbname={target}", str(path)], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.backup", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dumping = commands.add_parser("dump", help="back up DATABASE_URL (or --from) into FILE")
    dumping.add_argument("file", type=Path)
    dumping.add_argument("--from", dest="source", default=os.environ.get("DATABASE_URL"))
    restoring = commands.add_parser("restore", help="restore FILE into the empty database --to")
    restoring.add_argument("file", type=Path)
    restoring.add_argument("--to", dest="target", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "dump":
            if not args.source:
                parser.error("set DATABASE_URL or --from")
            print(f"backed up to {dump(args.source, args.file)}")
        else:
            restore(args.file, args.target)
            print(f"restored {args.file}")
    except BackupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
