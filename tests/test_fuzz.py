"""Schemathesis against our own OpenAPI document: every operation, valid and invalid input, both stores.

Each answer must be no server error, and must match what `/api` says: a declared status code, a
declared media type, a body that validates against the declared schema, the declared headers. The
examples are derandomised so CI runs the same cases each time; `ECARTO_FUZZ_EXAMPLES` asks for more.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("ECARTO_FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


@pytest.fixture(scope="module")
def operations(feature_app) -> list[APIOperation]:
    """Every operation of the service's OpenAPI document, read from `/api` of the app over each store."""
    api = schemathesis.openapi.from_wsgi("/api", feature_app)
    return [result.ok() for result in api.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_matches_the_openapi_document(operations, mode):
    failures = [failure for operation in operations if (failure := fuzz(operation, mode))]
    assert not failures, "\n\n".join(failures)


def fuzz(operation: APIOperation, mode: GenerationMode) -> str | None:
    """Call one operation with generated requests: what the smallest failing one got wrong, or None."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def call(case: Case) -> None:
        case.call_and_validate(checks=CHECKS)

    try:
        call()
    except Unsatisfiable:  # nothing of this operation can be made invalid
        return None
    except (AssertionError, FailureGroup) as failure:  # reported with the other operations' failures
        lines = [line[:300] for line in str(failure).splitlines()[:30]]
        return f"{operation.label} ({mode.value}):\n" + "\n".join(lines)
    return None


@pytest.mark.parametrize(("url", "status"), [
    ("/collections/departements/items?bbox=0,0,0,0&bbox-crs=http%3A%2F%2Fwww.opengis.net%2Fdef%2Fcrs%2FEPSG%2F0%2F2154",
     200),
    ("/collections/departements/items?bbox=700000,6600000,700000,6600000&bbox-crs=EPSG:2154", 200),
    ("/collections/etablissements/items?bbox=300000,6700000,300000,6900000&bbox-crs=EPSG:2154", 200),
    ("/collections/etablissements/items?bbox=-4.67e-107,-2.08e%2B237,0,4.58e%2B15,4.31e%2B16,0&bbox-crs=EPSG:2154",
     400),
])
def test_what_the_fuzzer_found_is_answered(feature_app, url, status):
    """Requests a longer run once answered with a 500 (projected boxes of zero width or absurd size)."""
    response = feature_app.test_client().get(url)
    assert response.status_code == status, response.get_data(as_text=True)
