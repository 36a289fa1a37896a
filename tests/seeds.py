"""The documentation page bulkops starts from (tests/seeds/), read as data: its request, its
response, and the operations that must be in the store for the request to return it."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from bulkops.status import OperationStatus, UserType
from bulkops.store.bulks import NewBulk, NewOperation

SEEDS = Path(__file__).with_name("seeds")
ROUTE_STYLE = SEEDS / "operation-status-search.md"  # topic async.V1.customers.POST
SERVICE_STYLE = SEEDS / "operation-status-search-2.4.txt"  # service-contract topic names


def seed_request(page: Path = ROUTE_STYLE) -> str:
    """The request line after `GET <host>/rest/<store_code>`, joined as a client sends it."""
    text = page.read_text()
    start = text.index("GET <host>/rest/<store_code>") + len("GET <host>/rest/<store_code>")
    lines = []
    for line in text[start:].splitlines():
        if not line.strip() or line.startswith("`"):
            break
        lines.append(line.strip())
    return "".join(lines)


def seed_response_text(page: Path) -> str:
    text = page.read_text()
    if page.suffix == ".md":
        return re.search(r"```json\n(.*?)\n```", text, re.S).group(1)  # type: ignore[union-attr]
    return text[text.index('{\n    "items"') :]


def ordered(body: str | bytes) -> Any:
    """JSON with objects as lists of (key, value) pairs, so that comparing checks key order."""
    return json.loads(body, object_pairs_hook=list)


def seed_bulks(topic_name: str) -> list[NewBulk]:
    """Two bulks whose operations get ids 1-10; 4, 5, 6, 7 and 10 failed as the seed shows."""
    failures: dict[str, list[str]] = {}
    starts: dict[str, str] = {}
    for item in json.loads(seed_response_text(ROUTE_STYLE))["items"]:
        failures.setdefault(item["bulk_uuid"], []).append(item["serialized_data"])
        starts[item["bulk_uuid"]] = item["extension_attributes"]["start_time"]
    message = "A customer with the same email address already exists in an associated website."
    first, second = failures
    layout = {first: (3, failures[first]), second: (2, failures[second])}
    bulks = []
    for uuid, (completed, failed) in layout.items():
        operations = [
            NewOperation(
                key,
                topic_name,
                None,
                OperationStatus.COMPLETE,
                f"Service execution success {topic_name}",
            )
            for key in range(completed)
        ] + [
            NewOperation(
                completed + index,
                topic_name,
                data,
                OperationStatus.NOT_RETRIABLY_FAILED,
                message,
                error_code=0,
            )
            for index, data in enumerate(failed)
        ]
        bulks.append(
            NewBulk(
                uuid=uuid,
                description=f"Topic {topic_name}",
                user_id=None,
                user_type=int(UserType.GUEST),
                start_time=datetime.strptime(starts[uuid], "%Y-%m-%d %H:%M:%S"),
                operations=operations,
            )
        )
    return bulks
