"""The change feed (`GET /V1/bulk/changes`) through HTTP on every backend and transport:
worker processes committing results at once while a reader pages the feed with a small limit
(and long polls), every change seen exactly once and each operation's in order; retries and
deletions are changes; callers see only their own bulks' changes; bad input is a 400, a cursor
older than the retention a 410."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bulkops.api.changes import encode_cursor
from bulkops.auth.context import BULK_OPERATIONS
from bulkops.store.changes import prune_changes
from bulkops.store.database import Database
from tests.customers import submit_pairs
from tests.integrations import integration_client
from tests.servers import RunningServer, start_bulkops, start_server
from tests.waiting import wait_for

CHANGES = "/rest/V1/bulk/changes"
COMPLETE, NOT_RETRIABLY_FAILED, OPEN = 1, 3, 4
BULKS = 4
PAIRS = 12
"""Each bulk has this many pairs of items with the same email: the second of each fails."""
WORKERS = 3


@dataclass
class Feed:
    """A client following the feed: each read asks from the last `next_cursor`."""

    client: httpx.Client
    cursor: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)

    def read(self, limit: int = 5, wait: int = 0) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit, "wait": wait}
        if self.cursor is not None:
            params["after"] = self.cursor
        response = self.client.get(CHANGES, params=params)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert list(answer) == ["items", "next_cursor"]
        assert len(answer["items"]) <= limit
        self.cursor = answer["next_cursor"]
        self.items += answer["items"]
        return answer["items"]

    def read_all(self) -> list[dict[str, Any]]:
        read = []
        while page := self.read(limit=50):
            read += page
        return read


def collected(feed: Feed, count: int) -> bool:
    feed.read_all()
    return len(feed.items) >= count


class Reader(threading.Thread):
    """Pages `feed` with a small limit, long polling, until stopped."""

    def __init__(self, feed: Feed) -> None:
        super().__init__(daemon=True)
        self.feed = feed
        self.stopping = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.feed.read(limit=3, wait=1)
        except BaseException as error:  # reported by the test
            self.failure = error

    def seen(self) -> int:
        assert self.failure is None, self.failure
        return len(self.feed.items)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=60)
        assert self.failure is None, self.failure


def statuses_by_operation(items: list[dict[str, Any]]) -> dict[tuple[str, int], list[int]]:
    by_operation: dict[tuple[str, int], list[int]] = {}
    for item in items:
        assert item["change"] == "status", item
        by_operation.setdefault((item["bulk_uuid"], item["operation_id"]), []).append(
            item["status"]
        )
    return by_operation


def test_racing_workers_every_change_once_and_in_order(
    idle_server: RunningServer,
    queue_settings: dict[str, str],
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    server = idle_server
    with (
        integration_client(server, "a", BULK_OPERATIONS) as owner,
        integration_client(server, "b", BULK_OPERATIONS) as other,
    ):
        reader = Reader(Feed(owner))
        reader.start()
        bulks = [submit_pairs(owner, PAIRS) for _ in range(BULKS)]
        operations = BULKS * PAIRS * 2
        for number in range(WORKERS):
            processes.append(
                start_bulkops(
                    ["worker"],
                    tmp_path,
                    tmp_path / f"worker-{number}.log",
                    {"DATABASE_URL": server.database_url} | queue_settings,
                )
            )
        wait_for(lambda: reader.seen() >= operations, 60, "every result", progress=reader.seen)
        # Every failed operation again, while the feed is read: reopened, then failed again.
        for bulk in bulks:
            retried = owner.post(f"/rest/V1/bulk/{bulk}/retry")
            assert (retried.status_code, retried.json()) == (200, PAIRS)
        expected = operations + 2 * BULKS * PAIRS
        wait_for(lambda: reader.seen() >= expected, 60, "the retries", progress=reader.seen)
        reader.stop()
        # Nothing more comes, nothing came twice.
        assert reader.feed.read_all() == []
        items = reader.feed.items
        assert len(items) == expected
        by_operation = statuses_by_operation(items)
        assert {bulk for bulk, _ in by_operation} == set(bulks)
        sequences = Counter(tuple(statuses) for statuses in by_operation.values())
        assert sequences == {
            (COMPLETE,): BULKS * PAIRS,
            (NOT_RETRIABLY_FAILED, OPEN, NOT_RETRIABLY_FAILED): BULKS * PAIRS,
        }

        # Another integration's feed has none of them; an admin's has them all, in the same
        # order.
        assert Feed(other).read_all() == []
        with server.admin_client() as admin:
            assert Feed(admin).read_all() == items

        # A deletion is a change of its own.
        deleted = bulks[0]
        assert owner.delete(f"/rest/V1/bulk/{deleted}").json() is True
        (deletion,) = reader.feed.read_all()
        assert deletion["change"] == "bulk_deleted"
        assert (deletion["bulk_uuid"], deletion["operation_id"], deletion["status"]) == (
            deleted,
            None,
            None,
        )
        assert Feed(other).read_all() == []
    for number in range(WORKERS):
        log = (tmp_path / f"worker-{number}.log").read_text()
        assert "Traceback" not in log, log


def test_long_poll_answers_when_a_change_comes(
    idle_server: RunningServer,
    queue_settings: dict[str, str],
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    server = idle_server
    with integration_client(server, "a", BULK_OPERATIONS) as owner:
        feed = Feed(owner)
        assert feed.read_all() == []
        bulk = submit_pairs(owner, 1)
        # Acceptance is no change: a short wait answers nothing, and moves nowhere.
        cursor = feed.cursor
        assert feed.read(wait=1) == []
        assert feed.cursor == cursor
        answered: list[list[dict[str, Any]]] = []
        polling = threading.Thread(target=lambda: answered.append(feed.read(limit=1, wait=30)))
        polling.start()
        processes.append(
            start_bulkops(
                ["worker"],
                tmp_path,
                tmp_path / "worker.log",
                {"DATABASE_URL": server.database_url} | queue_settings,
            )
        )
        polling.join(timeout=60)
        assert answered and len(answered[0]) == 1
        assert (answered[0][0]["bulk_uuid"], answered[0][0]["status"]) == (bulk, COMPLETE)


async def test_bad_input_is_a_400_and_a_pruned_cursor_a_410(
    database_url: str, tmp_path: Path
) -> None:
    server = start_server(tmp_path / "server", DATABASE_URL=database_url)
    try:
        with integration_client(server, "a", BULK_OPERATIONS) as owner:
            submit_pairs(owner, 1)
            feed = Feed(owner)
            wait_for(lambda: collected(feed, 2), 30, "the results")
            last = feed.cursor
            assert last is not None
            first = Feed(owner)
            first.read(limit=1)
            older = first.cursor

            for params in (
                {"after": "xyz"},
                {"after": "YzE="},  # padded: not as the server writes it
                {"after": encode_cursor(10**6)},  # beyond every change
                {"after": ""},
                {"limit": "0"},
                {"limit": "1001"},
                {"limit": "a"},
                {"wait": "-1"},
                {"wait": "1.5"},
            ):
                response = owner.get(CHANGES, params=params)
                assert response.status_code == 400, (params, response.text)
                assert "message" in response.json()
            assert server.client().get(CHANGES).status_code == 401

            # The retention passes over every change so far.
            database = Database(database_url)
            try:
                assert await prune_changes(database, datetime(2999, 1, 1), 1) == 2
            finally:
                await database.dispose()
            gone = owner.get(CHANGES, params={"after": older})
            assert gone.status_code == 410
            assert gone.json() == {
                "message": "The cursor %cursor is older than the oldest change kept: read "
                "the bulks again and follow the changes from the start.",
                "parameters": {"cursor": older},
            }
            # From the last cursor, or from the start, the feed goes on.
            assert Feed(owner, last).read() == []
            restarted = Feed(owner)
            assert restarted.read() == []
            assert restarted.cursor == last
            bulk = submit_pairs(owner, 1)
            wait_for(lambda: collected(restarted, 2), 30, "the new results")
            assert {item["bulk_uuid"] for item in restarted.items} == {bulk}
    finally:
        server.stop()
