"""The `data_hash` a client expects, computed apart from bulkops: HMAC-SHA256 of Magento's
serialized_data (written as PHP's json_encode writes it) keyed with the crypt key."""

from __future__ import annotations

import hashlib
import hmac
import json

from tests.storage import query


def serialized_data(item: object) -> str:
    def php(value: object) -> str:
        return json.dumps(value, separators=(",", ":")).replace("/", "\\/")

    return php({"entity_id": None, "entity_link": "", "meta_information": php(item)})


def expected_hash(item: object, key: str) -> str:
    return hmac.new(key.encode(), serialized_data(item).encode(), hashlib.sha256).hexdigest()


def stored_keys(database_url: str) -> list[str]:
    """The crypt keys generated for the installation (one, once a server has started)."""
    rows = query(database_url, "SELECT value FROM bulkops_installation WHERE name = 'crypt/key'")
    return [value for (value,) in rows]
