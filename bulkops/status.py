"""Operation and bulk status numbers, as Magento defines them."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum


class OperationStatus(IntEnum):
    COMPLETE = 1
    RETRIABLY_FAILED = 2
    NOT_RETRIABLY_FAILED = 3
    OPEN = 4
    REJECTED = 5


class BulkStatus(IntEnum):
    NOT_STARTED = 0
    IN_PROGRESS = 1
    FINISHED_SUCCESSFULLY = 2
    FINISHED_WITH_FAILURE = 3


class UserType(IntEnum):
    INTEGRATION = 1
    ADMIN = 2
    CUSTOMER = 3
    GUEST = 4


FAILED = (OperationStatus.RETRIABLY_FAILED, OperationStatus.NOT_RETRIABLY_FAILED)
"""The statuses of failed operations."""


def derive_bulk_status(operation_count: int, counts: Mapping[int, int]) -> BulkStatus:
    """A bulk's status from its operations' counts by status. Rejected operations are not
    the bulk's: Magento stores none, and `operation_count` leaves them out. Operations counted
    in the bulk but with no row are open (Magento's reading); unlike Magento (bug #36911), a
    bulk with operations both open and done is in progress, not finished with failure."""
    counts = {status: n for status, n in counts.items() if status != OperationStatus.REJECTED}
    total = max(operation_count, sum(counts.values()))
    open_count = counts.get(OperationStatus.OPEN, 0) + total - sum(counts.values())
    if open_count == total:
        return BulkStatus.NOT_STARTED
    if open_count:
        return BulkStatus.IN_PROGRESS
    if counts.get(OperationStatus.COMPLETE, 0) == total:
        return BulkStatus.FINISHED_SUCCESSFULLY
    return BulkStatus.FINISHED_WITH_FAILURE
