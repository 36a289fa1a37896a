"""README's table of settings, made from `Settings` itself: every field with its environment
variable, its default and its docstring.

`python -m bulkops.settings_doc [README.md]` writes the table between the markers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

from bulkops.settings import Settings

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
COMMAND = "python -m bulkops.settings_doc"


def settings_table() -> str:
    prefix = Settings.model_config.get("env_prefix", "")
    rows = [
        "| variable | default | meaning |",
        "|---|---|---|",
        *(
            f"| `{prefix}{name.upper()}` | {_default(field)} | {_cell(field.description or '')} |"
            for name, field in Settings.model_fields.items()
        ),
    ]
    return "\n".join(rows) + "\n"


def _default(field: FieldInfo) -> str:
    value: Any = field.get_default(call_default_factory=True)
    if value is None or value is PydanticUndefined:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        return f"`{_cell(value)}`"
    return f"`{_cell(json.dumps(to_jsonable_python(value)))}`"


def _cell(text: str) -> str:
    """On one line, and `|` kept from ending the cell."""
    return " ".join(text.split()).replace("|", "\\|")


def with_table(readme: str) -> str:
    """`readme` with the table between the markers replaced by the current one."""
    before, start, rest = readme.partition(START)
    _, end, after = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the README lacks the markers {START} and {END}")
    return f"{before}{START}\n{settings_table()}{END}{after}"


def main(arguments: list[str]) -> int:
    readme = Path(arguments[0] if arguments else "README.md")
    try:
        text = readme.read_text(encoding="utf-8")
        readme.write_text(with_table(text), encoding="utf-8")
    except (OSError, ValueError) as error:
        print(f"{COMMAND}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
