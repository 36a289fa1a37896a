"""The caller of a request and what it may do."""

from __future__ import annotations

from dataclasses import dataclass

from bulkops.status import UserType

ALL_RESOURCES = "Magento_Backend::all"
BULK_OPERATIONS = "Magento_Logging::system_magento_logging_bulk_operations"
STORES = "Magento_Backend::store"  # module-store/etc/webapi.xml
ANONYMOUS = "anonymous"
# Who may revoke the tokens of admin users, and of integrations (System > Permissions > All
# Users, System > Integrations in Magento's admin).
ADMIN_USERS = "Magento_User::acl_users"
INTEGRATIONS = "Magento_Integration::integrations"
SERVICE_RESOURCES = (ALL_RESOURCES, BULK_OPERATIONS, STORES, ADMIN_USERS, INTEGRATIONS)
"""The resources of the service's own routes; asynchronous routes add theirs."""


@dataclass(frozen=True, slots=True)
class UserContext:
    user_type: UserType
    user_id: int | None
    resources: frozenset[str]
    all_bulks: bool = False
    """Reads every bulk; otherwise only the bulks this user submitted."""

    def is_allowed(self, resource: str) -> bool:
        return (
            resource == ANONYMOUS or ALL_RESOURCES in self.resources or (resource in self.resources)
        )

    def reads_bulk_of(self, user_type: int | None, user_id: int | None) -> bool:
        """Whether this user may read a bulk submitted by that user. A user without an id
        (a guest) owns nothing."""
        if self.all_bulks:
            return True
        return self.user_id is not None and (user_type, user_id) == (
            int(self.user_type),
            self.user_id,
        )


GUEST = UserContext(user_type=UserType.GUEST, user_id=None, resources=frozenset())
