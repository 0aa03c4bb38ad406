"""Operations commands: ``flask billing pause|resume|status|notice`` and ``flask release record|list``.

They do what the superadmin's Operations page does, for a terminal during an incident
or a deploy script; each is audited and written to the release ledger.
"""
from __future__ import annotations

from typing import Optional

import click
from flask import Flask, current_app
from sqlalchemy import or_, select

from billing import releases
from billing.control import NotPaused, open_pause, pause_billing, resume_billing, send_incident_notice
from billing.models import App, Release
from portal.control import cli_actor, current_gateway_mode, git_revision, requeue
from portal.extensions import db

LISTED = 20


def _apps(references: tuple[str, ...]) -> list[int]:
    """App ids from ids or slugs; an unknown one stops the command before anything is written."""
    ids = []
    for reference in references:
        condition = App.slug == reference.strip()
        if reference.strip().isdigit():
            condition = or_(condition, App.id == int(reference))
        app_id = db.session.scalar(select(App.id).where(condition))
        if app_id is None:
            raise click.BadParameter(f"no app {reference!r} (give its id or slug)", param_hint="--app")
        ids.append(app_id)
    return ids


def init_app(app: Flask) -> None:
    @app.cli.group("billing")
    def billing_group():
        """The billing kill switch: pause, resume (one app first, then all), incident notices."""

    @billing_group.command("pause")
    @click.option("--reason", required=True, help="Why billing is paused (shown to superadmins, kept in the ledger).")
    @click.option("--by", default=None, help="Who pauses (default: cli:<login>).")
    def pause_command(reason: str, by: Optional[str]):
        """Pause billing: events are recorded but not applied, jobs charge nothing, plan changes are refused."""
        try:
            pause, opened = pause_billing(db.session, reason=reason, actor=cli_actor(by),
                                          gateway_mode=current_gateway_mode())
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--reason") from error
        db.session.commit()
        if opened:
            click.echo(f"Billing paused (pause #{pause.id}).")
        else:
            click.echo(f"Billing was already paused since {pause.paused_at:%Y-%m-%d %H:%M} UTC by {pause.paused_by}: "
                       f"{pause.reason}")

    @billing_group.command("resume")
    @click.option("--app", "apps", multiple=True, help="Resume this app first (id or slug; repeatable). "
                  "Without --app, billing resumes for every app.")
    @click.option("--by", default=None, help="Who resumes (default: cli:<login>).")
    def resume_command(apps: tuple[str, ...], by: Optional[str]):
        """Resume billing for some apps first, or for all; the events held meanwhile are applied, oldest first."""
        app_ids = _apps(apps) if apps else None
        try:
            held = resume_billing(db.session, actor=cli_actor(by), gateway_mode=current_gateway_mode(),
                                  app_ids=app_ids)
        except NotPaused as error:
            raise click.ClickException("Billing is not paused.") from error
        db.session.commit()
        queued = requeue(held)
        scope = f"app(s) {', '.join(apps)}" if apps else "every app"
        click.echo(f"Billing resumed for {scope}; {queued} held event(s) queued, oldest first.")

    @billing_group.command("status")
    def status_command():
        """Whether billing is paused, since when, by whom, why, and which apps were resumed first."""
        pause = open_pause(db.session)
        if pause is None:
            click.echo("Billing runs.")
            return
        click.echo(f"Billing PAUSED since {pause.paused_at:%Y-%m-%d %H:%M} UTC by {pause.paused_by}: {pause.reason}")
        for allowed in pause.apps:
            click.echo(f"  resumed first: {allowed.app.slug} (by {allowed.resumed_by})")

    @billing_group.command("notice")
    @click.option("--app", "apps", multiple=True, help="An app whose owners are told (id or slug; repeatable).")
    @click.option("--all-apps", is_flag=True, help="Tell the owners of every app.")
    @click.option("--subject", required=True)
    @click.option("--body", required=True, help="The message; owners read it on their Notices tab or by e-mail.")
    @click.option("--by", default=None, help="Who sends it (default: cli:<login>).")
    def notice_command(apps: tuple[str, ...], all_apps: bool, subject: str, body: str, by: Optional[str]):
        """Send an incident notice to the owners of the chosen apps, through the outbox."""
        if bool(apps) == all_apps:
            raise click.UsageError("give --app (one or more) or --all-apps")
        app_ids = list(db.session.scalars(select(App.id))) if all_apps else _apps(apps)
        try:
            entry, written = send_incident_notice(
                db.session, app_ids=app_ids, subject=subject, body=body, actor=cli_actor(by),
                gateway_mode=current_gateway_mode(), smtp_configured=bool(current_app.config.get("SMTP_URL")))
        except ValueError as error:
            raise click.ClickException(str(error)) from error
        db.session.commit()
        click.echo(f"Incident notice #{entry.id}: {written} message(s) to the owners of {len(app_ids)} app(s).")

    @app.cli.group("release")
    def release_group():
        """The release ledger: deploys, gateway mode changes, pauses, resumes, notices."""

    @release_group.command("record")
    @click.option("--version", "version", required=True, help="The version deployed, e.g. 2026.12.04-1.")
    @click.option("--git-revision", "revision", default=None, help="Default: GIT_REVISION, else the checkout's HEAD.")
    @click.option("--by", default=None, help="Who deploys (default: cli:<login>).")
    @click.option("--notes", default="", help="What changed, in a line.")
    def record_command(version: str, revision: Optional[str], by: Optional[str], notes: str):
        """Record a deploy: version, git revision, the gateway mode it runs in, and who."""
        revision = revision or git_revision() or ""
        try:
            entry = releases.record_release(db.session, version=version, git_revision=revision,
                                            gateway_mode=current_gateway_mode(), actor=cli_actor(by), notes=notes)
        except ValueError as error:
            raise click.ClickException(str(error)) from error
        db.session.commit()
        click.echo(f"Release #{entry.id}: {entry.version} at {entry.git_revision or 'unknown revision'} "
                   f"({entry.gateway_mode}), by {entry.actor}.")

    @release_group.command("list")
    @click.option("--limit", default=LISTED, show_default=True, type=click.IntRange(1, 1000))
    def list_command(limit: int):
        """The newest ledger entries first."""
        for entry in db.session.scalars(select(Release).order_by(Release.id.desc()).limit(limit)):
            click.echo(f"#{entry.id:<5} {entry.created_at:%Y-%m-%d %H:%M} {entry.kind.value:<16} "
                       f"{entry.gateway_mode:<12} {entry.version or '':<14} {(entry.git_revision or '')[:12]:<12} "
                       f"{entry.actor}  {entry.summary}")
