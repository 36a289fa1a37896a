"""The memory of one search for the largest page: the server's peak resident memory before and
after `pageSize=2147483647` over every operation of a SQLite database.

    python bench/page_memory.py [--rows 435000]

Loads the rows with `bench/datagen.py` into a new SQLite file, starts `bulkops serve
--no-worker` on it, reads the answer as it comes and prints the figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import datagen
from bench.databases import sqlite_backend
from bench.measure import peak_rss_mb
from tests.servers import start_server

LARGEST_PAGE = "/rest/V1/bulk?searchCriteria[pageSize]=2147483647"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=435_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        backend = sqlite_backend(Path(directory) / "bulkops.sqlite3")
        datagen.load(backend, args.rows)
        server = start_server(
            Path(directory) / "server", "--no-worker", DATABASE_URL=backend.bulkops_url
        )
        try:
            before = peak_rss_mb(server.process.pid)
            started = time.monotonic()
            with (
                server.admin_client() as client,
                client.stream("GET", LARGEST_PAGE, timeout=600) as response,
            ):
                size = sum(len(chunk) for chunk in response.iter_bytes())
                streamed = "content-length" not in response.headers
            seconds = time.monotonic() - started
            after = peak_rss_mb(server.process.pid)
        finally:
            server.stop()
    print(f"{args.rows} operations, {size} bytes in {seconds:.1f} s, streamed: {streamed}")
    print(f"peak resident memory: {before:.0f} MB before, {after:.0f} MB after")


if __name__ == "__main__":
    main()
