"""Pathology results entered after sign-off: the service's rules and its addendum, the latest
result per polyp, the report page, the API, the adenoma detection rate and the exports."""

from __future__ import annotations

import datetime as dt

import pytest
from auditlog.models import LogEntry
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from medvision.notices import AI_DISCLAIMER
from procedures.access import SessionReadOnly
from procedures.models import Addendum
from procedures.tests.factories import ProcedureSessionFactory
from procedures.workflow import NotAllowed
from reporting import quality as q
from reporting import selectors, services
from reporting.models import PathologyResult, StructuredReport
from reporting.quality_selectors import quality_session_list
from reporting.schema import ReportDataError
from reporting.tests.factories import complete_data

pytestmark = pytest.mark.django_db

POLYPS = [
    {"id": "pA", "size_mm": 5, "location": "ascending_colon", "nice": "2", "resection": "cold_snare",
     "retrieved": True, "histology": "tubular_adenoma"},
    {"id": "pB", "size_mm": 6, "location": "sigmoid_colon", "nice": "2", "resection": "cold_snare",
     "retrieved": True, "histology": "pending"},
    {"id": "pC", "size_mm": 4, "location": "transverse_colon", "nice": "2", "resection": "cold_snare",
     "retrieved": True, "histology": "pending"},
]


def signed_colonoscopy(clinician, *, polyps=POLYPS, chosen_months=84, procedure_type="colonoscopy",
                       status="signed"):
    """A session as sign-off leaves it: a complete report (here with polyps, two pending) and
    the clinician's chosen interval."""
    session = ProcedureSessionFactory(
        clinician=clinician, procedure_type=procedure_type, status=status,
        started_at=timezone.make_aware(dt.datetime(2025, 3, 14, 10)),
        signed_by=clinician if status == "signed" else None,
        signed_at=timezone.make_aware(dt.datetime(2025, 3, 14, 16)) if status == "signed" else None,
    )
    data = complete_data(procedure_type)
    if procedure_type == "colonoscopy":
        data["polyps"] = [dict(p) for p in polyps]
        data["surveillance"] = {**data["surveillance"], "chosen_months": chosen_months, "confirmed": True}
    StructuredReport.objects.create(session=session, data=data, updated_by=clinician)
    return session


@pytest.fixture
def signed(clinician):
    return signed_colonoscopy(clinician)


def record(session, actor, polyp_id="pB", histology="tubular_adenoma", note=""):
    return services.pathology_record(actor=actor, session=session, polyp_id=polyp_id, histology=histology, note=note)


# --- service -----------------------------------------------------------------------------------


def test_it_records_the_result_and_an_addendum_in_labels_without_changing_the_signed_report(signed, clinician):
    before = StructuredReport.objects.get(session=signed).data
    result = record(signed, clinician, note="Path no. H-123")
    assert (result.polyp_id, result.histology, result.note, result.entered_by) == ("pB", "tubular_adenoma",
                                                                                   "Path no. H-123", clinician)
    (addendum,) = Addendum.objects.filter(session=signed)
    assert addendum.author == clinician
    assert addendum.text == (
        "Pathology, polyp 2 (Sigmoid colon, 6 mm): Tubular adenoma. Note: Path no. H-123. "
        "With the pathology entered so far the 2020 USMSTF table suggests: Repeat colonoscopy in 3 years "
        "(3-4 tubular adenomas < 10 mm: repeat in 3-5 years; provisional until pathology). "
        "The signed interval was: Repeat colonoscopy in 7 years.")
    assert "tubular_adenoma" not in addendum.text and "sigmoid_colon" not in addendum.text
    assert StructuredReport.objects.get(session=signed).data == before  # the signed report stays as signed


def test_the_suggestion_is_no_longer_provisional_once_every_polyp_has_a_result(signed, clinician):
    record(signed, clinician, "pB", "tubular_adenoma")
    record(signed, clinician, "pC", "hyperplastic")
    last = Addendum.objects.filter(session=signed).order_by("created_at").last()
    assert ("suggests: Repeat colonoscopy in 7 years (1-2 tubular adenomas < 10 mm: repeat in 7-10 years)."
            in last.text)
    view = selectors.pathology_view(signed)
    assert view["complete"] is True and view["suggestion"].provisional is False
    assert view["suggestion"].months == 84


