"""Brazilian tax ids: CPF (people, 11 digits) and CNPJ (companies, 14), checked by their check digits.

The one validator for both (the form, the service and the tests use it): python-stdnum does the
check-digit arithmetic, a well-kept library with tests of its own. The kind follows from the
length, as on every Brazilian form; formatting marks (``.``, ``-``, ``/``, spaces) are accepted
and dropped. Only digits: the alphanumeric CNPJ (issued from July 2026) is not accepted yet,
since Stripe's ``br_cnpj`` is documented with digits.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from stdnum.br import cnpj, cpf
from stdnum.exceptions import ValidationError


class TaxIdKind(enum.StrEnum):
    """Stripe's ``tax_id_data[][type]`` for each."""

    CPF = "br_cpf"
    CNPJ = "br_cnpj"


class InvalidTaxId(ValueError):
    """Not a CPF or CNPJ: wrong length, not digits, or wrong check digits (``reason`` says which)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "length" or "check_digits"


@dataclass(frozen=True)
class TaxId:
    kind: TaxIdKind
    digits: str

    @property
    def formatted(self) -> str:
        """``390.533.447-05`` or ``11.222.333/0001-81``."""
        return (cpf if self.kind == TaxIdKind.CPF else cnpj).format(self.digits)


_MODULES = {11: (TaxIdKind.CPF, cpf), 14: (TaxIdKind.CNPJ, cnpj)}


def parse_tax_id(text: str) -> TaxId:
    """The CPF or CNPJ in ``text``; raises ``InvalidTaxId``."""
    digits = "".join(ch for ch in text if ch not in " .-/")
    if not digits.isdigit() or len(digits) not in _MODULES:
        raise InvalidTaxId("length")
    if len(set(digits)) == 1:  # 111.111.111-11 passes the arithmetic, but such numbers are never issued
        raise InvalidTaxId("check_digits")
    kind, module = _MODULES[len(digits)]
    try:
        module.validate(digits)
    except ValidationError as error:
        raise InvalidTaxId("check_digits") from error
    return TaxId(kind, digits)
