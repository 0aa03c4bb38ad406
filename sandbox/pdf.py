"""A minimal, valid PDF of an invoice, written by hand (one page, built-in Helvetica)."""

from __future__ import annotations

from typing import Any

from .clock import iso_date
from .money import format_amount


def _escape(text: str) -> bytes:
    # Standard fonts use WinAnsiEncoding: cp1252 covers Portuguese and the usual symbols.
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _text(x: int, y: int, size: int, text: str, bold: bool = False) -> bytes:
    font = b"/F2" if bold else b"/F1"
    return b"BT " + font + b" %d Tf %d %d Td (" % (size, x, y) + _escape(text) + b") Tj ET\n"


def _right(x_right: int, y: int, size: int, text: str, bold: bool = False) -> bytes:
    # Helvetica averages about half an em per glyph; good enough to right-align amounts.
    width = int(len(text) * size * 0.55)
    return _text(x_right - width, y, size, text, bold)


def invoice_pdf(inv: dict[str, Any], account_name: str = "Kernel Billing Sandbox") -> bytes:
    currency = inv["currency"]
    content = bytearray()
    y = 790
    content += _text(50, y, 20, "Invoice", bold=True)
    content += _right(545, y, 10, account_name)
    y -= 30
    content += _text(50, y, 10, f"Invoice number: {inv.get('number') or 'draft'}")
    y -= 14
    content += _text(50, y, 10, f"Date of issue: {iso_date(inv['created'])}")
    y -= 14
    content += _text(50, y, 10, f"Status: {inv['status']}")
    y -= 14
    billed = inv.get("customer_name") or inv.get("customer_email") or inv["customer"]
    content += _text(50, y, 10, f"Bill to: {billed}")
    y -= 30
    content += _text(50, y, 10, "Description", bold=True)
    content += _right(545, y, 10, "Amount", bold=True)
    y -= 6
    content += b"0.6 G 50 %d m 545 %d l S 0 G\n" % (y, y)
    y -= 16
    for line in inv["lines"]["data"]:
        description = line["description"] or ""
        if len(description) > 80:
            description = description[:77] + "..."
        content += _text(50, y, 10, description)
        content += _right(545, y, 10, format_amount(line["amount"], currency))
        y -= 12
        period = line.get("period") or {}
        if period.get("start") and period.get("end"):
            content += _text(60, y, 8, f"{iso_date(period['start'])} - {iso_date(period['end'])}")
            y -= 16
        if y < 120:
            break
    y -= 10
    content += b"0.6 G 300 %d m 545 %d l S 0 G\n" % (y, y)
    y -= 16
    for label, key in (("Subtotal", "subtotal"), ("Total", "total"), ("Amount paid", "amount_paid"),
                       ("Amount due", "amount_due"), ("Amount remaining", "amount_remaining")):
        bold = key in ("total", "amount_remaining")
        content += _text(300, y, 10, label, bold=bold)
        content += _right(545, y, 10, format_amount(inv[key], currency), bold=bold)
        y -= 14
    return _assemble(bytes(content))


def _assemble(stream: bytes) -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
