"""ETags of the per-bulk status routes: a client polling with `If-None-Match` gets a 304
without a body while nothing of the answer changed, a 200 with a new tag once an operation
of the bulk changed status (the worker, a retry), a tag per format and `fields=`, and a caller
scoped to its own bulks still finds another's missing, whatever tag it sends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from bulkops.auth.context import BULK_OPERATIONS
from tests.backends import Backend
from tests.customers import CUSTOMERS, customer
from tests.integrations import create_integration
from tests.servers import RunningServer, server_on
from tests.waiting import wait_for

OPEN = 4


@dataclass
class Polled:
    server: RunningServer
    tokens: dict[str, str]

    def client(self, name: str) -> httpx.Client:
        return self.server.client(headers={"Authorization": f"Bearer {self.tokens[name]}"})


@pytest.fixture(scope="module")
def polled(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Polled]:
    """A server (with its worker) and two integrations, each limited to its own bulks."""
    with server_on(backend, tmp_path_factory.mktemp("etags")) as server:
        tokens = {
            name: create_integration(server.database_url, name, BULK_OPERATIONS).access_token
            for name in ("a", "b")
        }
        yield Polled(server, tokens)


def submit_twice_the_same_customer(client: httpx.Client) -> str:
    """A bulk whose second operation fails (the email is taken by the first)."""
    email = f"{uuid.uuid4().hex}@example.com"
    response = client.post(CUSTOMERS, json=[customer(email), customer(email)])
    assert response.status_code == 202, response.text
    return response.json()["bulk_uuid"]


def finished(client: httpx.Client, path: str) -> httpx.Response:
    """The status answer once no operation of the bulk is open."""
    answers: list[httpx.Response] = []

    def done() -> bool:
        answers.append(client.get(path))
        assert answers[-1].status_code == 200, answers[-1].text
        return all(op["status"] != OPEN for op in answers[-1].json()["operations_list"])

    wait_for(done, 30, f"the operations of {path} to finish")
    return answers[-1]


def test_unchanged_is_304_and_a_status_change_is_a_new_tag(polled: Polled) -> None:
    with polled.client("a") as client:
        bulk = submit_twice_the_same_customer(client)
        path = f"/rest/V1/bulk/{bulk}/status"
        first = finished(client, path)
        tag = first.headers["etag"]
        assert tag.startswith('W/"')
        assert first.headers["cache-control"] == "no-cache"
        assert first.headers["vary"] == "Accept"
        assert [op["status"] for op in first.json()["operations_list"]] == [1, 3]

        unchanged = client.get(path, headers={"If-None-Match": tag})
        assert (unchanged.status_code, unchanged.content) == (304, b"")
        assert unchanged.headers["etag"] == tag
        assert unchanged.headers["cache-control"] == "no-cache"
        # One of several tags, or the strong form of it, as RFC 9110's weak comparison.
        several = f'"stale", {tag.removeprefix("W/")}'
        assert client.get(path, headers={"If-None-Match": several}).status_code == 304
        assert client.get(path, headers={"If-None-Match": "*"}).status_code == 304
        other = client.get(path, headers={"If-None-Match": 'W/"0-0"'})
        assert other.status_code == 200 and other.json() == first.json()

        # The retry reopens the failed operation; the worker fails it again, with the same
        # message, most likely within the same second: each change is a new tag.
        assert client.post(f"/rest/V1/bulk/{bulk}/retry").json() == 1
        reopened = client.get(path, headers={"If-None-Match": tag})
        assert reopened.status_code == 200
        assert reopened.headers["etag"] != tag
        again = finished(client, path)
        assert again.json() == first.json()
        assert again.headers["etag"] != tag
        # The answer read after the retry was the open operation's, or already the failed one.
        assert (reopened.headers["etag"] == again.headers["etag"]) == (
            reopened.json() == again.json()
        )
        unchanged = client.get(path, headers={"If-None-Match": again.headers["etag"]})
        assert unchanged.status_code == 304


def test_every_per_bulk_read_has_a_tag_of_its_own_format_and_fields(polled: Polled) -> None:
    with polled.client("a") as client:
        bulk = submit_twice_the_same_customer(client)
        finished(client, f"/rest/V1/bulk/{bulk}/status")
        paths = [
            f"/rest/V1/bulk/{bulk}/status",
            f"/rest/default/V1/bulk/{bulk}/detailed-status",
            f"/rest/V1/bulk/{bulk}/operation-status/3",
        ]
        variants: list[tuple[str, dict[str, str]]] = [
            (path, headers)
            for base in paths
            for path in (base, f"{base}?fields=operations_list[id,status]")
            for headers in ({}, {"Accept": "application/xml"})
        ]
        tags = {}
        for path, headers in variants:
            response = client.get(path, headers=headers)
            assert response.status_code == 200, response.text
            tags[path, headers.get("Accept")] = tag = response.headers["etag"]
            revalidated = client.get(path, headers=headers | {"If-None-Match": tag})
            assert (revalidated.status_code, revalidated.content) == (304, b"")
        assert len(set(tags.values())) == len(variants)
        # A JSON answer's tag does not validate the XML one, nor the reverse.
        for (path, accept), tag in tags.items():
            flipped = {"Accept": "application/json" if accept else "application/xml"}
            response = client.get(path, headers=flipped | {"If-None-Match": tag})
            assert response.status_code == 200
            assert response.headers["content-type"].startswith(flipped["Accept"])
        assert client.get(paths[2]).json() == 1


def test_another_callers_bulk_stays_missing_whatever_its_tag(polled: Polled) -> None:
    with polled.client("a") as owner, polled.client("b") as other:
        bulk = submit_twice_the_same_customer(owner)
        status = f"/rest/V1/bulk/{bulk}/status"
        tag = finished(owner, status).headers["etag"]
        count = f"/rest/V1/bulk/{bulk}/operation-status/1"
        count_tag = owner.get(count).headers["etag"]
        for path in (status, f"/rest/V1/bulk/{bulk}/detailed-status"):
            for sent in ({}, {"If-None-Match": tag}, {"If-None-Match": "*"}):
                response = other.get(path, headers=sent)
                assert response.status_code == 404
                assert response.json() == {
                    "message": "Bulk uuid %bulkUuid not exist",
                    "parameters": {"bulkUuid": bulk},
                }
                assert "etag" not in response.headers
        # Another's bulk counts nothing, as an unknown one, and neither has a tag.
        for path in (count, "/rest/V1/bulk/no-such-bulk/operation-status/1"):
            for sent in ({}, {"If-None-Match": count_tag}, {"If-None-Match": "*"}):
                response = other.get(path, headers=sent)
                assert (response.status_code, response.json()) == (200, 0)
                assert "etag" not in response.headers
        assert owner.get(status, headers={"If-None-Match": tag}).status_code == 304
        assert owner.get(count, headers={"If-None-Match": count_tag}).status_code == 304
