"""mirrored subscriptions and invoices: when each last took a new Stripe state (orders same-second writes)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 09:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('app_subscriptions') as batch_op:
        batch_op.add_column(sa.Column('stripe_synced_ns', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('kernel_invoices') as batch_op:
        batch_op.add_column(sa.Column('stripe_synced_ns', sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table('kernel_invoices') as batch_op:
        batch_op.drop_column('stripe_synced_ns')
    with op.batch_alter_table('app_subscriptions') as batch_op:
        batch_op.drop_column('stripe_synced_ns')
