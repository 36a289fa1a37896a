"""The README's quick start, run as written: the settings of its `make run` line start a real
server, and its shell examples (submit, log in, search) run in bash against it, with only the
address changed to the test server's."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

from bulkops.handlers.customers import DUPLICATE_EMAIL
from tests.servers import RunningServer, start_server
from tests.test_submission import wait_until_final

README = Path(__file__).parent.parent / "README.md"
ADDRESS = "http://127.0.0.1:8080"


def _quick_start_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.partition("\n## Quick start\n")[2].partition("\n## ")[0]
    return re.findall(r"^```sh\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)


def _run_settings(blocks: list[str]) -> dict[str, str]:
    """The `BULKOPS_*` settings the `make run` line starts the service with."""
    (line,) = (block for block in blocks if "make run" in block)
    *assignments, make, target = shlex.split(line, comments=True)
    assert (make, target) == ("make", "run")
    settings = dict(assignment.split("=", 1) for assignment in assignments)
    return {name.removeprefix("BULKOPS_"): value for name, value in settings.items()}


def _example(blocks: list[str], marker: str) -> str:
    (block,) = (block for block in blocks if marker in block)
    return block


def _bash(script: str, server: RunningServer) -> str:
    assert ADDRESS in script
    finished = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace(ADDRESS, server.base_url)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


def test_the_quick_start_works_as_written(tmp_path: Path) -> None:
    blocks = _quick_start_blocks()
    server = start_server(tmp_path, **_run_settings(blocks))
    try:
        submitted = json.loads(_bash(_example(blocks, "/async/bulk/V1/customers"), server))
        assert submitted["errors"] is False
        assert [item["status"] for item in submitted["request_items"]] == ["accepted"] * 2
        with server.admin_client() as admin:
            wait_until_final(admin, submitted["bulk_uuid"])

        found = json.loads(_bash(_example(blocks, "admin/token"), server))
    finally:
        server.stop()
    assert found["total_count"] == 1
    (failed,) = found["items"]
    # The README shows it: the second operation of a fresh database.
    assert (failed["id"], failed["bulk_uuid"], failed["status"]) == (2, submitted["bulk_uuid"], 3)
    assert failed["result_message"] == DUPLICATE_EMAIL
