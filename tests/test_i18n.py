"""Portuguese and English: the browser chooses, the switch overrides, Babel formats money and dates."""
from datetime import datetime, timezone
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo

from portal import i18n
from portal.config import ROOT


def test_portuguese_for_a_brazilian_browser(client):
    page = client.get("/login", headers={"Accept-Language": "pt-BR,pt;q=0.9"}).get_data(as_text=True)
    assert "Entrar" in page and 'lang="pt-BR"' in page


def test_english_for_an_english_browser(client):
    page = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert "Sign in" in page and "Entrar" not in page


def test_portuguese_when_the_browser_says_nothing(app):
    assert "Entrar" in app.test_client().get("/login").get_data(as_text=True)


def test_switch_overrides_the_browser(client):
    response = client.post("/language", data={"lang": "en", "next": "/login"})
    assert response.headers["Location"] == "/login"
    page = client.get("/login", headers={"Accept-Language": "pt-BR"}).get_data(as_text=True)
    assert "Sign in" in page


def test_switch_refuses_off_site_next(client):
    response = client.post("/language", data={"lang": "en", "next": "https://evil.test/"})
    assert response.headers["Location"] == "/dashboard"


def test_money_in_brazilian_format(app):
    with app.test_request_context(headers={"Accept-Language": "pt-BR"}):
        assert i18n.money(123456, "BRL").replace("\xa0", " ") == "R$ 1.234,56"
        assert i18n.money(20000, "BRL").replace("\xa0", " ") == "R$ 200,00"


def test_money_in_english_format(app):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert i18n.money(123456, "BRL") == "R$1,234.56"


def test_dates_follow_the_locale(app):
    moment = datetime(2026, 12, 25, 15, tzinfo=timezone.utc)
    with app.test_request_context(headers={"Accept-Language": "pt-BR"}):
        assert i18n.date(moment) == "25 de dez. de 2026"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert i18n.date(moment) == "Dec 25, 2026"
    # São Paulo time: late evening UTC is still the same day there, early morning UTC is the day before.
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert i18n.date(datetime(2026, 12, 25, 2, tzinfo=timezone.utc)) == "Dec 24, 2026"


def test_every_user_facing_string_has_a_portuguese_translation():
    method_map = [("portal/**.py", "python"), ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}
    msgids = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map=method_map, keywords=keywords
    ):
        singular = message[0] if isinstance(message, (tuple, list)) else message
        if singular:
            msgids.add(singular)
    mo_path = Path(ROOT, "translations", "pt_BR", "LC_MESSAGES", "messages.mo")
    with open(mo_path, "rb") as handle:
        catalog = read_mo(handle)
    translated = set()
    for entry in catalog:
        if not entry.id:
            continue
        # Plural entries carry tuples: translated only when every plural form is.
        forms = entry.string if isinstance(entry.string, (tuple, list)) else (entry.string,)
        if all(forms):
            translated.add(entry.id[0] if isinstance(entry.id, (tuple, list)) else entry.id)
    assert msgids, "no strings extracted: the extraction settings are wrong"
    missing = sorted(msgids - translated)
    assert not missing, f"untranslated (run `make translations` and fill pt_BR): {missing}"


def test_the_language_a_user_reads_in_is_kept_for_their_emails(app, owner, tenant):
    from tests.helpers.clients import AuthActions
    from tests.helpers.data import user_by_email

    browser = app.test_client()
    browser.environ_base["HTTP_ACCEPT_LANGUAGE"] = "pt-BR"
    assert AuthActions(browser).login(owner.email).status_code == 302
    assert user_by_email(app, owner.email).locale == "pt_BR"  # the language they signed in with
    browser.post("/language", data={"lang": "en", "next": "/dashboard"})
    assert user_by_email(app, owner.email).locale == "en"  # the switch


def test_every_alert_kind_billing_raises_has_a_translated_title_and_sentence():
    """Admin pages show an alert by its title and sentence (portal/admin/alert_text.py), never its raw kind."""
    import ast

    from billing.alert_rules import RULES
    from portal.admin.alert_text import MESSAGES, TITLES

    raised = set(RULES)
    for path in Path(ROOT, "billing").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "raise_alert":
                kinds = [k.value.value for k in node.keywords
                         if k.arg == "kind" and isinstance(k.value, ast.Constant)]
                raised.update(kinds)
    assert {"payment_failed", "webhook_failed", "reconciliation_divergence"} <= raised  # the walk found them
    assert raised - set(TITLES) == set(), "alert kinds without a title in portal/admin/alert_text.py"
    assert raised - set(MESSAGES) == set(), "alert kinds without a sentence in portal/admin/alert_text.py"


def test_alerts_read_in_the_readers_language(app):
    from billing.models import Alert, AlertSeverity
    from portal.admin.alert_text import alert_message, alert_title

    alert = Alert(kind="payment_failed", severity=AlertSeverity.CRITICAL, message="Renewal payment failed (raw)",
                  details={"invoice": "in_1", "attempt": 2, "amount_due": 9900, "currency": "BRL",
                           "failure_code": "card_declined"})
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert alert_title(alert.kind) == "Renewal payment failed"
        assert alert_message(alert) == "Retry 2 of invoice in_1 (R$99.00) failed: card_declined."
    with app.test_request_context(headers={"Accept-Language": "pt-BR"}):
        assert alert_title(alert.kind) == "Falha no pagamento da renovação"
        assert alert_message(alert) == "A tentativa 2 da fatura in_1 (R$\xa099,00) falhou: card_declined."
    old = Alert(kind="payment_failed", severity=AlertSeverity.CRITICAL, message="As it was written", details=None)
    with app.test_request_context(headers={"Accept-Language": "pt-BR"}):
        assert alert_message(old) == "As it was written"


def test_template_strings_are_translated_escaped_and_formatted_as_jinja_would(app):
    """Templates' ``_()`` (portal.i18n's one-call gettext): translated, its variables escaped, ``%%`` a percent."""
    from flask import render_template_string

    with app.test_request_context(headers={"Accept-Language": "pt-BR"}):
        assert render_template_string("{{ _('Sign out') }}") == "Sair"
        assert render_template_string("{{ _('Billing') }}|{{ gettext('Billing') }}") == "Cobrança|Cobrança"
        assert render_template_string("{{ _('%(name)s here', name='<b>x</b>') }}") == "&lt;b&gt;x&lt;/b&gt; here"
        assert render_template_string("{{ _('100%% paid') }}") == "100% paid"
        assert render_template_string("{{ _('%(string)s/%(context)s', string='a', context='b') }}") == "a/b"
        assert render_template_string("{% macro m() %}{{ _('Sign out') }}{% endmacro %}{{ m() }}") == "Sair"
