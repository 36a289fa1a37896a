"""A service method's declared parameters, and a decoded body converted against them as
Magento's input processing does (`Framework/Webapi/ServiceInputProcessor.php`, scalars by
`Framework/Reflection/TypeProcessor.php::processSimpleAndAnyType`): `"1.0"` for an int is 1, a
number for a string is its text, booleans as PHP's FILTER_VALIDATE_BOOLEAN reads them."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from bulkops.errors import InputError, WebapiError

SIMPLE_TYPES = frozenset({"string", "int", "float", "bool", "boolean", "mixed"})
_TYPE_ERROR = (
    'The "{value}" value\'s type is invalid. The "{type}" type was expected. Verify and try again.'
)
# PHP 8's is_numeric() for strings: surrounding whitespace allowed, no hex, no "inf".
_NUMERIC = re.compile(r"^[ \t\n\r\v\f]*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?[ \t\n\r\v\f]*$")
_INTEGER = re.compile(r"^[ \t\n\r\v\f]*[+-]?\d+[ \t\n\r\v\f]*$")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# PHP's `precision` setting (14): what (string) of a float shows.
PHP_PRECISION = 14


@dataclass(frozen=True)
class ObjectType:
    """A data interface: its properties (snake_case, as REST sends them) and their types.
    Properties it does not declare pass through unconverted."""

    name: str
    properties: Mapping[str, str] = field(default_factory=dict)

    def declares(self, name: str) -> bool:
        return camel_to_snake(name) in self.properties


@dataclass(frozen=True)
class Parameter:
    name: str
    """As in the method's signature (camelCase); REST may send it in snake_case."""
    type: str | ObjectType
    required: bool = True
    default: Any = None


Signature = Sequence[Parameter]


class _TypeMismatch(Exception):
    """A value that cannot be converted; the message is Magento's, already rendered."""


@cache
def camel_to_snake(name: str) -> str:
    """SimpleDataObjectConverter::camelCaseToSnakeCase."""
    return re.sub(r"(.)([A-Z])", r"\1_\2", name).lower()


@cache
def _snake_parameter(name: str) -> str:
    """How ServiceInputProcessor::process spells a parameter in snake_case."""
    return re.sub(r"(?<=\w)(?=[A-Z])", "_", name).lower()


def snake_to_camel(name: str) -> str:
    """SimpleDataObjectConverter::snakeCaseToCamelCase."""
    upper = "".join(word[:1].upper() + word[1:] for word in name.split("_"))
    return upper[:1].lower() + upper[1:]


def convert(signature: Signature, data: Any) -> dict[str, Any]:
    """The parameters' values by name, converted, or Magento's input error: a conversion
    error as soon as it is met (its message without parameters), else every missing required
    parameter. A null value is a missing one, as isset() says."""
    given = data if isinstance(data, dict) else {}
    values: dict[str, Any] = {}
    missing: list[WebapiError] = []
    for parameter in signature:
        value = given.get(parameter.name)
        if value is None:
            value = given.get(_snake_parameter(parameter.name))
        if value is None:
            if parameter.required:
                missing.append(InputError.required(parameter.name))
            else:
                values[parameter.name] = parameter.default
            continue
        try:
            values[parameter.name] = convert_value(value, parameter.type)
        except _TypeMismatch as error:
            raise InputError(str(error)) from None
    if missing:
        raise InputError.aggregate(missing)
    return values


def convert_value(value: Any, kind: str | ObjectType) -> Any:
    if isinstance(kind, ObjectType):
        return _object(value, kind)
    return _simple(value, kind)


def _object(value: Any, kind: ObjectType) -> dict[str, Any]:
    # Anything but an array makes an empty object (ServiceInputProcessor::_createFromArray).
    data = value if isinstance(value, dict) else {}
    converted: dict[str, Any] = {}
    for name, item in data.items():
        declared = kind.properties.get(camel_to_snake(name))
        if declared is None:
            converted[name] = item
            continue
        try:
            converted[name] = convert_value(item, declared)
        except _TypeMismatch as error:
            raise _TypeMismatch(f'Error occurred during "{name}" processing. {error}') from None
    return converted


def _simple(value: Any, kind: str) -> Any:
    if kind == "mixed" or value is None:
        return value
    if isinstance(value, dict | list):
        raise _mismatch("array", kind)
    if kind in ("bool", "boolean"):
        # filter_var(FILTER_VALIDATE_BOOLEAN) without NULL_ON_FAILURE: never an error.
        return php_string(value).strip().lower() in ("1", "true", "on", "yes")
    if kind == "string":
        return php_string(value)
    if isinstance(value, bool) or (isinstance(value, str) and not _NUMERIC.match(value)):
        raise _mismatch(php_string(value), kind)
    if kind == "int":
        return _php_int(value)
    if kind == "float":
        return float(value)
    raise ValueError(f"unknown parameter type {kind!r}")


def _mismatch(value: str, kind: str) -> _TypeMismatch:
    return _TypeMismatch(_TYPE_ERROR.format(value=value, type=kind))


def _php_int(value: int | float | str) -> int:
    """settype($value, 'int') of a number or numeric string."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if _INTEGER.match(value) and INT64_MIN <= int(value) <= INT64_MAX:
            return int(value)
        # A numeric string that is no integer goes through a float, saturating.
        number = float(value)
        if math.isinf(number):
            return INT64_MAX if number > 0 else INT64_MIN
        return max(INT64_MIN, min(INT64_MAX, int(number)))
    if not math.isfinite(value):
        return 0
    # A float out of range wraps around, as PHP does on 64-bit platforms.
    wrapped = int(value) % 2**64
    return wrapped - 2**64 if wrapped > INT64_MAX else wrapped


def php_string(value: Any) -> str:
    """PHP's (string) of a scalar: true is "1", false "", floats with 14 significant digits."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, float):
        return php_float(value, PHP_PRECISION, "E")
    return str(value)


def php_float(number: float, precision: int, exponent: str) -> str:
    """PHP's php_gcvt(): `precision` significant digits (0: the shortest that reads back, as
    json_encode does with serialize_precision -1), exponent form past them or below 1e-4."""
    if number == 0:
        return "-0" if math.copysign(1, number) < 0 else "0"
    if precision == 0:
        text, precision = repr(abs(number)), 17
    else:
        text = f"{abs(number):.{precision - 1}e}"
    _, digit_tuple, power = Decimal(text).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    decimal_point = len(digits) + int(power)
    sign = "-" if number < 0 else ""
    if (decimal_point < -3) if decimal_point < 0 else (decimal_point > precision):
        power = decimal_point - 1
        fraction = digits[1:] or "0"
        return f"{sign}{digits[0]}.{fraction}{exponent}{'-' if power < 0 else '+'}{abs(power)}"
    if decimal_point <= 0:
        return f"{sign}0.{'0' * -decimal_point}{digits}"
    whole, fraction = digits[:decimal_point].ljust(decimal_point, "0"), digits[decimal_point:]
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"
