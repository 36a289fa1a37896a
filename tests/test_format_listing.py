"""A streamed answer is written batch by batch (`Format.listing`): whatever the batches, its
bytes are those of the same answer rendered whole, in JSON and in XML."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from bulkops.api import xml
from bulkops.api.formats import JSON, XML, Format

ITEMS = [
    {"id": number, "name": f'item "{number}" \u00e9\\', "error_code": None, "nested": {"n": [1]}}
    for number in range(7)
]


def tail(count: int) -> dict[str, Any]:
    return {"search_criteria": {"page_size": None}, "total_count": count}


def batches_of(sizes: list[int]) -> list[list[Any]]:
    batches, start = [], 0
    for size in sizes:
        batches.append(ITEMS[start : start + size])
        start += size
    return batches


def listed(rendering: Format, batches: list[list[Any]]) -> bytes:
    async def source() -> AsyncIterator[list[Any]]:
        for batch in batches:
            yield batch

    async def written() -> bytes:
        chunks = [bytes(chunk) async for chunk in rendering.listing("items", source(), [], tail)]
        return b"".join(chunks)

    return asyncio.run(written())


@pytest.mark.parametrize("sizes", [[], [0], [7], [1, 6], [3, 0, 4], [1] * 7])
@pytest.mark.parametrize(
    ("rendering", "whole"), [(JSON, orjson.dumps), (XML, xml.document)], ids=["json", "xml"]
)
def test_a_listing_is_the_answer_rendered_whole(
    rendering: Format, whole: Any, sizes: list[int]
) -> None:
    items = ITEMS[: sum(sizes)]
    answer = {"items": items, **tail(len(items))}
    assert listed(rendering, batches_of(sizes)) == whole(answer)
