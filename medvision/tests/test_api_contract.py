"""The API takes what its schema documents and nothing else, and answers every error in its
JSON envelope (issue #11, API contract). The schemathesis run (test_api_schema) explores
the same ground at random; these pin each rule down."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analysis.tests.factories import FindingFactory
from procedures.models import ProcedureSession
from procedures.tests.factories import ProcedureSessionFactory

pytestmark = pytest.mark.django_db


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    return response.json()["error"]


# --- query parameters -------------------------------------------------------------------

def test_an_unknown_query_parameter_is_named_with_the_ones_that_exist(clinician, session):
    response = api(clinician).get(f"/api/v1/procedures/{session.pk}/findings/?rsik=high")
    assert response.status_code == 400
    error = error_of(response)
    assert "rsik" in error["fields"]
    assert "This operation takes: category, page, risk, status." in error["fields"]["rsik"][0]


@pytest.mark.parametrize("path", ["/api/v1/procedures/{id}/", "/api/v1/procedures/{id}/video/",
                                  "/api/v1/procedures/{id}/fhir/"])
def test_operations_without_filters_take_no_unknown_parameters(clinician, session, path):
    response = api(clinician).get(path.format(id=session.pk) + "?debug=1")
    assert response.status_code == 400 and "debug" in error_of(response)["fields"]


def test_the_documented_parameters_still_work(clinician, session):
    FindingFactory(session=session, risk="high")
    FindingFactory(session=session, risk="low")
    response = api(clinician).get(f"/api/v1/procedures/{session.pk}/findings/?risk=high&page=1")
    assert response.status_code == 200 and response.json()["count"] == 1
    assert api(clinician).get("/api/v1/procedures/?status=draft&mode=live").status_code == 200


def test_an_empty_filter_value_is_refused_not_read_as_no_filter(clinician, session):
    response = api(clinician).get(f"/api/v1/procedures/{session.pk}/findings/?risk=&category=")
    assert response.status_code == 400
    fields = error_of(response)["fields"]
    assert set(fields) == {"risk", "category"} and "leave the parameter out" in fields["risk"][0]


def test_authentication_comes_before_parameter_checks(session):
    assert api().get(f"/api/v1/procedures/{session.pk}/findings/?rsik=high").status_code == 401


# --- request bodies -----------------------------------------------------------------------

def test_a_misspelt_field_is_refused_not_ignored(clinician, session):
    response = api(clinician).patch(f"/api/v1/procedures/{session.pk}/", {"titel": "New"}, format="json")
    assert response.status_code == 400
    assert "Unknown field. This operation accepts: encounter_ref, notes, patient_ref, procedure_type, title." \
        in error_of(response)["fields"]["titel"][0]


def test_a_read_only_field_says_where_it_is_changed(clinician, session):
    response = api(clinician).patch(f"/api/v1/procedures/{session.pk}/", {"status": "signed"}, format="json")
    assert response.status_code == 400
    assert "/sign/" in error_of(response)["fields"]["status"][0]
    session.refresh_from_db()
    assert session.status != "signed"


@pytest.mark.parametrize(("payload", "field", "words"), [
    ({"title": 12}, "title", "Must be a string"),
    ({"encounter_ref": 9485754968739796.0}, "encounter_ref", "Must be a string"),
    ({"procedure_type": ["colonoscopy"]}, "procedure_type", "Must be a string"),
])
def test_values_are_not_coerced_from_another_json_type(clinician, session, payload, field, words):
    response = api(clinician).patch(f"/api/v1/procedures/{session.pk}/", payload, format="json")
    assert response.status_code == 400 and words in error_of(response)["fields"][field][0]


def test_a_connector_is_refused_before_its_body_is_validated(connector, clinician):
    from django.utils import timezone

    signed = ProcedureSessionFactory(clinician=clinician, status="signed", signed_by=clinician,
                                     signed_at=timezone.now())
    response = api(connector).patch(f"/api/v1/procedures/{signed.pk}/", {"title": 12, "x": 1}, format="json")
    assert response.status_code == 403, response.content
    assert error_of(response)["code"] == "permission_denied"


def test_a_signed_session_is_403_whatever_the_body(clinician):
    from django.utils import timezone

    signed = ProcedureSessionFactory(clinician=clinician, status="signed", signed_by=clinician,
                                     signed_at=timezone.now())
    response = api(clinician).patch(f"/api/v1/procedures/{signed.pk}/", {"nonsense": True}, format="json")
    assert response.status_code == 403


@pytest.mark.parametrize(("payload", "field"), [
    ({"title": "Colonoscopy\u0013"}, "title"),
    ({"title": "Colon\u001coscopy"}, "title"),
    ({"title": "Two\nlines"}, "title"),
    ({"notes": "Prep good.\u0000"}, "notes"),
    ({"notes": "Prep \u007f good."}, "notes"),
    ({"notes": "Prep \u0085 good."}, "notes"),
])
def test_control_characters_are_refused_in_titles_and_notes(clinician, session, payload, field):
    before = ProcedureSession.objects.values("title", "notes").get(pk=session.pk)
    response = api(clinician).patch(f"/api/v1/procedures/{session.pk}/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in error_of(response)["fields"]
    assert ProcedureSession.objects.values("title", "notes").get(pk=session.pk) == before


def test_notes_keep_line_breaks_tabs_and_any_language(clinician, session):
    notes = "Prep: Boston 8.\r\n\tCaecum reached.\nÄrztin: Dr. Müller, 内镜"
    response = api(clinician).patch(f"/api/v1/procedures/{session.pk}/", {"notes": notes}, format="json")
    assert response.status_code == 200 and response.json()["notes"] == notes


def test_control_characters_are_refused_when_creating_a_session(clinician):
    response = api(clinician).post("/api/v1/procedures/", {"title": "Screening\u0013", "procedure_type": "colonoscopy"},
                                   format="json")
    assert response.status_code == 400 and "title" in error_of(response)["fields"]
    assert not ProcedureSession.objects.exists()


def test_form_encoded_bodies_are_refused_with_415(clinician, session):
    response = api(clinician).patch(f"/api/v1/procedures/{session.pk}/", "title=New",
                                    content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and error_of(response)["code"] == "unsupported_media_type"


def test_a_malformed_multipart_upload_is_a_json_400(clinician, session):
    response = api(clinician).generic(
        "POST", f"/api/v1/procedures/{session.pk}/video/", b"--nope\r\nContent-Disposition: form-data\r\n\r\n",
        content_type="multipart/form-data; boundary=",
    )
    assert response.status_code == 400
    assert error_of(response)["message"]


# --- the token endpoint --------------------------------------------------------------------

def test_the_token_endpoint_answers_wrong_credentials_with_401(clinician):
    for password in ("wrong", "with\u0000nul"):
        response = api().post("/api/v1/auth/token/", {"username": clinician.username, "password": password},
                              format="json")
        assert response.status_code == 401, (password, response.content)
        assert error_of(response)["message"] == "Wrong user name or password."


def test_the_token_endpoint_refuses_a_body_that_is_not_an_object():
    response = api().post("/api/v1/auth/token/", [None], format="json")
    assert response.status_code == 400 and "Expected a dictionary" in error_of(response)["message"]


# --- every /api/ response is JSON --------------------------------------------------------

@pytest.mark.parametrize("debug", [True, False])
def test_a_path_matching_no_route_is_a_json_404_with_debug_on_and_off(clinician, debug):
    with override_settings(DEBUG=debug):
        for path in ("/api/v1/procedures/not-a-uuid/", "/api/v1/nothing-here/", "/api/v2/procedures/"):
            response = api(clinician).get(path)
            assert response.status_code == 404, path
            assert error_of(response)["code"] == "not_found"


def test_an_unknown_path_with_a_session_cookie_is_a_404_not_a_csrf_page(clinician):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician)
    response = client.patch("/api/v1/procedures/not-a-uuid/", "{}", content_type="application/json")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


def test_a_missing_trailing_slash_redirects_gets_and_names_the_path_otherwise(clinician, session):
    get = api(clinician).get(f"/api/v1/procedures/{session.pk}?x=1")
    assert get.status_code == 301 and get["Location"] == f"/api/v1/procedures/{session.pk}/?x=1"
    patch = api(clinician).patch(f"/api/v1/procedures/{session.pk}", {"title": "x"}, format="json")
    assert patch.status_code == 404
    assert f"/api/v1/procedures/{session.pk}/ instead" in error_of(patch)["message"]


def test_a_wrong_method_is_a_json_405(clinician, session):
    response = api(clinician).delete(f"/api/v1/procedures/{session.pk}/")
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"


def test_the_schema_without_credentials_is_a_json_401():
    response = Client().get("/api/schema/")
    assert response.status_code == 401 and error_of(response)["code"] == "not_authenticated"


def test_the_schema_states_the_body_rules(clinician):
    client = Client()
    client.force_login(clinician)
    schema = client.get("/api/schema/").json()
    components = schema["components"]["schemas"]
    review = components["PatchedFindingReviewRequest"]
    assert review["additionalProperties"] is False and review["minProperties"] == 1
    assert review["not"]["properties"]["status"]["enum"] == ["confirmed", "rejected"]
    assert components["ProcedureSessionRequest"]["additionalProperties"] is False
    title = components["ProcedureSessionRequest"]["properties"]["title"]
    assert "\\u0000" in title["pattern"] and "\\n" in title["pattern"]
    patch = schema["paths"]["/api/v1/findings/{finding_id}/"]["patch"]
    assert patch["requestBody"]["required"] is True
    assert {"400", "401", "403", "404", "409", "413", "415", "429"} <= set(patch["responses"])
    token = schema["paths"]["/api/v1/auth/token/"]["post"]
    # No credentials are taken there (they go in the body): no security requirement at all.
    assert "security" not in schema and token.get("security") in (None, [], [{}])
    assert "401" in token["responses"]
