"""Running one operation through its route's handler, and its outcome by Magento's rules."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bulkops.errors import InternalError, new_report_id, render
from bulkops.handlers.base import (
    AsyncRoute,
    HandlerError,
    OperationInput,
    RetriableError,
)
from bulkops.handlers.registry import HandlerRegistry
from bulkops.metrics import instruments
from bulkops.sealing import SealingKeyError
from bulkops.services.payloads import Payloads
from bulkops.services.php_json import php_json
from bulkops.services.submission import reason, rejection
from bulkops.status import OperationStatus
from bulkops.store.database import UNAVAILABLE_ERRORS
from bulkops.store.lifecycle import Result, utc_now
from bulkops.store.rows import AnyRow

log = logging.getLogger("bulkops.worker")


ABANDONED = "The operation was abandoned after %count deliveries."
"""The result of an operation whose deliveries kept ending without an outcome."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Deliver the operation again, not before `available_at`; it stays open meanwhile."""

    available_at: datetime
    counts_as_attempt: bool = True
    """False when the handler met the database unavailable: that was no attempt of its own."""


Outcome = Result | Retry


class Executor:
    """Finds an operation's route by its topic and runs the handler."""

    def __init__(
        self,
        routes: HandlerRegistry,
        retry_backoff_seconds: float,
        payloads: Payloads,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.routes = routes
        self.backoff = retry_backoff_seconds
        self.payloads = payloads
        self.clock = clock
        self._by_topic: dict[str, AsyncRoute | None] = {}

    def route_for(self, topic_name: str) -> AsyncRoute | None:
        if topic_name not in self._by_topic:
            self._by_topic[topic_name] = self.routes.for_topic(topic_name)
        return self._by_topic[topic_name]

    async def run(self, operation: AnyRow, attempts: int) -> Outcome:
        """`operation` as `start_operations` answers it; `attempts` counts this delivery."""
        route = self.route_for(operation.topic_name)
        if route is None:
            return _failed(
                operation.id,
                OperationStatus.NOT_RETRIABLY_FAILED,
                f'No handler is configured for topic "{operation.topic_name}".',
            )
        try:
            payload = _payload(self.payloads.read(operation.serialized_data))
        except (TypeError, ValueError, KeyError, SealingKeyError) as error:
            return _failed(
                operation.id,
                OperationStatus.NOT_RETRIABLY_FAILED,
                f"The operation's data cannot be read: {error}",
            )
        # Items were validated when submitted, but the route's rules may have changed since
        # (a retry, an operation queued before a deploy): a handler never sees an item they
        # refuse. It needs new input: not retriable.
        refused = rejection(route, payload)
        if refused is not None:
            return _failed(operation.id, OperationStatus.NOT_RETRIABLY_FAILED, reason(refused))
        try:
            with instruments.handler_seconds.labels(operation.topic_name).time():
                value = await route.handler(
                    OperationInput(
                        payload=payload,
                        bulk_uuid=operation.bulk_uuid,
                        operation_id=operation.id,
                        operation_key=operation.operation_key,
                        store_code=operation.store_code,
                        user_type=operation.user_type,
                        user_id=operation.user_id,
                    )
                )
        except RetriableError as error:
            if attempts < route.max_attempts:
                delay = self.backoff * 2 ** (attempts - 1)
                return Retry(self.clock() + timedelta(seconds=delay))
            return _handler_failed(operation.id, OperationStatus.RETRIABLY_FAILED, error)
        except HandlerError as error:
            return _handler_failed(operation.id, OperationStatus.NOT_RETRIABLY_FAILED, error)
        except UNAVAILABLE_ERRORS as error:
            # The infrastructure failed, not the handler: no outcome to record. The driver's
            # own message: SQLAlchemy's adds the statement's values (an item's data).
            log.warning(
                "operation %s (%s) meets the database unavailable, to be delivered again: %r",
                operation.id,
                operation.topic_name,
                getattr(error, "orig", None) or error,
            )
            return Retry(self.clock() + timedelta(seconds=self.backoff), counts_as_attempt=False)
        except Exception:
            # Its text may hold anything (a statement and its values, a host name): the
            # operation shows a report id, the log has the details under it.
            report_id = new_report_id()
            log.exception(
                "operation %s (%s) failed, report %s",
                operation.id,
                operation.topic_name,
                report_id,
            )
            message = InternalError(report_id).message
            return _failed(operation.id, OperationStatus.NOT_RETRIABLY_FAILED, message)
        return _completed(operation.id, route, value, self.payloads)


def abandoned(operation_id: int, deliveries: int) -> Result:
    """Failed, retriably as an operation whose worker vanished (Magento's `Unknown Error`): a
    client may retry it once the handler is fixed."""
    message = render(ABANDONED, {"count": deliveries})
    return _failed(operation_id, OperationStatus.RETRIABLY_FAILED, message)


def _payload(serialized_data: str | None) -> Any:
    """The item as the client sent it, from Magento's `meta_information` wrapper."""
    if serialized_data is None:
        raise ValueError("it was removed when the operation completed")
    return json.loads(json.loads(serialized_data)["meta_information"])


def _completed(operation_id: int, route: AsyncRoute, value: Any, payloads: Payloads) -> Result:
    message = f"Service execution success {route.service}"
    try:
        result = None if value is None else payloads.stored(php_json(value))
    except (TypeError, ValueError) as error:
        # As in Magento, an output that cannot be converted only adds to the message.
        result = None
        message = f"{message}; The result cannot be stored: {error}"
    return Result(operation_id, OperationStatus.COMPLETE, message, None, result)


def _handler_failed(operation_id: int, status: OperationStatus, error: HandlerError) -> Result:
    return Result(operation_id, status, render(error.message, error.parameters), error.code)


def _failed(operation_id: int, status: OperationStatus, message: str) -> Result:
    return Result(operation_id, status, message, 0)
