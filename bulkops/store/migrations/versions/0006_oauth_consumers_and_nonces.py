"""OAuth 1.0a: each integration's consumer and access token credentials, and the nonces of
signed requests.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from bulkops.store.types import Timestamp, exact_text

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulkops_oauth_consumer",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("consumer_key", exact_text(32), nullable=False),
        sa.Column("consumer_secret", exact_text(255), nullable=False),
        sa.Column("access_token_id", sa.BigInteger(), nullable=False),
        sa.Column("access_token", exact_text(255), nullable=False),
        sa.Column("access_token_secret", exact_text(255), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["bulkops_integration.id"],
            name="fk_bulkops_oauth_consumer_integration_id_bulkops_integration",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["access_token_id"],
            ["bulkops_access_token.id"],
            name="fk_bulkops_oauth_consumer_access_token_id_bulkops_access_token",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_bulkops_oauth_consumer"),
        sa.UniqueConstraint("integration_id", name="uq_bulkops_oauth_consumer_integration_id"),
        sa.UniqueConstraint("consumer_key", name="uq_bulkops_oauth_consumer_consumer_key"),
    )
    op.create_table(
        "bulkops_oauth_nonce",
        sa.Column("consumer_id", sa.Integer(), nullable=False),
        sa.Column("nonce", exact_text(128), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_id"],
            ["bulkops_oauth_consumer.id"],
            name="fk_bulkops_oauth_nonce_consumer_id_bulkops_oauth_consumer",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("consumer_id", "nonce", name="pk_bulkops_oauth_nonce"),
    )
    op.create_index("ix_bulkops_oauth_nonce_timestamp", "bulkops_oauth_nonce", ["timestamp"])


def downgrade() -> None:
    op.drop_table("bulkops_oauth_nonce")
    op.drop_table("bulkops_oauth_consumer")
