"""Backup and restore (scripts/backup.py): a restored database reconciles with Stripe with 0 divergences."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from billing.models import AppSubscription, KernelInvoice
from billing.passes import reconciliation_pass
from portal import create_app
from portal.extensions import db
from portal.payments import gateway
from scripts import backup
from tests.helpers.dunning import subscribe_directly


def _reconciled(application) -> tuple[int, int, int]:
    with application.app_context():
        _job, run = reconciliation_pass(db.session, gateway(), trigger="test")
        result = (run.divergence_count, run.subscriptions_checked, run.invoices_checked)
        db.session.remove()  # give the connection back before closing them all
        db.engine.dispose()
    return result


@pytest.mark.postgres
def test_a_postgres_backup_restored_into_a_fresh_database_reconciles_clean(postgres_backend, billing_app, tenant,
                                                                          app_config, postgres_url, tmp_path):
    subscribe_directly(billing_app, tenant.id)
    source = app_config["SQLALCHEMY_DATABASE_URI"]
    dumped = backup.dump(source, tmp_path / "portal.dump")

    fresh = f"restored_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{fresh}"')
    target = make_url(postgres_url).set(database=fresh).render_as_string(hide_password=False)
    try:
        backup.restore(dumped, target)
        with pytest.raises(backup.BackupError, match="already has tables"):
            backup.restore(dumped, target)  # never on top of data
        restored = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": target})
        with restored.app_context():
            assert db.session.scalar(select(func.count(AppSubscription.id))) == 1
            assert db.session.scalar(select(KernelInvoice.status)) == "paid"
            db.session.remove()
        assert _reconciled(restored) == (0, 1, 1)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
        admin.dispose()


def test_a_sqlite_backup_restores_with_the_command(billing_app, tenant, app_config, tmp_path):
    subscribe_directly(billing_app, tenant.id)
    assert backup.main(["dump", str(tmp_path / "portal.backup"), "--from",
                        app_config["SQLALCHEMY_DATABASE_URI"]]) == 0
    target = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    assert backup.main(["restore", str(tmp_path / "portal.backup"), "--to", target]) == 0
    assert backup.main(["restore", str(tmp_path / "portal.backup"), "--to", target]) == 1  # not empty any more
    assert _reconciled(create_app({**app_config, "SQLALCHEMY_DATABASE_URI": target})) == (0, 1, 1)
