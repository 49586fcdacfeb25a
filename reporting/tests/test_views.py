"""The structured report pages: the form per procedure type (GET/POST), per-field errors,
rows added and removed without a script, "Fill from confirmed findings", the surveillance
confirmation; read-only for QA and signed sessions, 404 for another clinician, reads
audited."""

import re

import pytest
from auditlog.models import LogEntry
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analysis.tests.factories import FindingFactory
from procedures.models import SessionStatus
from procedures.tests.factories import ProcedureSessionFactory
from reporting.models import StructuredReport, TimelineMark

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(clinician):
    client = Client()
    client.force_login(clinician)
    return client


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def edit_url(session):
    return reverse("reporting:edit", args=[session.pk])


def stored(session):
    return StructuredReport.objects.get(session=session).data


def control(html: str, name: str) -> str:
    """The opening tag of the input/select/textarea named ``name``."""
    match = re.search(rf'<(?:input|select|textarea)[^>]*name="{re.escape(name)}"[^>]*>', html)
    assert match, f"no control named {name}"
    return match.group(0)


COLON_FORM = {
    "indication_kind": "screening", "indication_text": "Average-risk screening", "asa_class": "II",
    "sedation_level": "moderate", "sedation_agents": "Midazolam 2 mg", "extent": "cecum",
    "bbps_right": "2", "bbps_transverse": "3", "bbps_left": "3",
    "polyps.0.size_mm": "6", "polyps.0.location": "ascending_colon", "polyps.0.paris": "0-Is",
    "polyps.0.nice": "2", "polyps.0.resection": "cold_snare", "polyps.0.retrieved": "yes", "polyps.0.jar": "1",
    "polyps.0.histology": "",
    "complications": ["none"], "impression": "One small adenoma-like polyp removed.",
    "recommendations": "Await histology.",
}


def test_the_owner_sees_the_colonoscopy_form_and_opening_it_is_audited(owner, session, clinician):
    response = owner.get(edit_url(session))
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("asa_class", "sedation_level", "bbps_right", "bbps_transverse", "bbps_left", "extent",
                 "incomplete_reason", "impression", "recommendations"):
        assert f'name="{name}"' in html
    assert "Bowel preparation (BBPS) left colon" in html and "ASA II: mild systemic disease" in html
    assert 'id="row-template-polyps"' in html and "Fill from confirmed findings" in html
    assert "Not for clinical use." in html  # base.html's notice, on every page with AI output
    assert 'id="surveillance"' in html and "Normal colonoscopy" not in html  # no extent yet
    entry = LogEntry.objects.filter(action=LogEntry.Action.ACCESS, object_pk=str(session.pk)).latest("timestamp")
    assert entry.actor == clinician and entry.additional_data["what"] == "structured_report"


def test_saving_the_form_stores_typed_values_and_redirects(owner, session, clinician):
    response = owner.post(edit_url(session), {**COLON_FORM, "action": "save"})
    assert response.status_code == 302 and response["Location"] == edit_url(session)
    data = stored(session)
    assert data["asa_class"] == "II" and data["bbps_right"] == 2 and data["bbps_left"] == 3
    assert data["complications"] == ["none"]
    (polyp,) = data["polyps"]
    assert polyp["size_mm"] == 6 and polyp["retrieved"] is True and polyp["histology"] == "pending"
    assert polyp["location"] == "ascending_colon"
    assert StructuredReport.objects.get(session=session).updated_by == clinician

    page = owner.get(edit_url(session)).content.decode()
    assert re.search(r'id="bbps-total-value"[^>]*>8<', page)  # 2 + 3 + 3, computed, not typed
    assert "1-2 tubular adenomas" in page  # the suggested interval names the rule that produced it


