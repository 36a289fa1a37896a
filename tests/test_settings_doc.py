"""README's table of settings is the one `Settings` makes: every setting, its default, its
description."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bulkops.settings import Settings
from bulkops.settings_doc import COMMAND, END, START, settings_table

README = Path(__file__).parent.parent / "README.md"


def test_every_setting_is_described() -> None:
    undescribed = [name for name, field in Settings.model_fields.items() if not field.description]
    assert undescribed == [], "give these settings a docstring in bulkops/settings.py"


def test_readme_shows_the_settings_as_they_are() -> None:
    readme = README.read_text(encoding="utf-8")
    shown = readme.partition(START)[2].partition(END)[0]
    assert shown == f"\n{settings_table()}", (
        f"README.md's settings differ from bulkops/settings.py: run `{COMMAND}`"
    )
    for name in ("WEBSITES", "STORE_VIEWS", "WORKER_POLL_SECONDS", "MAINTENANCE_INTERVAL_SECONDS"):
        assert f"`BULKOPS_{name}`" in shown


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkops.settings_doc", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_command_rewrites_only_the_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{START}\n| old | table |\n{END}\n\nAfter.\n", encoding="utf-8")
    finished = _run(str(readme))
    assert finished.returncode == 0, finished.stderr
    assert readme.read_text(encoding="utf-8") == (
        f"# Title\n\n{START}\n{settings_table()}{END}\n\nAfter.\n"
    )


def test_a_readme_without_the_markers_is_refused(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n", encoding="utf-8")
    finished = _run(str(readme))
    assert finished.returncode == 1
    assert f"the README lacks the markers {START} and {END}" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert readme.read_text(encoding="utf-8") == "# Title\n"
    missing = _run(str(tmp_path / "absent.md"))
    assert missing.returncode == 1
    assert "absent.md" in missing.stderr and "Traceback" not in missing.stderr
