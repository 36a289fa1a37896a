"""Items for the demo route that creates customers, as the API tests submit them."""

from __future__ import annotations

import uuid

import httpx

CUSTOMERS = "/rest/default/async/bulk/V1/customers"
"""The demo route's bulk form."""


def customer(email: str) -> dict[str, object]:
    return {"customer": {"email": email}, "password": "Password1"}


def submit_pairs(client: httpx.Client, pairs: int) -> str:
    """A bulk of `pairs` new emails, each twice: the first of each pair completes, the second
    fails (its email is taken). Answers its uuid."""
    emails = [f"{uuid.uuid4().hex}@example.com" for _ in range(pairs)]
    items = [customer(email) for email in emails for _ in range(2)]
    response = client.post(CUSTOMERS, json=items)
    assert response.status_code == 202, response.text
    return response.json()["bulk_uuid"]
