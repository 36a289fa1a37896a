"""A handler that kills its worker process on every delivery, as a segfaulting library or an
out-of-memory kill would, after noting the call in the file named by FATAL_HANDLER_CALLS."""

from __future__ import annotations

import os

from bulkops.handlers import OperationInput, registry

SERVICE = "Tests\\Api\\FatalInterface::run"


@registry.route("POST", "/V1/tests/fatal", service=SERVICE)
async def run(operation: OperationInput) -> None:
    descriptor = os.open(os.environ["FATAL_HANDLER_CALLS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, f"{operation.operation_id}\n".encode())
    finally:
        os.close(descriptor)
    os._exit(70)
