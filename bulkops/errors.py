"""Errors that reach clients, shaped as Magento's Web API error bodies.

Magento sends the *un-substituted* phrase in `message` and the substitution values in
`parameters`; aggregate input errors carry the individual ones in `errors`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

Parameters = dict[str, Any] | list[Any]


class WebapiError(Exception):
    """An error with an HTTP status and a Magento-style body."""

    status_code = 400
    headers: dict[str, str] | None = None
    """Response headers the error needs (`Retry-After`)."""

    def __init__(
        self,
        message: str,
        parameters: Parameters | None = None,
        errors: Sequence[WebapiError] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.parameters = parameters
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The response body, keys in Magento's order: message, errors, parameters."""
        body: dict[str, Any] = {"message": self.message}
        if self.errors:
            body["errors"] = [
                {"message": error.message, "parameters": error.parameters or []}
                for error in self.errors
            ]
        if self.parameters is not None:
            body["parameters"] = self.parameters
        return body

    def __str__(self) -> str:
        return render(self.message, self.parameters)


class InputError(WebapiError):
    """400: the request is malformed or names something that does not exist."""

    status_code = 400

    @classmethod
    def required(cls, field_name: str) -> InputError:
        return cls('"%fieldName" is required. Enter and try again.', {"fieldName": field_name})

    @classmethod
    def not_supported(cls, field_name: str) -> InputError:
        return cls(
            '"%fieldName" is not supported. Correct the field name and try again.',
            {"fieldName": field_name},
        )

    @classmethod
    def invalid_type(cls, field_name: str, value: str, expected: str) -> InputError:
        # Magento substitutes this message itself and sends no parameters.
        return cls(
            f'Error occurred during "{field_name}" processing. The "{value}" value\'s type is '
            f'invalid. The "{expected}" type was expected. Verify and try again.'
        )

    @classmethod
    def aggregate(cls, errors: Sequence[WebapiError]) -> WebapiError:
        if len(errors) == 1:
            return errors[0]
        return cls("One or more input exceptions have occurred.", errors=errors)


class NotFoundError(WebapiError):
    status_code = 404


class RouteNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("Request does not match any route.")


class AuthenticationError(WebapiError):
    """401: no valid credentials, or credentials without the needed ACL resource."""

    status_code = 401


class ForbiddenError(WebapiError):
    """403: the request may not have this resource, whoever makes it from where it comes."""

    status_code = 403


class NotAcceptableError(WebapiError):
    status_code = 406

    @classmethod
    def of(cls, accept_types: list[str]) -> NotAcceptableError:
        # RendererFactory raises a Webapi\Exception, whose message Magento sends substituted
        # (with the first type: the types are the phrase's arguments) and without parameters.
        return cls(
            "Server cannot match any of the given Accept HTTP header media type(s) from the "
            f'request: "{accept_types[0]}" with media types from the config of response renderer.'
        )


class GoneError(WebapiError):
    """410: what the request names existed, and is no longer kept (a change feed cursor older
    than its retention)."""

    status_code = 410


class PayloadTooLargeError(WebapiError):
    status_code = 413


class UnprocessableError(WebapiError):
    """422: the request is well formed but contradicts what an earlier one established (an
    idempotency key used for another request)."""

    status_code = 422


class TooManyRequestsError(WebapiError):
    """429: the caller or client address used its budget of requests for now."""

    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many requests. Try again in %seconds seconds.", {"seconds": retry_after}
        )
        self.headers = {"Retry-After": str(retry_after)}


class ServiceUnavailableError(WebapiError):
    status_code = 503

    @classmethod
    def statement_timeout(cls, seconds: float) -> ServiceUnavailableError:
        return cls(
            "The database did not answer within %seconds seconds, the time limit of a "
            "statement. Narrow the search or try again later.",
            {"seconds": seconds},
        )


def new_report_id() -> str:
    """uniqid("webapi-"), as Magento's ErrorProcessor::_critical names its reports: the id a
    client is shown and the log records the details under."""
    return f"webapi-{uuid.uuid4().hex[:13]}"


class InsufficientStorageError(WebapiError):
    """507: the database has no room for what the request would store."""

    status_code = 507


class InternalError(WebapiError):
    """500: a bug. Magento (ErrorProcessor::maskException) sends its text with the report id
    already in it, and no parameters."""

    status_code = 500

    def __init__(self, report_id: str) -> None:
        super().__init__(
            "Internal Error. Details are available in Magento log file. Report ID: " + report_id
        )


def render(message: str, parameters: Parameters | None) -> str:
    """Substitute `%name` (or `%1`) placeholders, for logs and CLI output."""
    if isinstance(parameters, dict):
        # Longest names first so `%field` does not eat the start of `%fields`.
        for name in sorted(parameters, key=len, reverse=True):
            message = message.replace(f"%{name}", str(parameters[name]))
    elif isinstance(parameters, list):
        for index in range(len(parameters), 0, -1):
            message = message.replace(f"%{index}", str(parameters[index - 1]))
    return message