def test_the_latest_result_per_polyp_counts(signed, clinician):
    first = record(signed, clinician, "pB", "tubular_adenoma")
    PathologyResult.objects.filter(pk=first.pk).update(created_at=timezone.now() - dt.timedelta(days=1))
    second = record(signed, clinician, "pB", "hyperplastic", note="Corrected report")
    typed = selectors.report_with_pathology(signed)
    assert [p.histology for p in typed.polyps] == ["tubular_adenoma", "hyperplastic", "pending"]
    current = {item["id"]: item["current"] for item in selectors.pathology_view(signed)["results"]}
    assert current == {str(first.pk): False, str(second.pk): True}
    assert PathologyResult.objects.filter(session=signed).count() == 2  # append-only


def test_it_refuses_an_unsigned_session_and_says_where_to_set_histology(clinician):
    session = signed_colonoscopy(clinician, status="review")
    with pytest.raises(NotAllowed, match="Before signing, set the histology in the report itself"):
        record(session, clinician)
    assert not PathologyResult.objects.exists() and not Addendum.objects.exists()


def test_it_refuses_a_procedure_other_than_colonoscopy(clinician):
    session = signed_colonoscopy(clinician, procedure_type="upper_gi")
    with pytest.raises(NotAllowed, match="colonoscopy"):
        record(session, clinician)


def test_it_refuses_a_polyp_that_is_not_in_the_signed_report(signed, clinician):
    with pytest.raises(ReportDataError) as caught:
        record(signed, clinician, polyp_id="nope")
    assert set(caught.value.errors) == {"polyp_id"} and "no such polyp" in caught.value.errors["polyp_id"]
    assert not PathologyResult.objects.exists() and not Addendum.objects.exists()


@pytest.mark.parametrize("histology", ["pending", "adenoma", ""])
def test_it_refuses_pending_or_an_unknown_histology_naming_the_choices(signed, clinician, histology):
    with pytest.raises(ReportDataError) as caught:
        record(signed, clinician, histology=histology)
    assert "Tubular adenoma" in caught.value.errors["histology"]
    assert "Pending" not in caught.value.errors["histology"]


def test_it_refuses_a_note_with_control_characters(signed, clinician):
    with pytest.raises(ReportDataError) as caught:
        record(signed, clinician, note="bad\x13note")
    assert "control characters" in caught.value.errors["note"]
    assert not Addendum.objects.exists()


def test_only_the_owner_records_results(signed, other_clinician, qa_user):
    for user in (other_clinician, qa_user):
        with pytest.raises(SessionReadOnly, match="Only the clinician who owns this session"):
            record(signed, user)
    assert not PathologyResult.objects.exists()


def test_the_write_is_audited_as_the_clinician(signed, clinician):
    result = record(signed, clinician)
    entry = LogEntry.objects.get(object_pk=str(result.pk), action=LogEntry.Action.CREATE)
    assert entry.actor == clinician


def test_admin_shows_results_read_only(signed, clinician, qa_user, admin_user):
    result = record(signed, clinician)
    client = Client()
    client.force_login(qa_user)
    response = client.get(f"/admin/reporting/pathologyresult/{result.pk}/change/")
    assert response.status_code == 200 and "Tubular adenoma" in response.content.decode()
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    model_admin = admin.site._registry[PathologyResult]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


# --- report page -------------------------------------------------------------------------------


