"""Command-line tools: ``flask create-superadmin``, ``flask seed-demo``, ``flask create-api-token``..."""
from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import select

from billing.errors import GatewayError
from billing.models import App, Role, User
from billing.plans import ensure_plans, paid_plans, retired_plans
from portal import ops_cli
from portal.api_auth import issue_token
from portal.auth.passwords import MIN_LENGTH, hash_password
from portal.extensions import db
from portal.payments import gateway

DEMO_PASSWORD = "demo-password-1"
DEMO_TENANTS = (
    ("Acme Analytics", "acme", "owner@acme.test", "Ana Souza"),
    ("Bravo Delivery", "bravo", "owner@bravo.test", "Bruno Lima"),
)
DEMO_SUPERADMIN = ("admin@kernel.test", "Kernel Admin")


def _upsert_user(email: str, name: str, role: Role, password: str) -> tuple[User, bool]:
    email = email.strip().lower()
    user = db.session.scalar(select(User).where(User.email == email))
    if user:
        return user, False
    user = User(email=email, name=name, role=role, password_hash=hash_password(password))
    db.session.add(user)
    return user, True


def seed_demo() -> list[tuple[str, str, str]]:
    """Create the plans, two tenants with an owner each and a superadmin; returns (role, email, password)."""
    ensure_plans(db.session)
    logins = []
    for app_name, slug, email, name in DEMO_TENANTS:
        owner, _ = _upsert_user(email, name, Role.OWNER, DEMO_PASSWORD)
        app = db.session.scalar(select(App).where(App.slug == slug))
        if app is None:
            app = App(name=app_name, slug=slug, billing_email=email)
            db.session.add(app)
        if owner not in app.owners:
            app.owners.append(owner)
        logins.append((f"owner of {app_name}", email, DEMO_PASSWORD))
    email, name = DEMO_SUPERADMIN
    _upsert_user(email, name, Role.SUPERADMIN, DEMO_PASSWORD)
    logins.append(("superadmin", email, DEMO_PASSWORD))
    db.session.commit()
    return logins


