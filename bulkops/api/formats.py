"""The two renderings of a response, JSON and Magento's XML: whole documents, and the search
answer written as it is read (an object whose first key is a list of unknown length)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from bulkops.api import xml

Tail = Callable[[int], dict[str, Any]]
"""The keys after the streamed list, given the number of its items."""

Chunk = bytes | memoryview
"""A piece of a streamed body: a view saves copying a slice of megabytes."""


class JsonFormat:
    media_type = "application/json"
    content_type = "application/json; charset=utf-8"

    def document(self, data: Any) -> bytes:
        return orjson.dumps(data)

    async def listing(
        self, key: str, batches: AsyncIterator[list[Any]], empty: Any, tail: Tail
    ) -> AsyncIterator[Chunk]:
        """`{key: [...], **tail}`, the list's items written batch by batch; `empty` is what an
        empty list is written as."""
        yield b"{" + orjson.dumps(key) + b":"
        count = 0
        async for batch in batches:
            if batch:
                # One call for the whole batch (several times faster than an item at a time),
                # its brackets dropped without copying what may be megabytes.
                written = memoryview(orjson.dumps(batch))
                if count == 0:
                    yield written[:-1]
                else:
                    yield b","
                    yield written[1:-1]
                count += len(batch)
        end = b"]" if count else orjson.dumps(empty)
        rest = tail(count)
        yield end + (b"," + orjson.dumps(rest)[1:] if rest else b"}")


class XmlFormat:
    media_type = "application/xml"
    content_type = "application/xml; charset=utf-8"

    def document(self, data: Any) -> bytes:
        return xml.document(data)

    async def listing(
        self, key: str, batches: AsyncIterator[list[Any]], empty: Any, tail: Tail
    ) -> AsyncIterator[Chunk]:
        yield xml.encode(f"{xml.DECLARATION}<{xml.ROOT}>\n")
        name = xml.element_name(key)
        count = 0
        async for batch in batches:
            if batch:
                items = "".join(xml.element(xml.ITEM, item, 2) + "\n" for item in batch)
                opening = f"{xml.INDENT}<{name}>\n" if count == 0 else ""
                yield xml.encode(opening + items)
                count += len(batch)
        end = f"{xml.INDENT}</{name}>" if count else xml.element(name, empty, 1)
        rest = "".join(
            "\n" + xml.element(xml.element_name(key), value, 1)
            for key, value in tail(count).items()
        )
        yield xml.encode(f"{end}{rest}\n</{xml.ROOT}>\n")


JSON = JsonFormat()
XML = XmlFormat()
Format = JsonFormat | XmlFormat
