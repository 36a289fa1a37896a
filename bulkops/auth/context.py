"""The caller of a request and what it may do."""

from __future__ import annotations

from dataclasses import dataclass

from bulkops.status import UserType

ALL_RESOURCES = "Magento_Backend::all"
BULK_OPERATIONS = "Magento_Logging::system_magento_logging_bulk_operations"
STORES = "Magento_Backend::store"  # module-store/etc/webapi.xml
ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class UserContext:
    user_type: UserType
    user_id: int | None
    resources: frozenset[str]

    def is_allowed(self, resource: str) -> bool:
        return (
            resource == ANONYMOUS or ALL_RESOURCES in self.resources or (resource in self.resources)
        )


GUEST = UserContext(user_type=UserType.GUEST, user_id=None, resources=frozenset())