def init_app(app: Flask) -> None:
    @app.cli.command("create-superadmin")
    @click.argument("email")
    @click.option("--name", default="", help="Display name.")
    @click.password_option(help="At least 10 characters; prompted for when omitted.")
    def create_superadmin(email: str, name: str, password: str):
        """Create a superadmin account."""
        if len(password) < MIN_LENGTH:
            raise click.BadParameter(f"use at least {MIN_LENGTH} characters", param_hint="password")
        user, created = _upsert_user(email, name, Role.SUPERADMIN, password)
        if not created:
            raise click.ClickException(f"{user.email} already exists")
        db.session.commit()
        click.echo(f"Superadmin {user.email} created.")

    @app.cli.command("sync-plans")
    def sync_plans():
        """Make the plans and Stripe say what billing/plans.py says: a price per paid plan, changed amounts
        as new prices (the old ones archived; subscriptions on them renew at the price they bought)."""
        ensure_plans(db.session)
        click.echo(f"Gateway: {gateway().describe()}")
        try:
            for plan in paid_plans(db.session):
                price_id = gateway().ensure_price(plan_code=plan.code, name=plan.name, amount=plan.price,
                                                  interval=plan.interval)
                plan.stripe_price_id = price_id
                click.echo(f"  {plan.code:<12} {price_id}")
            for retired in retired_plans(db.session):
                gateway().archive_price(retired.stripe_price_id)
                click.echo(f"  {retired.code:<12} {retired.stripe_price_id} archived")
        except GatewayError as error:
            db.session.rollback()
            raise click.ClickException(error.message) from error
        db.session.commit()

    @app.cli.command("create-api-token")
    @click.argument("email")
    @click.option("--name", required=True, help="What the token is for, shown in lists (e.g. \"deploy bot\").")
    def create_api_token(email: str, name: str):
        """Create a bearer token for the JSON API acting as EMAIL; it is printed once and never stored."""
        user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None or not user.active:
            raise click.ClickException(f"no active user {email.strip().lower()}")
        token = issue_token(db.session, user, name.strip() or "api")
        db.session.commit()
        click.echo(token)
        click.echo(f"Token for {user.email} created; store it now, it cannot be shown again.", err=True)

    _job_commands(app)
    ops_cli.init_app(app)

    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Create the three plans, two demo tenants with owners and a superadmin; print the logins."""
        for role, email, password in seed_demo():
            click.echo(f"  {role:<28} {email:<22} password: {password}")


# ---------------------------------------------------------------- jobs on demand: reconcile, dunning, notices

DIVERGENCES_LISTED = 20


def _job_commands(app: Flask) -> None:
    # The job modules import the portal (to build their app context), so they are imported when a command runs.

    @app.cli.command("reconcile")
    def reconcile_command():
        """Compare every Stripe subscription and invoice with ours now; list the divergences."""
        from sqlalchemy import func

        from billing.models import AppSubscription, KernelInvoice, ReconciliationDivergence
        from billing.passes import reconciliation_pass

        db.session.commit()
        click.echo(f"Gateway: {gateway().describe()}")
        # Our row counts estimate how many Stripe objects the walk will meet.
        expected = (db.session.scalar(select(func.count(AppSubscription.id))) or 0) + (
            db.session.scalar(select(func.count(KernelInvoice.id))) or 0)
        db.session.commit()
        try:
            with click.progressbar(length=max(expected, 1), label="Reconciling", show_pos=True) as bar:
                _job, run = reconciliation_pass(db.session, gateway(), trigger="cli", on_progress=bar.update)
        except GatewayError as error:
            raise click.ClickException(f"Stripe could not be reached: {error.message}") from error
        if run is None:
            raise click.ClickException("A reconciliation is already running; try again when it has finished.")
        click.echo(f"Reconciliation #{run.id}: {run.subscriptions_checked} subscriptions and {run.invoices_checked} "
                   f"invoices checked with {run.api_calls} Stripe API calls: {run.divergence_count} divergences.")
        listed = db.session.scalars(select(ReconciliationDivergence).where(ReconciliationDivergence.run_id == run.id)
                                    .order_by(ReconciliationDivergence.id).limit(DIVERGENCES_LISTED))
        for item in listed:
            click.echo(f"  {item.kind:<15} {item.object_type:<12} {item.stripe_id}: ours {item.local_value!r}, "
                       f"Stripe {item.stripe_value!r}{' (healable)' if item.healable else ''}")
        if run.divergence_count > DIVERGENCES_LISTED:
            click.echo(f"  ... and {run.divergence_count - DIVERGENCES_LISTED} more on the reconciliation page.")

    @app.cli.group("dunning")
    def dunning_group():
        """Dunning of failed renewals."""

    @dunning_group.command("run")
    def dunning_run_command():
        """Move every open dunning one step now (notices, due retries, the end); safe to repeat."""
        from flask import current_app

        from billing.passes import dunning_pass

        db.session.commit()
        run = dunning_pass(db.session, gateway(), trigger="cli",
                           smtp_configured=bool(current_app.config.get("SMTP_URL")),
                           portal_base_url=current_app.config.get("PORTAL_BASE_URL", ""))
        if run is None:
            raise click.ClickException("A dunning pass is already running.")
        steps = ", ".join(f"{step}: {count}" for step, count in sorted((run.details or {}).get("steps", {}).items()))
        click.echo(f"Dunning pass #{run.id}: {run.processed} processed, {run.failed} failed ({steps or 'nothing due'}).")
        for error in (run.details or {}).get("errors", []):
            click.echo(f"  failed: {error}", err=True)

    @app.cli.group("notices")
    def notices_group():
        """Notices to app owners (the outbox)."""

    @notices_group.command("send")
    def notices_send_command():
        """Send the pending notices by SMTP now (needs SMTP_URL)."""
        from flask import current_app

        from billing.mail import send_pending_messages
        from portal.notices.rendering import for_recipient

        if not current_app.config.get("SMTP_URL"):
            raise click.ClickException("SMTP_URL is not set: notices are kept in the portal only.")
        db.session.commit()
        run = send_pending_messages(db.session, current_app.config["SMTP_URL"], current_app.config["MAIL_FROM"],
                                    render=for_recipient)
        if run is None:
            raise click.ClickException("Notices are already being sent.")
        click.echo(f"Notices: {run.processed} sent, {run.failed} refused{'; ' + run.error if run.error else ''}.")
