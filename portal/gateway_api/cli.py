"""``flask service-keys create|list|revoke`` and ``flask service-keys purge-idempotency``."""
from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import select

from billing.audit import Origin
from billing.gateway_api import IDEMPOTENCY_RETENTION, purge_idempotency_keys
from billing.models import App, ServiceKey
from billing.service_keys import SCOPES, ServiceKeyError, create_key, revoke_key
from portal.extensions import db

CLI = Origin(actor="cli")

group = AppGroup("service-keys", help="Keys of the Billing Gateway API (docs/gateway-api.md).")


@group.command("create")
@click.argument("app_slug")
@click.option("--name", required=True, help="Who uses the key (e.g. 'support tool').")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="An operation the key may call; repeat for several.")
def create(app_slug: str, name: str, scopes: tuple[str, ...]):
    """Make a key for the app APP_SLUG; it is printed once and stored only hashed."""
    app = db.session.scalar(select(App).where(App.slug == app_slug))
    if app is None:
        raise click.ClickException(f"no app {app_slug!r}")
    try:
        issued = create_key(db.session, app, name=name, scopes=scopes, origin=CLI)
    except ServiceKeyError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Service key {issued.row.id} for {app.slug} ({', '.join(issued.row.scopes)}); shown once:")
    click.echo(issued.secret)


@group.command("list")
def list_keys():
    """Every key: id, app, prefix, scopes, and whether it is revoked."""
    for key in db.session.scalars(select(ServiceKey).order_by(ServiceKey.id)):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "live"
        click.echo(f"{key.id}\t{key.app.slug}\t{key.prefix}…\t{','.join(key.scopes)}\t{key.name}\t{state}")


@group.command("revoke")
@click.argument("key_id", type=int)
def revoke(key_id: int):
    """Revoke key KEY_ID at once."""
    key = db.session.get(ServiceKey, key_id)
    if key is None:
        raise click.ClickException(f"no service key {key_id}")
    if not revoke_key(db.session, key, origin=CLI):
        raise click.ClickException(f"service key {key_id} was already revoked")
    db.session.commit()
    click.echo(f"Service key {key_id} revoked.")


@group.command("purge-idempotency")
@click.option("--hours", default=int(IDEMPOTENCY_RETENTION.total_seconds() // 3600), show_default=True,
              help="Keep answers this many hours (never fewer than 24).")
def purge(hours: int):
    """Forget stored idempotent answers older than --hours."""
    removed = purge_idempotency_keys(db.session, keep=timedelta(hours=hours))
    db.session.commit()
    click.echo(f"{removed} stored answers removed.")
