"""Every error message the package defines can be filled in by naive substitution.

Clients replace each `%name` of `message` with its parameter one after the other, as Magento's
own clients do; if one name started another (`%field` and `%fields`), the shorter would eat the
start of the longer. So within one message no placeholder name is a prefix of another, and every
placeholder has its parameter.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import bulkops

PLACEHOLDER = re.compile(r"%([A-Za-z_]\w*)")
PACKAGE = Path(bulkops.__file__).parent


def messages() -> list[tuple[str, str, set[str] | None]]:
    """(where, message, parameter names or None when not a literal) of every call that builds
    an error or a result message with named placeholders: a `...Error(...)` call, or any call
    given a dict of parameters."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            message = node.args[0]
            if not isinstance(message, ast.Constant) or not isinstance(message.value, str):
                continue
            if not PLACEHOLDER.search(message.value):
                continue
            arguments = [*node.args[1:], *(keyword.value for keyword in node.keywords)]
            dicts = [argument for argument in arguments if isinstance(argument, ast.Dict)]
            if not dicts and not _callee(node).endswith("Error"):
                continue
            names = None
            if dicts and all(isinstance(key, ast.Constant) for key in dicts[0].keys):
                names = {key.value for key in dicts[0].keys}  # type: ignore[union-attr]
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            found.append((where, message.value, names))
    return found


def _callee(call: ast.Call) -> str:
    function = call.func
    if isinstance(function, ast.Attribute):
        return function.attr if function.attr != "__init__" else ""
    return function.id if isinstance(function, ast.Name) else ""


def prefixed_names(message: str) -> list[tuple[str, str]]:
    names = set(PLACEHOLDER.findall(message))
    return [(a, b) for a in names for b in names if a != b and b.startswith(a)]


def test_the_walk_finds_the_messages_it_guards() -> None:
    found = {message for _, message, _ in messages()}
    assert '"%fieldName" is required. Enter and try again.' in found
    assert "The consumer isn't authorized to access %resources." in found
    assert 'Field "%field" is not a searchable field. Use one of: %searchable.' in found
    assert len(found) >= 15


def test_a_prefix_is_detected() -> None:
    assert prefixed_names('Field "%field" is not one of %fields.') == [("field", "fields")]


@pytest.mark.parametrize(("where", "message", "names"), messages())
def test_no_placeholder_name_is_a_prefix_of_another(
    where: str, message: str, names: set[str] | None
) -> None:
    assert prefixed_names(message) == [], where
    if names is not None:
        assert set(PLACEHOLDER.findall(message)) == names, where
