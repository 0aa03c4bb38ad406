"""The billing details form: every rule here or in ``billing.tax_ids`` (CPF/CNPJ); a refusal names the field."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField, SubmitField, ValidationError
from wtforms.validators import DataRequired, Email, Length, Optional

from billing.billing_details import BRAZILIAN_STATES, BillingDetailsInput
from billing.models import App, AppBillingDetails
from billing.tax_ids import InvalidTaxId, parse_tax_id


def _digits(text: str | None) -> str:
    return "".join(ch for ch in (text or "") if ch.isdigit())


class BillingDetailsForm(FlaskForm):
    legal_name = StringField(_l("Legal name"), validators=[DataRequired(), Length(max=200)],
                             description=_l("The person's or company's name as registered."))
    tax_id = StringField(_l("CPF or CNPJ"), validators=[DataRequired(), Length(max=20)])
    email = EmailField(_l("Billing e-mail"), validators=[Optional(), Email(), Length(max=254)],
                       description=_l("Receives invoices and billing notices, besides the app's owners."))
    postal_code = StringField(_l("CEP"), validators=[DataRequired(), Length(max=9)])
    street = StringField(_l("Street"), validators=[DataRequired(), Length(max=200)])
    number = StringField(_l("Number"), validators=[DataRequired(), Length(max=20)])
    complement = StringField(_l("Complement"), validators=[Optional(), Length(max=100)])
    district = StringField(_l("District"), validators=[DataRequired(), Length(max=100)])
    city = StringField(_l("City"), validators=[DataRequired(), Length(max=100)])
    state = SelectField(_l("State"), choices=[("", "—")] + [(uf, uf) for uf in BRAZILIAN_STATES],
                        validators=[DataRequired()])
    submit = SubmitField(_l("Save billing details"))

    def validate_tax_id(self, field) -> None:
        try:
            parse_tax_id(field.data or "")
        except InvalidTaxId as invalid:
            if invalid.reason == "length":
                raise ValidationError(_l("Enter a CPF (11 digits) or a CNPJ (14 digits).")) from invalid
            raise ValidationError(_l("This CPF or CNPJ is not valid: check its digits.")) from invalid

    def validate_postal_code(self, field) -> None:
        if len(_digits(field.data)) != 8 or not set(field.data.strip()) <= set("0123456789-. "):
            raise ValidationError(_l("Enter the CEP's 8 digits, like 01310-100."))

    def fill_from(self, app: App, details: AppBillingDetails | None) -> None:
        """The saved values, as people write them."""
        self.email.data = app.billing_email
        if details is None:
            return
        self.legal_name.data = details.legal_name
        self.tax_id.data = parse_tax_id(details.tax_id).formatted
        self.postal_code.data = f"{details.postal_code[:5]}-{details.postal_code[5:]}"
        self.street.data, self.number.data, self.complement.data = details.street, details.number, details.complement
        self.district.data, self.city.data, self.state.data = details.district, details.city, details.state

    def values(self) -> BillingDetailsInput:
        """The checked input (call after ``validate_on_submit``)."""
        def text(field) -> str:
            return (field.data or "").strip()

        return BillingDetailsInput(
            legal_name=text(self.legal_name), tax_id=parse_tax_id(self.tax_id.data),
            email=text(self.email).lower() or None, postal_code=_digits(self.postal_code.data),
            street=text(self.street), number=text(self.number), complement=text(self.complement) or None,
            district=text(self.district), city=text(self.city), state=self.state.data)
