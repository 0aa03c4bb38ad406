"""Sign-in and sign-out pages, and the account page (password, signing out everywhere).

Sessions and remember-me cookies name the user's session token, not their id
(``User.get_id``), so signing out, changing the password or a superadmin's
revocation ends every copy of every cookie issued before.
"""
from __future__ import annotations

import logging

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user
from sqlalchemy import select

from billing.models import User
from portal.auth.forms import LoginForm, PasswordChangeForm
from portal.auth.passwords import DUMMY_HASH, hash_password, verify_password
from portal.auth.session import sign_out_everywhere
from flask_limiter.util import get_remote_address

from portal.extensions import db, limiter
from portal.i18n import remember_language, select_locale
from portal.redirects import is_safe_redirect

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)


def _account_key() -> str:
    # Per account *and* address: a stranger guessing passwords slows down only themselves; the
    # owner, signing in from elsewhere, is never locked out of their own account.
    return f"login-account:{request.form.get('email', '').strip().lower()}:{get_remote_address()}"


def _failed(response) -> bool:
    # Only failed attempts count against an account, so its owner is never locked out by success.
    return response.status_code != 302


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"], error_message="Too many sign-in attempts.")
@limiter.limit("5 per 15 minutes", key_func=_account_key, methods=["POST"], deduct_when=_failed)
def login():
    """Show the sign-in form and sign the user in."""
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user = db.session.scalar(select(User).where(User.email == email))
        ok = verify_password(user.password_hash if user else DUMMY_HASH, form.password.data)
        if user and ok and user.active:
            login_user(user, remember=form.remember.data)
            remember_language(user, select_locale())
            log.info("user %s signed in", user.id)
            target = request.args.get("next")
            return redirect(target if is_safe_redirect(target) else url_for("dashboard.index"))
        log.info("failed sign-in attempt")
        flash(_("Invalid email or password."), "error")
        return render_template("auth/login.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    """Sign the user out: the token changes, so no copy of this session's cookies works any more."""
    sign_out_everywhere(current_user._get_current_object())
    db.session.commit()
    flash(_("You have been signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """Change the password (which signs out every other browser) and sign out everywhere."""
    user = current_user._get_current_object()
    form = PasswordChangeForm()
    if form.validate_on_submit():
        if not verify_password(user.password_hash, form.current_password.data):
            form.current_password.errors.append(_("The current password is not correct."))
            return render_template("auth/account.html", form=form), 400
        user.password_hash = hash_password(form.new_password.data)
        user.revoke_sessions()
        db.session.commit()
        login_user(user)  # this browser goes on under the new token; every other one is signed out
        log.info("user %s changed their password", user.id)
        flash(_("Your password was changed and your other sessions were signed out."), "success")
        return redirect(url_for("auth.account"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/account.html", form=form), status


@bp.post("/account/sign-out-everywhere")
@login_required
def sign_out_all():
    """End every session of this user, in every browser, this one included."""
    user_id = current_user.id
    sign_out_everywhere(current_user._get_current_object())
    db.session.commit()
    log.info("user %s signed out everywhere", user_id)
    flash(_("You have been signed out on every device."), "info")
    return redirect(url_for("auth.login"))
