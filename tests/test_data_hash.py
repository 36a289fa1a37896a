"""`data_hash` is Magento's: HMAC-SHA256 of serialized_data keyed with the newest crypt key
(`MassSchedule` calls `Encryptor::hash($serializedData, HASH_VERSION_SHA256)`,
framework/Encryption/Encryptor.php), with the key of the setting or one generated once for
the installation. Expected hashes are computed here with Python's `hmac`."""

from __future__ import annotations

import string
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy
from sqlalchemy.pool import NullPool

from bulkops.store.database import Database
from bulkops.store.installation import installation_value
from tests.backends import sync_url
from tests.hashing import expected_hash, stored_keys
from tests.servers import RunningServer, start_server

CUSTOMERS = "/rest/default/async/bulk/V1/customers"
ITEMS = [
    {"customer": {"email": "hash@example.com", "firstname": "Ünïcode", "lastname": "a/b"}},
    {"customer": {"email": "other@example.com"}, "password": "Password1"},
]
# As in app/etc/env.php after two key changes: the newest key is the last one.
OLDEST = "0123456789abcdef0123456789abcdef"
CRYPT_KEY = f"  {OLDEST}\n1111111111111111aaaaaaaaaaaaaaaa\tnewest-key-Zz9 \n"
NEWEST = "newest-key-Zz9"


def hashes(server: RunningServer) -> tuple[str, list[str | None]]:
    with server.client() as client:
        response = client.post(CUSTOMERS, json=ITEMS)
    assert response.status_code == 202, response.text
    body = response.json()
    return body["bulk_uuid"], [item["data_hash"] for item in body["request_items"]]


def responses_of(server: RunningServer, bulk_uuid: str) -> str:
    """Every answer that shows the bulk, as text."""
    with server.admin_client() as admin:
        return "".join(
            admin.get(path).text
            for path in (
                f"/rest/V1/bulk/{bulk_uuid}/status",
                f"/rest/V1/bulk/{bulk_uuid}/detailed-status",
                "/rest/V1/bulk?searchCriteria[pageSize]=0",
                "/rest/V1/store/storeConfigs",
            )
        )


def test_the_newest_key_of_the_setting_is_used(tmp_path: Path, database_url: str) -> None:
    server = start_server(tmp_path, DATABASE_URL=database_url, CRYPT_KEY=CRYPT_KEY)
    try:
        bulk_uuid, found = hashes(server)
        assert found == [expected_hash(item, NEWEST) for item in ITEMS]
        # Not a plain SHA-256, nor keyed with an older key.
        assert found[0] != expected_hash(ITEMS[0], OLDEST)
        assert stored_keys(database_url) == []  # none generated: the setting's is used
        shown = responses_of(server, bulk_uuid) + server.log()
        assert NEWEST not in shown and OLDEST not in shown
    finally:
        server.stop()


def test_a_blank_setting_is_no_key(tmp_path: Path, database_url: str) -> None:
    server = start_server(tmp_path, DATABASE_URL=database_url, CRYPT_KEY=" \n ")
    try:
        _, found = hashes(server)
        (key,) = stored_keys(database_url)
        assert found == [expected_hash(item, key) for item in ITEMS]
    finally:
        server.stop()


def test_a_generated_key_is_kept_across_restarts(tmp_path: Path, database_url: str) -> None:
    server = start_server(tmp_path / "first", DATABASE_URL=database_url)
    try:
        bulk_uuid, first = hashes(server)
        (key,) = stored_keys(database_url)
        assert len(key) == 32 and set(key) <= set(string.hexdigits.lower())
        assert first == [expected_hash(item, key) for item in ITEMS]
        assert key not in responses_of(server, bulk_uuid) + server.log()
    finally:
        server.stop()
    restarted = start_server(tmp_path / "second", DATABASE_URL=database_url)
    try:
        _, second = hashes(restarted)
    finally:
        restarted.stop()
    assert second == first
    assert stored_keys(database_url) == [key]


def test_servers_starting_together_share_one_key(tmp_path: Path, database_url: str) -> None:
    with ThreadPoolExecutor(2) as pool:
        starting = [
            pool.submit(start_server, tmp_path / name, DATABASE_URL=database_url)
            for name in ("one", "two")
        ]
        servers = [started.result() for started in starting]
    try:
        found = [hashes(server)[1] for server in servers]
    finally:
        for server in servers:
            server.stop()
    (key,) = stored_keys(database_url)
    assert found == [[expected_hash(item, key) for item in ITEMS]] * 2


async def test_a_process_that_loses_the_race_takes_the_stored_key(
    database: Database, database_url: str
) -> None:
    """Another process stores its key between our look and our insert: ours is dropped."""
    engine = sqlalchemy.create_engine(sync_url(database_url), poolclass=NullPool)

    def another_process_first() -> str:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO bulkops_installation (name, value) VALUES ('crypt/key', 'theirs')"
            )
        return "ours"

    try:
        assert await installation_value(database, "crypt/key", another_process_first) == "theirs"
        # Once stored, the value is read, not made again.
        assert await installation_value(database, "crypt/key", lambda: "later") == "theirs"
    finally:
        engine.dispose()
