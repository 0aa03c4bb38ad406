"""Sign-in and sign-out pages."""
from __future__ import annotations

import logging

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from billing.models import User
from portal.auth.forms import LoginForm
from portal.auth.passwords import DUMMY_HASH, verify_password
from portal.extensions import db, limiter
from portal.redirects import is_safe_redirect

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)


def _account_key() -> str:
    return "login-account:" + request.form.get("email", "").strip().lower()


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
    """Sign the user out."""
    logout_user()
    flash(_("You have been signed out."), "info")
    return redirect(url_for("auth.login"))
