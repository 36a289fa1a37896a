"""Schemathesis against the served OpenAPI document, every operation of it, on a real
`bulkops serve` on every backend: requests built from the document, valid and not, never get
a 5xx, and the answers are what the document says."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import given
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode, checks
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import BaseSchema

from tests.backends import Backend
from tests.fuzzing import answering_server, fuzz_settings
from tests.servers import RunningServer


@pytest.fixture(scope="module")
def documented(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server without a worker (the suite is about answers), with routes that have path
    parameters."""
    directory = tmp_path_factory.mktemp("schemathesis")
    url = backend.create_database(directory)
    server = answering_server(directory, url)
    yield server
    server.stop()
    backend.drop_database(url)


@pytest.fixture(scope="module")
def served_schema(documented: RunningServer) -> BaseSchema:
    """The OpenAPI document as an admin gets it: every route."""
    return schemathesis.openapi.from_url(
        f"{documented.base_url}/rest/openapi.json",
        headers={"Authorization": f"Bearer {documented.admin_token()}"},
    )


# Magento validates more and less than its schema says, and bulkops with it: searchCriteria is
# required though none of its parameters is, an email must not be empty, unknown fields are
# ignored, a DELETE's body is not read. The document stays Magento's; every other check runs.
VALIDATION_BEYOND_THE_DOCUMENT = [checks.positive_data_acceptance, checks.negative_data_rejection]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(
    documented: RunningServer, served_schema: BaseSchema, mode: GenerationMode
) -> None:
    # Each operation is a test of its own (schemathesis' pytest plugin does not run on this
    # pytest); all are run, and their failures reported together.
    headers = {"Authorization": f"Bearer {documented.admin_token()}"}
    failures = []
    operations = [result.ok() for result in served_schema.get_all_operations()]
    for operation in operations:

        @fuzz_settings(short_examples=10, fuzz_examples=2000)
        @given(case=operation.as_strategy(mode))
        def answers_as_documented(case: Case) -> None:
            case.call_and_validate(headers=headers, excluded_checks=VALIDATION_BEYOND_THE_DOCUMENT)

        try:
            answers_as_documented()
        except Unsatisfiable:
            # An operation that takes nothing (no parameter, no body) has no invalid request.
            if mode is not GenerationMode.NEGATIVE:
                raise
        except (AssertionError, FailureGroup) as error:
            failures.append(f"{operation.label}: {error}")
    assert operations
    assert not failures, "\n\n".join(failures)
