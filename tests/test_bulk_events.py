"""Server-sent events of a bulk's progress (`GET /V1/bulk/:uuid/events`) through HTTP on every
backend and transport: counts by status as a worker changes them, a final event and the end of
the stream once the bulk is finished, `deleted` when it is deleted meanwhile; another's bulk
is missing; a client that leaves is forgotten (the process's listener gauge goes back)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bulkops.auth.context import BULK_OPERATIONS
from tests.customers import submit_pairs
from tests.integrations import integration_client
from tests.servers import RunningServer, start_bulkops
from tests.waiting import wait_for

EVENT_STREAM = {"Accept": "text/event-stream"}


@pytest.fixture
def server_settings() -> dict[str, str]:
    """Heartbeats often."""
    return {"EVENTS_HEARTBEAT_SECONDS": "0.5"}


def events(response: httpx.Response) -> Iterator[tuple[str, int | None, dict[str, Any]]]:
    """The events of a stream (name, id, data), heartbeat comments left out."""
    name, event_id, data = "message", None, ""
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if data:
                yield name, event_id, json.loads(data)
            name, event_id, data = "message", None, ""
            continue
        key, _, value = line.partition(": ")
        if key == "event":
            name = value
        elif key == "id":
            event_id = int(value)
        elif key == "data":
            data += value


def counts(**by_status: int) -> dict[str, int]:
    return {str(status): by_status.get(f"s{status}", 0) for status in range(1, 6)}


def listeners(server: RunningServer) -> float:
    scraped = httpx.get(f"{server.base_url}/metrics", timeout=30)
    assert scraped.status_code == 200, scraped.text
    for family in text_string_to_metric_families(scraped.text):
        if family.name == "bulkops_event_listeners":
            return sum(sample.value for sample in family.samples)
    raise AssertionError("no bulkops_event_listeners gauge")


def test_events_follow_a_bulk_until_it_is_finished(
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
        bulk = submit_pairs(owner, 2)
        path = f"/rest/V1/bulk/{bulk}/events"
        missing = other.get(path, headers=EVENT_STREAM)
        assert missing.status_code == 404
        assert missing.json() == {
            "message": "Bulk uuid %bulkUuid not exist",
            "parameters": {"bulkUuid": bulk},
        }
        assert server.client().get(path, headers=EVENT_STREAM).status_code == 401

        with owner.stream("GET", path, headers=EVENT_STREAM, timeout=60) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            stream = events(response)
            name, first_id, data = next(stream)
            assert (name, data) == (
                "progress",
                {"bulk_uuid": bulk, "status": 0, "operation_count": 4, "counts": counts(s4=4)},
            )
            processes.append(
                start_bulkops(
                    ["worker"],
                    tmp_path,
                    tmp_path / "worker.log",
                    {"DATABASE_URL": server.database_url} | queue_settings,
                )
            )
            rest = list(stream)  # until the server ends the stream
        assert rest, "no event after the first"
        ids = [first_id] + [event_id for _, event_id, _ in rest]
        assert ids == sorted(set(ids))
        assert all(name == "progress" for name, _, _ in rest[:-1])
        for _, _, data in rest[:-1]:
            assert data["status"] == 1 and sum(data["counts"].values()) == 4
        assert rest[-1][0] == "finished"
        assert rest[-1][2] == {
            "bulk_uuid": bulk,
            "status": 3,
            "operation_count": 4,
            "counts": counts(s1=2, s3=2),
        }

        # A finished bulk's stream is its final event alone.
        with owner.stream("GET", path, headers=EVENT_STREAM) as response:
            assert [name for name, _, _ in events(response)] == ["finished"]


def test_a_deleted_bulk_ends_its_stream_and_leaving_clients_are_forgotten(
    idle_server: RunningServer,
) -> None:
    server = idle_server
    with integration_client(server, "a", BULK_OPERATIONS) as owner:
        deleted, followed = submit_pairs(owner, 1), submit_pairs(owner, 1)
        with owner.stream(
            "GET", f"/rest/V1/bulk/{deleted}/events", headers=EVENT_STREAM, timeout=60
        ) as response:
            stream = events(response)
            assert next(stream)[0] == "progress"
            assert listeners(server) == 1
            answer = owner.delete(f"/rest/V1/bulk/{deleted}", params={"force": "true"})
            assert answer.json() is True
            assert list(stream) == [("deleted", None, {"bulk_uuid": deleted})]
        wait_for(lambda: listeners(server) == 0, 30, "the deleted bulk's listener gone")

        # Clients that leave a bulk still open: their listeners go with them.
        with server.admin_client() as admin:
            streams = [
                admin.stream("GET", f"/rest/V1/bulk/{followed}/events", headers=EVENT_STREAM)
                for _ in range(3)
            ]
            # Each read as far as its first event, and kept (a stream left is closed).
            following = [events(stream.__enter__()) for stream in streams]
            assert [next(read)[0] for read in following] == ["progress"] * 3
            wait_for(lambda: listeners(server) == 3, 30, "three listeners")
            for stream in streams:
                stream.__exit__(None, None, None)
        wait_for(lambda: listeners(server) == 0, 30, "the listeners gone with their clients")
