"""Sending the outbox: pending notices go out by SMTP when ``SMTP_URL`` is configured.

Plain ``smtplib``, not Flask-Mail: sending runs in the RQ worker, outside any request, one
message at a time with its own commit (a crash never sends a message twice), and it must tell
a refused recipient (the message fails) from a lost server (the batch stops, the rest waits).
Flask-Mail wraps the same ``smtplib`` behind an app context and a connection helper that hides
those three outcomes, and adds no escaping or templating this module needs.

``SMTP_URL`` looks like ``smtp://user:password@host:587`` (STARTTLS when the
server offers it), ``smtps://...:465`` (TLS from the start) or ``smtp://host:25``.
Without it, notices are written as ``stored`` and only read in the portal, and this
job has nothing to do. A message the server refuses is marked ``failed`` with the
reason; when the server cannot be reached the batch stops and the messages stay
``pending`` for the next run (every five minutes).
"""
from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Callable, Optional
from urllib.parse import unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import clock
from billing.models import JobRun, OutboxMessage, OutboxStatus
from billing.runs import Batch, claim_run, finish_run

log = logging.getLogger(__name__)
NAME = "notices"
BATCH_SIZE = 200
SMTP_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: bool  # TLS from the first byte (smtps)
    username: Optional[str]
    password: Optional[str]

    @classmethod
    def from_url(cls, url: str) -> "SmtpSettings":
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://user:password@host:587 or smtps://host:465")
        tls = parts.scheme == "smtps"
        return cls(parts.hostname, parts.port or (465 if tls else 25), tls,
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.tls:
        server: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=SMTP_TIMEOUT_SECONDS,
                                                context=ssl.create_default_context())
    else:
        server = smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT_SECONDS)
        server.ehlo()
        if server.has_extn("starttls"):
            server.starttls(context=ssl.create_default_context())
            server.ehlo()
    if settings.username:
        server.login(settings.username, settings.password or "")
    return server


# A notice's (subject, body) in its recipient's language; the portal's templates write them (billing/ has no Flask).
Render = Callable[[OutboxMessage], tuple[str, str]]


def stored_text(message: OutboxMessage) -> tuple[str, str]:
    """A notice as it was written (an incident, an alert, a notice from before templates)."""
    return message.subject or "", message.body or ""


def _email(message: OutboxMessage, sender: str, render: Render) -> EmailMessage:
    subject, body = render(message)
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to_email
    email["Subject"] = subject
    email["Message-ID"] = make_msgid(idstring=f"kbp-outbox-{message.id}")
    email.set_content(body)
    return email


def send_pending_messages(session: Session, smtp_url: str, sender: str,
                          render: Render = stored_text) -> Optional[JobRun]:
    """Send every pending notice, written by ``render``; None if SMTP is not configured or another sender runs."""
    if not smtp_url:
        return None
    settings = SmtpSettings.from_url(smtp_url)
    run = claim_run(session, NAME, trigger="schedule")
    if run is None:
        return None
    batch = Batch(session, NAME)
    pending = list(session.scalars(select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.PENDING)
                                   .order_by(OutboxMessage.id).limit(BATCH_SIZE)))
    if not pending:
        return finish_run(session, run, batch)
    try:
        server = _connect(settings)
    except (OSError, smtplib.SMTPException) as error:  # unreachable or refused login: try again next run
        log.warning("SMTP server %s:%s unavailable: %s", settings.host, settings.port, error)
        return finish_run(session, run, batch, error=f"SMTP unavailable: {error}")
    try:
        for message_id in pending:
            message = session.get(OutboxMessage, message_id)
            try:
                server.send_message(_email(message, sender, render))
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as refused:
                message.status, message.error = OutboxStatus.FAILED, str(refused)[:1000]
                batch.failed += 1
                batch.count("refused")
            except (smtplib.SMTPServerDisconnected, OSError) as lost:
                log.warning("SMTP connection lost (%s); the rest stays pending for the next run", lost)
                session.rollback()
                break
            else:
                message.status, message.sent_at, message.error = OutboxStatus.SENT, clock.now(), None
                batch.processed += 1
                batch.count("sent")
            session.commit()  # one message at a time: a crash later never sends this one again
    finally:
        try:
            server.quit()
        except (OSError, smtplib.SMTPException):
            pass
    return finish_run(session, run, batch)
