"""Table definitions. Column names follow Magento's `magento_bulk` / `magento_operation`; the
table names are our own so the store can share a database with a Magento installation."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    column,
    false,
    table,
)

from bulkops.store.types import RowId, Timestamp, caseless_text, exact_text, folded

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

bulk = Table(
    "bulkops_bulk",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("uuid", exact_text(39), nullable=False, unique=True),
    Column("user_id", Integer, nullable=True),
    Column("user_type", SmallInteger, nullable=True),
    Column("description", caseless_text(255), nullable=True),
    # Magento's: the accepted operations, those a client waits for.
    Column("operation_count", Integer, nullable=False),
    # Every operation row of the bulk, rejected ones included: what searches count.
    Column("operation_rows", Integer, nullable=False, server_default="0"),
    Column("start_time", Timestamp, nullable=False),
    # The store of the request, for handlers: Magento keeps it in the queue message.
    Column("store_code", exact_text(32), nullable=False, server_default="default"),
    # Bumped in the transaction of every change of one of its operations that the per-bulk
    # status routes show: their ETags (`bulkops.store.bulk_versions`).
    Column("version", BigInteger, nullable=False, server_default="0"),
    # Its own retention, chosen at submission: deleted once past, whatever the lifetime
    # setting says; NULL: the setting decides.
    Column("expires_at", Timestamp, nullable=True),
    # Where its completion is announced (`X-Bulk-Callback-Url`, checked at submission); NULL:
    # nowhere.
    Column("callback_url", exact_text(2048), nullable=True),
    Index(None, "start_time"),
    Index(None, "expires_at"),
    Index(None, "user_type", "user_id"),
    sqlite_autoincrement=True,
)

# The log's sort by description, caseless as searches compare it (migration 0013).
DESCRIPTION_INDEX = "ix_bulkops_bulk_description_id"
Index(DESCRIPTION_INDEX, folded(bulk.c.description), bulk.c.id)

# PostgreSQL only (migrations 0003 and 0005), so not declared on the table: the trigram index
# on the folded result_message that serves `result_message like '%...%'`.
RESULT_MESSAGE_TRIGRAMS = "ix_bulkops_operation_result_message_trigrams"

# SQLite only (migration 0017), so not in the metadata: an FTS5 trigram index of the operations'
# result messages (its rowid is the operation's id), kept by triggers, that serves `like`.
MESSAGE_TRIGRAMS = "bulkops_operation_message_trigrams"
message_trigrams = table(MESSAGE_TRIGRAMS, column("rowid"), column("result_message"))

operation = Table(
    "bulkops_operation",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column(
        "bulk_uuid",
        exact_text(39),
        ForeignKey("bulkops_bulk.uuid", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("operation_key", Integer, nullable=False),
    Column("topic_name", caseless_text(255), nullable=False),
    Column("serialized_data", exact_text(), nullable=True),
    Column("result_serialized_data", exact_text(), nullable=True),
    Column("status", SmallInteger, nullable=False),
    Column("error_code", Integer, nullable=True),
    Column("result_message", caseless_text(), nullable=True),
    Column("started_at", Timestamp, nullable=True),
    Column("updated_at", Timestamp, nullable=False),
    # The bulk's start time, copied (it never changes) so that filtering and sorting on it
    # use an index of this table instead of a join.
    Column("start_time", Timestamp, nullable=False),
    # Operations of one group are processed one after the other, in id order; NULL: the
    # operation waits for no other (`AsyncRoute.order_group`).
    Column("order_group", BigInteger, nullable=True),
    # Deliveries to workers since the operation was (re)opened that ended without an outcome
    # (the worker died), the one in progress included: past a limit, it is abandoned.
    Column("deliveries", Integer, nullable=False, server_default="0"),
    # A failed operation resubmitted with a corrected item: the bulk and the key of the
    # operation that took it over (`bulkops.services.resubmission`). No foreign key: the
    # new bulk may be deleted before the old one, which then still tells where it went.
    Column("resubmitted_to_bulk", exact_text(39), nullable=True),
    Column("resubmitted_to_key", Integer, nullable=True),
    Index(None, "bulk_uuid", "operation_key", unique=True),
    # Every index ends with `id`: the default order, and the tie-breaker of every sort.
    Index(None, "status", "id"),
    # A search limited to the caller's bulks reads only their operations, by status too,
    # rather than every operation of the status (and counts from the index alone).
    Index(None, "bulk_uuid", "status", "id"),
    Index(None, "start_time", "id"),
    sqlite_autoincrement=True,
)
# Searches compare the topic folded (see `folded`); the name is the one of the index on the
# plain column it replaced (migration 0005). PostgreSQL counts the matches from the index
# alone only if it holds the column too (its planner's rule for expression indexes).
TOPIC_STATUS_INDEX = "ix_bulkops_operation_topic_name_status_id"
Index(
    TOPIC_STATUS_INDEX,
    folded(operation.c.topic_name),
    operation.c.status,
    operation.c.id,
    postgresql_include=["topic_name"],
)

# Finished bulks whose notification was dismissed (Magento's `magento_acknowledged_bulk`);
# deleted with their bulk.
acknowledged_bulk = Table(
    "bulkops_acknowledged_bulk",
    metadata,
    Column(
        "bulk_uuid",
        exact_text(39),
        ForeignKey("bulkops_bulk.uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("acknowledged_at", Timestamp, nullable=False),
)

# Operations made final each minute, by topic and final status: what the dashboard charts
# over the last day without reading operations. Counted in the transaction that makes them
# final (`bulkops.store.finished`); rows older than a few days are deleted.
finished_minute = Table(
    "bulkops_finished_minute",
    metadata,
    Column("minute", Timestamp, primary_key=True),
    Column("topic_name", exact_text(255), primary_key=True),
    Column("status", SmallInteger, primary_key=True),
    Column("finished", BigInteger, nullable=False),
)

# Operations by bulk, topic and status, changed in the transaction of every change of their
# statuses (`bulkops.store.tallies`): facets of many operations read a row per bulk, topic and
# status instead of one per operation. Deleted with their bulk.
operation_tally = Table(
    "bulkops_operation_tally",
    metadata,
    Column(
        "bulk_uuid",
        exact_text(39),
        ForeignKey("bulkops_bulk.uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("topic_name", caseless_text(255), primary_key=True),
    Column("status", SmallInteger, primary_key=True),
    Column("operations", BigInteger, nullable=False),
    # A search's count by status (and topic), read without every bulk's rows (`search`).
    Index(None, "status", "topic_name"),
)

# Idempotency keys of submissions (`Idempotency-Key`), each in the scope of its caller (user
# type and id), written in the transaction of its bulk and deleted with it: a key never outlives
# its bulk, nor a bulk its key. `request_hash` tells the same request from another,
# `response` is the 202 body a repeat of the request is answered with again.
idempotency_key = Table(
    "bulkops_idempotency_key",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("user_type", SmallInteger, nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("idempotency_key", exact_text(255), nullable=False),
    Column("request_hash", exact_text(64), nullable=False),
    Column(
        "bulk_uuid",
        exact_text(39),
        ForeignKey("bulkops_bulk.uuid", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("response", exact_text(), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index(None, "user_type", "user_id", "idempotency_key", unique=True),
    Index(None, "created_at"),
    Index(None, "bulk_uuid"),
)

# The change feed (`bulkops.store.changes`): one row per change of an operation's status, or
# per bulk deleted (`operation_id` NULL), written in the transaction of the change without a
# position; positions are given after commit, one transaction at a time, in the order the
# rows became visible. No foreign key: a change outlives its bulk (its deletion is one).
operation_change = Table(
    "bulkops_operation_change",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("position", BigInteger, nullable=True),
    Column("bulk_uuid", exact_text(39), nullable=False),
    Column("operation_id", BigInteger, nullable=True),
    Column("operation_key", Integer, nullable=True),
    # The new status; NULL for a bulk deleted.
    Column("status", SmallInteger, nullable=True),
    # The bulk's owner, copied: only callers who read the bulk see its changes.
    Column("user_type", SmallInteger, nullable=True),
    Column("user_id", Integer, nullable=True),
    Column("changed_at", Timestamp, nullable=False),
    Index(None, "position", unique=True),
    Index(None, "user_type", "user_id", "position"),
    Index(None, "changed_at"),
)

# The feed's one row: the last position given, and the last deleted past its retention. Its
# row lock serialises the transactions that give positions.
change_head = Table(
    "bulkops_change_head",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("last_position", BigInteger, nullable=False),
    Column("pruned_through", BigInteger, nullable=False),
)

# Completion webhooks (`bulkops.store.webhooks`): one row per time a bulk with a callback URL
# completes, written in the transaction that completes it, with the body to send; delivered
# at least once by a worker that claims it (`lease_owner`, `next_attempt_at` moved past the
# claim), retried with backoff until delivered or failed for good. Deleted with its bulk.
webhook_delivery = Table(
    "bulkops_webhook_delivery",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    # The event's `webhook-id`: the same for every attempt, new for every completion.
    Column("event_id", exact_text(64), nullable=False, unique=True),
    Column(
        "bulk_uuid",
        exact_text(39),
        ForeignKey("bulkops_bulk.uuid", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("url", exact_text(2048), nullable=False),
    Column("payload", exact_text(), nullable=False),
    # `pending`, `delivered` or `failed`.
    Column("state", exact_text(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", Timestamp, nullable=False),
    # NULL once delivered or failed: never due again.
    Column("next_attempt_at", Timestamp, nullable=True),
    Column("lease_owner", exact_text(64), nullable=True),
    Column("last_attempt_at", Timestamp, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", exact_text(255), nullable=True),
    Column("delivered_at", Timestamp, nullable=True),
    Index(None, "next_attempt_at", "id"),
    Index(None, "bulk_uuid"),
)

admin_user = Table(
    "bulkops_admin_user",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", exact_text(40), nullable=False, unique=True),
    Column("password_hash", exact_text(255), nullable=False),
    Column("is_active", Boolean, nullable=False),
    Column("failures_count", Integer, nullable=False),
    Column("lock_expires", Timestamp, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    sqlite_autoincrement=True,
)

integration = Table(
    "bulkops_integration",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", exact_text(255), nullable=False, unique=True),
    # JSON list of ACL resource ids; ["Magento_Backend::all"] grants everything.
    Column("resources", exact_text(), nullable=False),
    Column("is_active", Boolean, nullable=False),
    # Reads every bulk; false: only the bulks it submitted.
    Column("all_bulks", Boolean, nullable=False, server_default=false()),
    # The callback URL of its bulks submitted without `X-Bulk-Callback-Url`; NULL: none.
    Column("webhook_url", exact_text(2048), nullable=True),
    Column("created_at", Timestamp, nullable=False),
    sqlite_autoincrement=True,
)

access_token = Table(
    "bulkops_access_token",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    # SHA-256 of the token: a stolen database does not yield usable tokens.
    Column("token_hash", exact_text(64), nullable=False, unique=True),
    Column("user_type", SmallInteger, nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=True),
    Column("revoked", Boolean, nullable=False),
    Index(None, "user_type", "user_id"),
    sqlite_autoincrement=True,
)

# An integration's OAuth 1.0a credentials (Magento's `oauth_consumer` and its access token in
# `oauth_token`): one consumer per integration. The secrets and the raw token are stored as
# `bulkops.sealing` seals them: encrypted when a key is configured.
oauth_consumer = Table(
    "bulkops_oauth_consumer",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "integration_id",
        Integer,
        ForeignKey("bulkops_integration.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("consumer_key", exact_text(32), nullable=False, unique=True),
    Column("consumer_secret", exact_text(255), nullable=False),
    Column(
        "access_token_id",
        BigInteger,
        ForeignKey("bulkops_access_token.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("access_token", exact_text(255), nullable=False),
    Column("access_token_secret", exact_text(255), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    sqlite_autoincrement=True,
)

# Nonces of signed requests (Magento's `oauth_nonce`): the key refuses a second use; rows
# older than the timestamp window are deleted, as such requests are refused anyway.
oauth_nonce = Table(
    "bulkops_oauth_nonce",
    metadata,
    Column(
        "consumer_id",
        Integer,
        ForeignKey("bulkops_oauth_consumer.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("nonce", exact_text(128), primary_key=True),
    Column("timestamp", BigInteger, nullable=False),
    Index(None, "timestamp"),
)

# The `db` transport's messages: one per operation waiting to be processed. A worker leases a
# message by moving `available_at` past the lease; a dead worker's lease simply runs out.
queue_message = Table(
    "bulkops_queue_message",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column(
        "operation_id",
        BigInteger,
        ForeignKey("bulkops_operation.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("topic_name", exact_text(255), nullable=False),
    Column("available_at", Timestamp, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("lease_owner", exact_text(64), nullable=True),
    # The operation's order group: a group's message with the lowest operation id is its head,
    # the only one that may be delivered (`bulkops.store.queue`).
    Column("order_group", BigInteger, nullable=True),
    Index(None, "available_at", "id"),
    Index(None, "order_group", "operation_id"),
    sqlite_autoincrement=True,
)

# Values of the installation, set once for every process (the crypt key of data hashes).
installation = Table(
    "bulkops_installation",
    metadata,
    Column("name", exact_text(64), primary_key=True),
    Column("value", exact_text(), nullable=False),
)

# The demo `customers` handler's own customers.
demo_customer = Table(
    "bulkops_demo_customer",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("website_id", Integer, nullable=False),
    Column("email", exact_text(255), nullable=False),
    Column("firstname", exact_text(255), nullable=True),
    Column("lastname", exact_text(255), nullable=True),
    Column("created_at", Timestamp, nullable=False),
    # The operation that created the customer, so that it completes when delivered again.
    Column("operation_id", BigInteger, nullable=True),
    Index(None, "website_id", "email", unique=True),
    sqlite_autoincrement=True,
)
