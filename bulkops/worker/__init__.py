"""Processing operations: lease messages, run handlers, record results; and the periodic
jobs (relay, marking operations open too long, cleanup)."""

from bulkops.worker.execution import Executor, Outcome, Retry
from bulkops.worker.maintenance import Maintenance
from bulkops.worker.worker import DEFAULT_GRACE_SECONDS, Worker

__all__ = ["DEFAULT_GRACE_SECONDS", "Executor", "Maintenance", "Outcome", "Retry", "Worker"]
