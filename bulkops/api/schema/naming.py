"""Magento's names for services and operations.

`Magento\\Customer\\Api\\AccountManagementInterface` in version V1 is the service
`customerAccountManagementV1` (Webapi\\Model\\ServiceMetadata::getServiceName), and its method
`createAccount` on POST the operation `customerAccountManagementV1CreateAccountPost`
(Webapi\\Model\\Rest\\Swagger\\Generator::generatePathInfo).
"""

from __future__ import annotations

import re

_VERSION = re.compile(r"^V\d+$")
_PARAMETER = re.compile(r"^:(\w+)$")


def ucfirst(text: str) -> str:
    return text[:1].upper() + text[1:]


def service_name(interface: str, version: str) -> str:
    """The service name of an interface: Magento's vendor dropped, the module named once."""
    parts = [part for part in interface.split("\\") if part]
    if "Api" in parts[1:]:
        api = parts.index("Api", 1)
        namespace, rest = parts[:api], parts[api + 1 :]
    else:
        namespace, rest = parts[:2], parts[2:]
    if not rest:
        namespace, rest = namespace[:-1], namespace[-1:]
    rest[-1] = rest[-1].removesuffix("Interface") or rest[-1]
    vendor = namespace[0] if namespace and namespace[0] != "Magento" else ""
    module = namespace[1] if len(namespace) > 1 else ""
    if module == rest[0]:
        module = ""  # as Magento: no word twice
    name = vendor + module + "".join(rest)
    # Service names in `?services=` are letters and digits only.
    return re.sub(r"[^A-Za-z0-9]", "", name[:1].lower() + name[1:]) + version


def route_version(path: str) -> str:
    """`V1` for `/V1/...`, as Magento takes the version from the route."""
    first = path.strip("/").split("/")[0]
    return first if _VERSION.match(first) else "V1"


def operation_id(service: str, method: str, http_method: str) -> str:
    return service + ucfirst(method) + ucfirst(http_method.lower())


def swagger_path(path: str) -> str:
    """`/V1/bulk/:bulkUuid/status` -> `/V1/bulk/{bulkUuid}/status`."""
    return "/".join(
        f"{{{m[1]}}}" if (m := _PARAMETER.match(segment)) else segment
        for segment in path.split("/")
    )


def path_parameters(path: str) -> list[str]:
    return [m[1] for segment in path.split("/") if (m := _PARAMETER.match(segment))]