def test_a_refused_value_is_highlighted_with_its_message_and_nothing_is_saved(owner, session):
    owner.post(edit_url(session), {**COLON_FORM, "action": "save"})
    response = owner.post(edit_url(session), {**COLON_FORM, "bbps_left": "7", "polyps.0.size_mm": "big"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'aria-invalid="true"' in control(html, "polyps.0.size_mm") and "invalid" in control(html, "polyps.0.size_mm")
    assert "Enter a number." in html
    assert 'aria-invalid="true"' in control(html, "bbps_left")
    assert 'aria-invalid="true"' not in control(html, "asa_class")
    problem = re.search(r'id="form-problem"[^>]*>(.*?)</p>', html, re.S).group(1)
    assert "Bowel preparation (BBPS) left colon" in problem and "Polyp 1 size (mm)" in problem
    assert stored(session)["bbps_left"] == 3  # the earlier save stands


def test_a_schema_rule_is_reported_on_its_field(owner, session):
    response = owner.post(edit_url(session), {**COLON_FORM, "polyps.0.size_mm": "900"})
    assert response.status_code == 400
    assert 'aria-invalid="true"' in control(response.content.decode(), "polyps.0.size_mm")


def test_rows_are_added_and_removed_without_a_script(owner, session):
    response = owner.post(edit_url(session), {**COLON_FORM, "add_row": "polyps"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="polyps.1.size_mm"' in html  # a blank second row to fill in
    assert len(stored(session)["polyps"]) == 1  # the blank row is not stored

    # Rows may arrive with gaps (the script removes rows in place): they are renumbered.
    form = {k: v for k, v in COLON_FORM.items() if not k.startswith("polyps.")}
    form.update({"polyps.3.size_mm": "4", "polyps.3.location": "rectum", "polyps.7.size_mm": "12",
                 "polyps.7.location": "cecum", "remove_row": "polyps.3"})
    assert owner.post(edit_url(session), form).status_code == 200
    (polyp,) = stored(session)["polyps"]
    assert polyp["size_mm"] == 12 and polyp["location"] == "cecum"


def test_another_clinicians_report_is_not_found(session, other_clinician):
    client = client_for(other_clinician)
    assert client.get(edit_url(session)).status_code == 404
    assert client.post(edit_url(session), COLON_FORM).status_code == 404
    assert not StructuredReport.objects.filter(session=session, data__asa_class="II").exists()


def test_qa_reads_the_report_but_cannot_change_it(session, qa_user, owner):
    owner.post(edit_url(session), {**COLON_FORM, "action": "save"})
    client = client_for(qa_user)
    response = client.get(edit_url(session))
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<fieldset class="report-body"\s+disabled', html)
    assert 'id="save-report"' not in html and "Fill from confirmed findings" not in html
    assert 'id="read-only-reason"' in html
    assert client.post(edit_url(session), {**COLON_FORM, "asa_class": "IV"}).status_code == 403
    assert client.post(reverse("reporting:prefill", args=[session.pk])).status_code == 403
    assert stored(session)["asa_class"] == "II"
    assert LogEntry.objects.filter(action=LogEntry.Action.ACCESS, actor=qa_user,
                                   additional_data__what="structured_report").exists()


def test_a_signed_report_is_read_only(owner, clinician):
    session = ProcedureSessionFactory(clinician=clinician, status=SessionStatus.SIGNED, signed_by=clinician,
                                      signed_at=timezone.now())
    response = owner.get(edit_url(session))
    assert response.status_code == 200
    assert "signed" in re.search(r'id="read-only-reason">(.*?)</p>', response.content.decode(), re.S).group(1)
    assert 'id="save-report"' not in response.content.decode()
    assert owner.post(edit_url(session), COLON_FORM).status_code == 403
    assert owner.post(reverse("reporting:surveillance", args=[session.pk]), {"chosen_months": "36"}).status_code == 403


def test_fill_from_confirmed_findings_adds_only_confirmed_ones(owner, session):
    confirmed = FindingFactory(session=session, category="polyp", location="sigmoid_colon", size_mm=7,
                               review_status="confirmed")
    FindingFactory(session=session, category="polyp", location="rectum", size_mm=3, review_status="proposed")
    FindingFactory(session=session, category="polyp", location="cecum", size_mm=9, review_status="rejected")
    response = owner.post(reverse("reporting:prefill", args=[session.pk]))
    assert response.status_code == 302 and response["Location"] == edit_url(session)
    (polyp,) = stored(session)["polyps"]
    assert polyp["finding_id"] == str(confirmed.pk) and polyp["location"] == "sigmoid_colon"
    assert polyp["size_mm"] == 7
    owner.post(reverse("reporting:prefill", args=[session.pk]))
    assert len(stored(session)["polyps"]) == 1  # never twice
    page = owner.get(edit_url(session)).content.decode()
    assert "from a confirmed finding" in page


def test_the_clinician_confirms_or_changes_the_suggested_interval(owner, session):
    owner.post(edit_url(session), {**COLON_FORM, "action": "save"})
    response = owner.post(reverse("reporting:surveillance", args=[session.pk]),
                          {"chosen_months": "60", "note": "Family history"})
    assert response.status_code == 302
    surveillance = stored(session)["surveillance"]
    assert surveillance["confirmed"] is True and surveillance["chosen_months"] == 60
    assert surveillance["suggested_months"] == 84 and "tubular adenomas" in surveillance["suggested_rule"]
    assert surveillance["note"] == "Family history"
    page = owner.get(edit_url(session)).content.decode()
    assert "Repeat colonoscopy in 5 years" in re.search(r'id="surveillance-chosen">(.*?)</p>', page, re.S).group(1)
    # Saving the form again keeps the confirmed choice (the form does not carry it).
    owner.post(edit_url(session), {**COLON_FORM, "action": "save"})
    assert stored(session)["surveillance"]["chosen_months"] == 60


def test_the_withdrawal_time_is_shown_from_the_marks(owner, session, clinician):
    TimelineMark.objects.create(session=session, kind="cecum_reached", time_ms=60_000, set_by=clinician)
    TimelineMark.objects.create(session=session, kind="scope_out", time_ms=60_000 + 412_400, set_by=clinician)
    html = owner.get(edit_url(session)).content.decode()
    assert "6:52" in re.search(r'id="withdrawal-time">(.*?)</dd>', html, re.S).group(1)


def test_the_missing_fields_for_signing_are_named(owner, session):
    owner.post(edit_url(session), {"asa_class": "", "extent": "cecum", "action": "save"})
    html = owner.get(edit_url(session)).content.decode()
    missing = re.search(r'id="missing-for-sign"[^>]*>(.*?)</div>', html, re.S).group(1)
    assert "ASA class" in missing and "Bowel preparation (BBPS) left colon" in missing


@pytest.mark.parametrize(("procedure_type", "names"), [
    ("upper_gi", ("extent", "barrett", "prague_c_cm", "prague_m_cm", "la_grade")),
    ("bronchoscopy", ("segments_examined",)),
])
def test_each_procedure_type_has_its_own_form(clinician, owner, procedure_type, names):
    session = ProcedureSessionFactory(clinician=clinician, procedure_type=procedure_type)
    html = owner.get(edit_url(session)).content.decode()
    for name in names:
        assert f'name="{name}"' in html
    assert 'name="bbps_left"' not in html and 'id="surveillance"' not in html


def test_an_upper_gi_report_saves_ulcers_and_prague(clinician, owner):
    session = ProcedureSessionFactory(clinician=clinician, procedure_type="upper_gi")
    response = owner.post(edit_url(session), {
        "extent": "duodenum_d2", "barrett": "yes", "prague_c_cm": "2", "prague_m_cm": "4", "la_grade": "B",
        "ulcers.0.location": "duodenal_bulb", "ulcers.0.forrest": "IIa", "ulcers.0.size_mm": "8",
        "biopsies.0.site": "gastric_antrum", "biopsies.0.purpose": "H. pylori", "action": "save",
    })
    assert response.status_code == 302
    data = stored(session)
    assert data["barrett"] is True and data["prague_m_cm"] == 4 and data["la_grade"] == "B"
    assert data["ulcers"][0]["forrest"] == "IIa" and data["biopsies"][0]["purpose"] == "H. pylori"

    # Prague M shorter than C: the schema's rule, shown on the page.
    response = owner.post(edit_url(session), {"prague_c_cm": "5", "prague_m_cm": "3"})
    assert response.status_code == 400
    assert "Prague M" in response.content.decode()


def _recording(session, number=1):
    from procedures.models import Video

    return Video.objects.create(session=session, number=number, file=f"videos/{session.pk}/r{number}.mp4",
                                sha256=f"{number}" * 64, container="mov,mp4", codec="h264", duration_s=60.0, fps=25,
                                width=160, height=120, size_bytes=1000, state="done")


def test_the_marks_panel_sits_below_each_recordings_video_with_the_set_marks(owner, session, clinician):
    first, second = _recording(session, 1), _recording(session, 2)
    TimelineMark.objects.create(session=session, kind="cecum_reached", time_ms=65_000, video=first, set_by=clinician)
    html = owner.get(reverse("procedures:detail", args=[session.pk])).content.decode()
    panels = re.findall(r'<div class="marks-panel"[^>]*>', html)
    assert len(panels) == 2
    assert 'data-marks-video="#recording-1-video"' in panels[0] and f'data-video="{first.pk}"' in panels[0]
    assert f'data-video="{second.pk}"' in panels[1]
    assert f'data-api="/api/v1/procedures/{session.pk}/marks/"' in panels[0]
    # Directly below its <video>.
    assert re.search(r'id="recording-1-video"[^>]*></video>\s*<link[^>]*report\.css[^>]*>\s*<div class="marks-panel"',
                     html)
    for label in ("Cecum reached", "Scope out", "Appendiceal orifice", "Ileocecal valve"):
        assert label in html
    assert 'aria-keyshortcuts="Shift+C"' in html and "1:05" in html
    # The second panel says the mark is on another recording.
    assert "Recording 1" in re.findall(r'class="hint mark-where"[^>]*>([^<]*)<', html)[4]


def test_the_marks_panel_is_on_the_live_page_without_a_recording(owner, session):
    html = owner.get(reverse("procedures:live", args=[session.pk])).content.decode()
    panel = re.search(r'<div class="marks-panel"[^>]*>', html).group(0)
    assert 'data-marks-video="#live-video"' in panel and 'data-video=""' in panel and 'data-can-edit="true"' in panel


def test_only_colonoscopies_have_a_marks_panel_and_readers_get_no_buttons(clinician, owner, qa_user, session):
    _recording(session)
    html = client_for(qa_user).get(reverse("procedures:detail", args=[session.pk])).content.decode()
    assert 'data-can-edit="false"' in html and 'class="mark-set"' not in html
    upper = ProcedureSessionFactory(clinician=clinician, procedure_type="upper_gi")
    _recording(upper)
    assert "marks-panel" not in owner.get(reverse("procedures:detail", args=[upper.pk])).content.decode()


def test_no_interval_is_preselected_before_there_is_a_suggestion(owner, session):
    html = owner.get(edit_url(session)).content.decode()  # no extent yet: no suggestion
    select = re.search(r'<select id="surveillance-months".*?</select>', html, re.S).group(0)
    assert re.search(r'<option value="" selected>', select) and select.count(" selected") == 1
    response = owner.post(reverse("reporting:surveillance", args=[session.pk]), {"chosen_months": ""}, follow=True)
    assert "Choose a surveillance interval." in response.content.decode()
    assert not StructuredReport.objects.filter(session=session, data__surveillance__confirmed=True).exists()