def page_client(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_owner_sees_a_form_per_polyp_with_labels_and_records_a_result(signed, clinician):
    client = page_client(clinician)
    html = client.get(reverse("reporting:edit", args=[signed.pk])).content.decode()
    assert 'id="pathology"' in html and "No pathology results entered yet." in html
    assert html.count('class="pathology-form"') == 3
    assert ">Tubular adenoma</option>" in html and 'value="pending"' not in html.split('id="pathology"')[1]
    assert "Polyp 2 (Sigmoid colon, 6 mm)" in html
    response = client.post(reverse("reporting:pathology", args=[signed.pk]),
                           {"polyp_id": "pB", "histology": "tubular_adenoma", "note": "H-1"}, follow=True)
    assert response.redirect_chain[-1][0].endswith(reverse("reporting:edit", args=[signed.pk]) + "#pathology")
    html = response.content.decode()
    assert "Pathology recorded: Polyp 2 (Sigmoid colon, 6 mm), Tubular adenoma." in html
    results = html.split('id="pathology-results"')[1].split("</table>")[0]
    assert "Tubular adenoma" in results and "H-1" in results and "dr.owner" in results
    assert "With pathology: Repeat colonoscopy in 3 years" in html


def test_a_refused_result_comes_back_as_a_message_naming_the_problem(signed, clinician):
    response = page_client(clinician).post(reverse("reporting:pathology", args=[signed.pk]),
                                           {"polyp_id": "pB", "histology": "pending"}, follow=True)
    assert "Pathology result not recorded: Choose the histology" in response.content.decode()
    assert not PathologyResult.objects.exists()


def test_qa_reads_the_results_without_a_form_and_cannot_post(signed, clinician, qa_user):
    record(signed, clinician, "pB", "tubular_adenoma")
    record(signed, clinician, "pC", "hyperplastic")
    client = page_client(qa_user)
    html = client.get(reverse("reporting:edit", args=[signed.pk])).content.decode()
    assert 'id="pathology-results"' in html and "Hyperplastic polyp" in html
    assert 'class="pathology-form"' not in html
    section = html.split('id="pathology-suggestion"')[1].split("</p>")[0]
    assert "Repeat colonoscopy in 7 years" in section and "with pathology" in section and "provisional" not in section
    response = client.post(reverse("reporting:pathology", args=[signed.pk]), {"polyp_id": "pB",
                                                                               "histology": "carcinoma"})
    assert response.status_code == 403
    assert page_client(qa_user).post(reverse("reporting:pathology", args=[signed.pk])).status_code == 403


def test_an_unsigned_report_has_no_pathology_section(clinician):
    session = signed_colonoscopy(clinician, status="review")
    html = page_client(clinician).get(reverse("reporting:edit", args=[session.pk])).content.decode()
    assert 'id="pathology"' not in html


# --- API ---------------------------------------------------------------------------------------


def api(user):
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def url(session):
    return reverse("api-procedure-pathology", args=[session.pk])


def test_the_api_lists_results_with_the_suggestion_and_is_audited(signed, clinician, connector):
    record(signed, clinician)
    body = api(clinician).get(url(signed)).json()
    (item,) = body["results"]
    assert item["polyp_id"] == "pB" and item["histology"] == "tubular_adenoma"
    assert item["histology_label"] == "Tubular adenoma" and item["polyp"] == "Polyp 2 (Sigmoid colon, 6 mm)"
    assert item["entered_by"] == "dr.owner" and item["current"] is True
    assert body["surveillance_with_pathology"] == {
        "months": 36, "rule": "3-4 tubular adenomas < 10 mm: repeat in 3-5 years (provisional until pathology)",
        "provisional": True, "display": "Repeat colonoscopy in 3 years"}
    assert body["disclaimer"] == AI_DISCLAIMER
    assert LogEntry.objects.filter(action=LogEntry.Action.ACCESS, object_pk=str(signed.pk),
                                   additional_data__what="api:pathology_results").exists()
    assert api(connector).get(url(signed)).status_code == 200  # a connector reads signed sessions


def test_the_api_records_a_result(signed, clinician):
    response = api(clinician).post(url(signed), {"polyp_id": "pC", "histology": "hyperplastic"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["histology_label"] == "Hyperplastic polyp"
    assert PathologyResult.objects.get(pk=response.json()["id"]).polyp_id == "pC"
    assert Addendum.objects.filter(session=signed).count() == 1


@pytest.mark.parametrize("body", [
    {"polyp_id": "pB", "histology": "pending"},
    {"polyp_id": "pB", "histology": "tubular_adenoma", "colour": "red"},
    {"polyp_id": "p B", "histology": "tubular_adenoma"},
    {"histology": "tubular_adenoma"},
    {"polyp_id": "pB", "histology": "tubular_adenoma", "note": "a\nb"},
])
def test_the_api_refuses_a_body_outside_the_schema_with_400(signed, clinician, body):
    response = api(clinician).post(url(signed), body, format="json")
    assert response.status_code == 400, response.content
    assert not PathologyResult.objects.exists()


def test_the_api_answers_409_for_what_the_session_refuses(signed, clinician):
    unknown = api(clinician).post(url(signed), {"polyp_id": "zz", "histology": "hyperplastic"}, format="json")
    assert unknown.status_code == 409 and "polyp_id" in unknown.json()["error"]["fields"]
    unsigned = signed_colonoscopy(clinician, status="review")
    response = api(clinician).post(url(unsigned), {"polyp_id": "pB", "histology": "hyperplastic"}, format="json")
    assert response.status_code == 409 and "Before signing" in response.json()["error"]["message"]
    upper = signed_colonoscopy(clinician, procedure_type="upper_gi")
    assert api(clinician).post(url(upper), {"polyp_id": "pB", "histology": "hyperplastic"},
                               format="json").status_code == 409
    assert api(clinician).get(url(upper)).json()["surveillance_with_pathology"] is None


def test_the_api_refuses_others(signed, other_clinician, qa_user, connector):
    body = {"polyp_id": "pB", "histology": "hyperplastic"}
    assert api(qa_user).post(url(signed), body, format="json").status_code == 403
    assert api(connector).post(url(signed), body, format="json").status_code == 403
    assert api(other_clinician).post(url(signed), body, format="json").status_code == 404
    assert api(other_clinician).get(url(signed)).status_code == 404
    assert api(None).get(url(signed)).status_code == 401
    assert api(qa_user).get(url(signed)).status_code == 200  # QA reads everything
    assert not PathologyResult.objects.exists()


# --- quality metrics ---------------------------------------------------------------------------


def _metrics():
    sessions = quality_session_list(date_from=dt.date(2025, 3, 1), date_to=dt.date(2025, 3, 31))
    return q.compute_metrics(q.procedure_from_session(s) for s in sessions)


def test_adr_counts_a_signed_report_once_pathology_is_entered(clinician):
    pending = [{**POLYPS[1]}]  # one polyp, pending at sign-off
    session = signed_colonoscopy(clinician, polyps=pending)
    before = _metrics()
    assert (before.adenoma_detection.denominator, before.adenoma_pending_excluded) == (0, 1)
    record(session, clinician, "pB", "tubulovillous_adenoma")
    after = _metrics()
    assert after.adenoma_pending_excluded == 0
    assert (after.adenoma_detection.numerator, after.adenoma_detection.denominator) == (1, 1)


def test_adr_uses_the_latest_result(clinician):
    session = signed_colonoscopy(clinician, polyps=[{**POLYPS[1]}])
    first = record(session, clinician, "pB", "tubular_adenoma")
    PathologyResult.objects.filter(pk=first.pk).update(created_at=timezone.now() - dt.timedelta(days=1))
    record(session, clinician, "pB", "hyperplastic")
    metrics = _metrics()
    assert (metrics.adenoma_detection.numerator, metrics.adenoma_detection.denominator) == (0, 1)


# --- exports -----------------------------------------------------------------------------------


def test_exports_carry_the_results_beside_the_signed_report(signed, clinician):
    from exports import selectors as export_selectors
    from exports.structured import structured_json, text_lines

    record(signed, clinician, "pB", "tubular_adenoma", note="H-9")
    view = export_selectors.export_snapshot(session=signed, actor=clinician).structured
    data = structured_json(view)
    (item,) = data["pathology"]
    assert (item["polyp_id"], item["polyp_number"], item["histology"], item["histology_label"], item["note"]) == (
        "pB", 2, "tubular_adenoma", "Tubular adenoma", "H-9")
    assert data["data"]["polyps"][1]["histology"] == "pending"  # the signed report, as signed
    section = next(s for s in view.sections if s.key == "pathology")
    assert section.table.rows[0][:5] == ("2", "Polyp 2 (Sigmoid colon, 6 mm)", "Tubular adenoma", "H-9", "dr.owner")
    assert section.rows[0].value.startswith("Repeat colonoscopy in 3 years (3-4 tubular adenomas")
    text = " ".join(" ".join(text_lines(view)).split())
    assert "Pathology results (entered after sign-off)" in text
    assert "2. Polyp: Polyp 2 (Sigmoid colon, 6 mm); Histology: Tubular adenoma; Note: H-9" in text
    page = page_client(clinician).get(reverse("exports:report", args=[signed.pk])).content.decode()
    assert "Pathology results (entered after sign-off)" in page and "Tubular adenoma" in page
    assert "Pathology, polyp 2 (Sigmoid colon, 6 mm): Tubular adenoma." in page  # the addendum


def test_a_report_without_results_exports_an_empty_pathology_list(signed, clinician):
    from exports import selectors as export_selectors
    from exports.structured import structured_json

    view = export_selectors.export_snapshot(session=signed, actor=clinician).structured
    assert structured_json(view)["pathology"] == []
    assert "pathology" not in [s.key for s in view.sections]
