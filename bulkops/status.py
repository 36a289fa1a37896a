"""Operation and bulk status numbers, as Magento defines them."""

from __future__ import annotations

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
