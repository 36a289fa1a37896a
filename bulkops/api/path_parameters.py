"""A single item's path parameters over its body, as Magento's
`Webapi/Controller/Rest/ParamsOverrider::overrideRequestBodyIdWithPathParam` does for PUT:
`PUT /V1/products/abc` with `{"product": {"sku": "x"}}` saves the product `abc`."""

from __future__ import annotations

from typing import Any

from bulkops.services.signature import ObjectType, Signature, camel_to_snake, snake_to_camel


def override_body_id(
    body: dict[str, Any], path_parameters: dict[str, str], signature: Signature | None
) -> None:
    """The last path parameter replaces its property in the body's only object (when that
    object's type has it) or else at the top; `me` (the caller's own entity) replaces nothing."""
    name, value = list(path_parameters.items())[-1]
    if value == "me":
        return
    if len(body) == 1:
        ((key, nested),) = body.items()
        if isinstance(nested, dict) and _declares(signature, key, name, nested):
            _substitute(nested, name, value)
            return
    _substitute(body, name, value)


def _declares(signature: Signature | None, key: str, name: str, nested: dict[str, Any]) -> bool:
    """Whether the body's object has the property `name`: by its declared type, or for a route
    without a signature, when the object already holds it."""
    if signature is None:
        return snake_to_camel(name) in nested or camel_to_snake(name) in nested
    return any(
        parameter.name == key
        and isinstance(parameter.type, ObjectType)
        and parameter.type.declares(name)
        for parameter in signature
    )


def _substitute(data: dict[str, Any], name: str, value: str) -> None:
    """ParamsOverrider::substituteParameters: the camelCase key if set, else the snake_case one."""
    camel = snake_to_camel(name)
    if data.get(camel) is not None:
        data[camel] = value
    else:
        data[camel_to_snake(name)] = value
