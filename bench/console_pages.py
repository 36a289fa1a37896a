"""The console's pages at scale: the time of each page, beside the API's search for the same
data, over `--rows` operations (1,000,000 by default) on each backend.

    python bench/console_pages.py [--rows 1000000] [--backends sqlite,postgresql]

Loads the rows with `bench/datagen.py`, starts `bulkops serve --no-worker` on them, signs in to
the console and prints the median and the slowest of `--repeat` requests per page, as the
client saw them (on the same machine).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import datagen
from bench.databases import answering, scratch
from tests.servers import RunningServer, start_server
from tests.storage import query

STATUS_3 = (
    "searchCriteria[filterGroups][0][filters][0][field]=status"
    "&searchCriteria[filterGroups][0][filters][0][value]=3&searchCriteria[pageSize]=20"
)


def pages(largest_bulk: str) -> dict[str, str]:
    return {
        "Log, page 1 (with the notifications)": "/admin/",
        "Log, page 50": "/admin/?page=50",
        'Log, status "finished with failure"': "/admin/?status=3",
        'Log, status "in progress"': "/admin/?status=1",
        "Log, text matching nothing": "/admin/?text=no-such-bulk",
        "Log, oldest first": "/admin/?sort=start_time&direction=asc",
        "Log, by description A to Z": "/admin/?sort=description&direction=asc",
        "Log, by description Z to A, page 50": "/admin/?sort=description&direction=desc&page=50",
        "Details of the largest bulk": f"/admin/bulks/{largest_bulk}",
        "Search, `status eq 3`, 20 a page": f"/admin/search?{STATUS_3}",
        "The API's search for the same": f"/rest/V1/bulk?{STATUS_3}",
        "Dashboard": "/admin/dashboard",
    }


def signed_in(server: RunningServer) -> httpx.Client:
    client = server.client()
    form = client.get("/admin/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    credentials = {"username": server.admin_username, "password": server.admin_password}
    signed = client.post("/admin/sign-in", data={"csrf_token": token.group(1)} | credentials)
    assert signed.status_code == 303, signed.text
    return client


def measure(client: httpx.Client, path: str, repeat: int) -> tuple[float, float]:
    """Median and slowest time of `repeat` requests, in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for name in answering(args.backends.split(",")):
        with tempfile.TemporaryDirectory() as directory:
            workdir = Path(directory)
            with scratch(name, "bulkops_console_bench", workdir) as backend:
                datagen.load(backend, args.rows)
                url = backend.bulkops_url
                largest = query(url, "SELECT uuid FROM bulkops_bulk ORDER BY operation_count DESC")
                server = start_server(workdir / "server", "--no-worker", DATABASE_URL=url)
                try:
                    console, api = signed_in(server), server.admin_client()
                    print(f"{name}, {args.rows:,} operations")
                    for page, path in pages(largest[0][0]).items():
                        client = api if path.startswith("/rest/") else console
                        median, slowest = measure(client, path, args.repeat)
                        print(f"  {page}: median {median:.1f} ms, slowest {slowest:.1f} ms")
                finally:
                    server.stop()


if __name__ == "__main__":
    main()
