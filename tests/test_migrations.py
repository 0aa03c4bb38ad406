"""`flask db upgrade` brings an empty database to exactly the schema the models describe."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import Enum, create_engine, inspect

from billing.db import Base
from portal import create_app
from portal.extensions import db


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
    url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()
    return url


def test_upgrade_creates_the_schema_of_the_models(app_config, database_url):
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    engine = create_engine(database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        inspector = inspect(connection)
        tables = set(inspector.get_table_names())
        checks = {table: " ".join(check["sqltext"] for check in inspector.get_check_constraints(table))
                  for table in tables}
    engine.dispose()
    assert {"apps", "users", "kernel_plans", "app_subscriptions", "kernel_invoices", "kernel_payment_attempts",
            "processed_webhooks", "audit_logs", "alerts"} <= tables
    assert differences == []
    # The models' enums are CHECK constraints in the migrated database too (Alembic does not compare those).
    columns = enum_columns()
    assert ("kernel_invoices", "status", ["draft", "open", "paid", "uncollectible", "void"]) in columns
    unguarded = [(table, column) for table, column, values in columns
                 if column not in checks[table] or any(f"'{value}'" not in checks[table] for value in values)]
    assert unguarded == []


def enum_columns() -> list[tuple[str, str, list[str]]]:
    """Every enum column of the models, as (table, column, allowed values)."""
    return [(table.name, column.name, list(column.type.enums)) for table in Base.metadata.sorted_tables
            for column in table.columns if isinstance(column.type, Enum) and column.type.create_constraint]
