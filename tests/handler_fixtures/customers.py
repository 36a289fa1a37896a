"""A handler module that takes over the demo customers route."""

from __future__ import annotations

from bulkops.handlers import OperationInput, registry


@registry.route(
    "POST",
    "/V1/customers",
    service="Magento\\Customer\\Api\\AccountManagementInterface::createAccount",
)
async def create_account(operation: OperationInput) -> str:
    return "created elsewhere"
