"""A route whose validation has a bug: every submission to it meets an unexpected exception in
the API process, which answers Magento's 500."""

from __future__ import annotations

from typing import Any

from bulkops.handlers import OperationInput, registry


def validate(item: Any) -> str | None:
    raise RuntimeError("a bug in validation")


@registry.route(
    "POST", "/V1/tests/faulty", service="Tests\\Api\\FaultyInterface::apply", validate=validate
)
async def apply(operation: OperationInput) -> None:
    return None
