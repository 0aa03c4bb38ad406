"""Command-line tools: ``flask create-superadmin``, ``flask seed-demo``, ``flask create-api-token``..."""
from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import select

from billing.errors import GatewayError
from billing.models import App, Role, User
from billing.plans import ensure_plans, paid_plans
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
        """Create the paid plans' products and prices in the Stripe the gateway points at; store the price ids."""
        ensure_plans(db.session)
        click.echo(f"Gateway: {gateway().describe()}")
        for plan in paid_plans(db.session):
            try:
                price_id = gateway().ensure_price(plan_code=plan.code, name=plan.name, amount=plan.price,
                                                  interval=plan.interval)
            except GatewayError as error:
                db.session.rollback()
                raise click.ClickException(f"{plan.code}: {error.message}") from error
            if plan.stripe_price_id != price_id:
                plan.stripe_price_id = price_id
            click.echo(f"  {plan.code:<12} {price_id}")
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

    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Create the three plans, two demo tenants with owners and a superadmin; print the logins."""
        for role, email, password in seed_demo():
            click.echo(f"  {role:<28} {email:<22} password: {password}")
