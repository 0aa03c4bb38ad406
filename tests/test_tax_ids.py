"""The one CPF/CNPJ validator: check digits, formatting marks, and what it refuses."""
import pytest

from billing.tax_ids import InvalidTaxId, TaxIdKind, parse_tax_id


@pytest.mark.parametrize("text,kind,digits,formatted", [
    ("390.533.447-05", TaxIdKind.CPF, "39053344705", "390.533.447-05"),
    ("39053344705", TaxIdKind.CPF, "39053344705", "390.533.447-05"),
    (" 529 982 247-25 ", TaxIdKind.CPF, "52998224725", "529.982.247-25"),
    ("11.222.333/0001-81", TaxIdKind.CNPJ, "11222333000181", "11.222.333/0001-81"),
    ("11222333000181", TaxIdKind.CNPJ, "11222333000181", "11.222.333/0001-81"),
])
def test_valid_numbers_in_any_formatting(text, kind, digits, formatted):
    tax_id = parse_tax_id(text)
    assert (tax_id.kind, tax_id.digits, tax_id.formatted) == (kind, digits, formatted)


@pytest.mark.parametrize("text,reason", [
    ("390.533.447-06", "check_digits"),  # last digit off by one
    ("390.533.447-15", "check_digits"),  # first check digit wrong
    ("111.111.111-11", "check_digits"),  # repeated digits pass the arithmetic but are not issued
    ("11.222.333/0001-82", "check_digits"),
    ("00.000.000/0000-00", "check_digits"),
    ("3905334470", "length"),  # 10 digits
    ("390533447050", "length"),  # 12 digits: neither a CPF nor a CNPJ
    ("12.ABC.345/01DE-35", "length"),  # the alphanumeric CNPJ: not accepted yet
    ("", "length"),
    ("cpf 390.533.447-05", "length"),
])
def test_invalid_numbers_are_refused_with_the_reason(text, reason):
    with pytest.raises(InvalidTaxId) as refused:
        parse_tax_id(text)
    assert refused.value.reason == reason
