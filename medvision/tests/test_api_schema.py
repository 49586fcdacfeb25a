"""The OpenAPI schema describes the API we serve, the docs page works offline, and a
schemathesis run against our own schema finds no server error.

Schemathesis drives the real WSGI application in-process (no socket), authenticated with a
clinician's API token. Path ids are either generated (mostly unknown: 404s) or the ids of
a real session and finding of that clinician, so the operations also run on real rows.
Hypothesis is derandomized and bounded, so the run is the same on every machine.
"""

from __future__ import annotations

import os
import re

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

DESIGN_OPERATIONS = {
    ("POST", "/api/v1/auth/token/"),
    ("GET", "/api/v1/procedures/"), ("POST", "/api/v1/procedures/"),
    ("GET", "/api/v1/procedures/{session_id}/"), ("PATCH", "/api/v1/procedures/{session_id}/"),
    ("POST", "/api/v1/procedures/{session_id}/video/"),
    ("GET", "/api/v1/procedures/{session_id}/findings/"),
    ("PATCH", "/api/v1/findings/{finding_id}/"),
    ("POST", "/api/v1/procedures/{session_id}/sign/"),
    ("GET", "/api/v1/procedures/{session_id}/export/"),
    ("GET", "/api/v1/procedures/{session_id}/fhir/"),
}


@schemathesis.serializer("application/offset+octet-stream")
def _tus_chunk(ctx, value):
    """A resumable upload's chunk is raw bytes (analysis.uploads_api)."""
    return value if isinstance(value, bytes) else str(value).encode()


@pytest.fixture
def schema_client(clinician):
    client = Client()
    client.force_login(clinician)
    return client


@pytest.mark.django_db
def test_the_schema_lists_every_operation_of_the_design(schema_client):
    response = schema_client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    served = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    assert DESIGN_OPERATIONS <= served, DESIGN_OPERATIONS - served
    export = schema["paths"]["/api/v1/procedures/{session_id}/export/"]["get"]["responses"]["200"]["content"]
    assert list(export) == ["application/zip"]
    fhir = schema["paths"]["/api/v1/procedures/{session_id}/fhir/"]["get"]["responses"]["200"]["content"]
    assert list(fhir) == ["application/fhir+json"]


@pytest.mark.django_db
def test_the_docs_page_loads_nothing_from_a_cdn(schema_client):
    response = schema_client.get(reverse("api-docs"))
    assert response.status_code == 200
    html = response.content.decode()
    external = re.findall(r"""(?:src|href)=["'](https?:)?//[^"']+""", html)
    assert not external, external
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert f"drf_spectacular_sidecar/swagger-ui-dist/{asset}" in html
        assert finders.find(f"drf_spectacular_sidecar/swagger-ui-dist/{asset}"), asset


def _load(auth: dict, real: dict):
    loaded = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(),
                                            headers={**auth, "Accept": "application/vnd.oai.openapi+json"})

    @loaded.hook
    def flatmap_path_parameters(context, path_parameters):
        # Half the cases on the clinician's real session and finding, half on unknown ids.
        if not path_parameters:
            return st.just(path_parameters)
        known = {k: real.get(k, v) for k, v in path_parameters.items()}
        return st.sampled_from([path_parameters, known])

    # tus 1.0 answers a missing or wrong Tus-Resumable header with 412, as its spec requires:
    # that is a rejection too (analysis.uploads_api; no other operation answers 412).
    rejection = loaded.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "412"]
    return loaded


@pytest.fixture
def raised_throttles(monkeypatch):
    """This run sends hundreds of requests a minute: the throttles are raised for it only."""
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"user": "100000/min", "anon": "100000/min",
                                                                   "upload": "100000/min"})
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def wsgi_in_test_transaction():
    # Django closes the database connection around every request; that would end the test's
    # transaction. Django's own test client switches this off the same way.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def as_role(clinician, connector, session, media_root, raised_throttles, wsgi_in_test_transaction):
    """(auth headers, real path ids) for each role: a clinician on their own session, an
    EHR connector on a signed session, and nobody."""
    from django.utils import timezone

    from analysis.tests.factories import FindingFactory
    from procedures.tests.factories import ProcedureSessionFactory

    own_finding = FindingFactory(session=session)
    signed = ProcedureSessionFactory(clinician=clinician, status="signed", signed_by=clinician,
                                     signed_at=timezone.now())
    report_finding = FindingFactory(session=signed, review_status="confirmed", reviewed_by=clinician)

    def headers(user):
        return {"Authorization": f"Token {Token.objects.create(user=user).key}"}

    return {
        "clinician": (headers(clinician), {"session_id": str(session.pk), "finding_id": str(own_finding.pk)}),
        "connector": (headers(connector), {"session_id": str(signed.pk), "finding_id": str(report_finding.pk)}),
        "anonymous": ({}, {"session_id": str(session.pk), "finding_id": str(own_finding.pk)}),
    }


def _schema_headers(as_role):
    return as_role["clinician"][0]  # the schema itself is served to signed-in users


# schemathesis' own pytest integration (schema.parametrize / from_fixture) relies on pytest
# internals that pytest 9 removed, so each operation runs under a plain Hypothesis @given.
@pytest.mark.django_db
@pytest.mark.parametrize("role", ["clinician", "connector", "anonymous"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_keeps_its_contract(as_role, role, mode):
    """Every check schemathesis has (status codes, content types, response schemas, headers,
    negative data rejected, positive data accepted, auth, ...), as each role."""
    auth, real = as_role[role]
    loaded = _load(_schema_headers(as_role), real)
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) >= len(DESIGN_OPERATIONS)
    failures = []
    for operation in operations:

        # Whether an uploaded file is a decodable video cannot be said in OpenAPI (it is
        # "binary"): random bytes are schema-valid and rightly refused with a 400.
        # Likewise a tus request's offset and an upload's state (OpenAPI cannot say "the offset
        # the server holds"): schema-valid values are rightly refused with a 409.
        excluded = [positive_data_acceptance] if (operation.path.endswith("/video/") and operation.method == "post") \
            or "/uploads/" in operation.path else []

        @settings(max_examples=int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25")), deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode, headers=auth))
        def run(case):
            response = case.call(headers=auth)
            case.validate_response(response, headers=auth, excluded_checks=excluded)

        try:
            run()
        except BaseException as exc:  # noqa: BLE001 - collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
