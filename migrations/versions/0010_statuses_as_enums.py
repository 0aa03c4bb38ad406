"""Statuses as enums: invoice, payment, dunning outcome, job and reconciliation runs, divergence kind, checkout mode

Each column keeps its VARCHAR and gains the CHECK constraint its enum declares, so a
status outside the list is refused by the database as well as by the model.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 20:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# (table, column, enum name, values, length, nullable)
COLUMNS = [
    ('kernel_invoices', 'status', 'invoice_status', ('draft', 'open', 'paid', 'uncollectible', 'void'), 32, False),
    ('kernel_invoices', 'dunning_outcome', 'dunning_outcome', ('paid', 'exhausted', 'void'), 32, True),
    ('kernel_checkout_sessions', 'mode', 'checkout_mode', ('subscription', 'setup'), 16, False),
    ('kernel_payments', 'status', 'payment_status',
     ('requires_payment_method', 'requires_confirmation', 'requires_action', 'processing', 'requires_capture',
      'canceled', 'succeeded'), 32, False),
    ('job_runs', 'status', 'job_run_status', ('running', 'succeeded', 'failed'), 32, False),
    ('reconciliation_runs', 'status', 'reconciliation_run_status', ('running', 'succeeded', 'failed'), 32, False),
    ('reconciliation_divergences', 'kind', 'divergence_kind',
     ('status', 'plan', 'period', 'amount', 'paid', 'missing_local', 'missing_stripe'), 64, False),
]


def upgrade():
    for table, column, name, values, length, nullable in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.String(length=length), existing_nullable=nullable,
                type_=sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length))


def downgrade():
    for table, column, name, values, length, nullable in reversed(COLUMNS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.Enum(*values, name=name, native_enum=False, create_constraint=True,
                                              length=length),
                existing_nullable=nullable, type_=sa.String(length=length))
