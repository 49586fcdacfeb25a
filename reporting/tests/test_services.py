"""Report and mark writes: validated, audited, owner only, never once signed."""

from __future__ import annotations

import os

import pytest
from auditlog.models import LogEntry
from django.core.files import File
from django.utils import timezone

from procedures.access import SessionReadOnly
from procedures.models import SessionStatus, Video
from procedures.tests.factories import ProcedureSessionFactory
from procedures.workflow import NotAllowed
from reporting import schema, selectors, services
from reporting.models import StructuredReport, TimelineMark
from reporting.tests.factories import complete_data
from testing import videos as tv

pytestmark = pytest.mark.django_db


def _sign(session, clinician):
    session.status, session.signed_by, session.signed_at = SessionStatus.SIGNED, clinician, timezone.now()
    session.save()


def test_get_or_create_makes_one_empty_report(session):
    first = services.report_get_or_create(session=session)
    assert services.report_get_or_create(session=session).pk == first.pk
    assert first.data == schema.empty("colonoscopy")


def test_a_signed_session_without_a_report_gets_an_unsaved_empty_one(session, clinician):
    _sign(session, clinician)
    report = services.report_get_or_create(session=session)
    assert report.data == schema.empty("colonoscopy") and not StructuredReport.objects.exists()


def test_update_stores_fields_keeps_the_others_and_is_audited(session, clinician):
    services.report_update(actor=clinician, session=session, data={"asa_class": "II", "bbps_left": 3})
    report = services.report_update(actor=clinician, session=session, data={"impression": "Normal."})
    assert (report.data["asa_class"], report.data["bbps_left"], report.data["impression"]) == ("II", 3, "Normal.")
    assert report.updated_by == clinician
    entries = LogEntry.objects.get_for_object(report).filter(actor=clinician)
    assert sorted(e.action for e in entries) == [LogEntry.Action.CREATE, LogEntry.Action.UPDATE, LogEntry.Action.UPDATE]


def test_update_refuses_bad_values_per_field_and_stores_nothing(session, clinician):
    with pytest.raises(schema.ReportDataError) as refused:
        services.report_update(actor=clinician, session=session, data={"asa_class": "VII", "bbps_left": 4,
                                                                        "prague_c_cm": 1})
    assert set(refused.value.errors) == {"asa_class", "bbps_left", "prague_c_cm"}
    assert services.report_get_or_create(session=session).data["asa_class"] is None


def test_update_is_refused_to_others_and_once_signed(session, clinician, other_clinician, qa_user):
    for user in (other_clinician, qa_user):
        with pytest.raises(SessionReadOnly):
            services.report_update(actor=user, session=session, data={"asa_class": "I"})
    _sign(session, clinician)
    with pytest.raises(SessionReadOnly, match="signed"):
        services.report_update(actor=clinician, session=session, data={"asa_class": "I"})


def test_the_surveillance_suggestion_is_the_servers_not_the_clients(session, clinician):
    data = {k: v for k, v in complete_data("colonoscopy").items() if k != "surveillance"}
    services.report_update(actor=clinician, session=session, data=data)
    report = services.report_update(actor=clinician, session=session, data={"surveillance": {
        "suggested_months": 6, "suggested_rule": "forged", "chosen_months": 60, "confirmed": True}})
    block = report.data["surveillance"]
    assert (block["suggested_months"], block["chosen_months"], block["confirmed"]) == (120, 60, True)
    assert block["suggested_rule"].startswith("Normal colonoscopy")


def test_surveillance_confirm_snapshots_the_suggestion_and_the_choice(session, clinician):
    services.report_update(actor=clinician, session=session, data={
        "extent": "cecum", "bbps_right": 2, "bbps_transverse": 2, "bbps_left": 2,
        "polyps": [{"size_mm": 12, "location": "rectum", "histology": "tubular_adenoma"}]})
    report = services.surveillance_confirm(actor=clinician, session=session, chosen_months=24, note="Family history")
    assert report.data["surveillance"] == {"suggested_months": 36, "suggested_rule": report.data["surveillance"][
        "suggested_rule"], "chosen_months": 24, "confirmed": True, "note": "Family history"}
    assert "3 years" in report.data["surveillance"]["suggested_rule"]
    view = selectors.report_view(session)
    assert view["surveillance"]["chosen_display"] == "Repeat colonoscopy in 2 years" and not view["surveillance"]["stale"]


def test_surveillance_is_a_colonoscopy_thing(clinician):
    upper = ProcedureSessionFactory(clinician=clinician, procedure_type="upper_gi")
    with pytest.raises(NotAllowed):
        services.surveillance_confirm(actor=clinician, session=upper, chosen_months=12, note="")


@pytest.fixture
def recording(session, media_root, tmp_path):
    path = tmp_path / "clip.mp4"
    tv.make_test_video(path, seconds=3, size=(160, 120))
    video = Video(session=session, sha256=os.urandom(32).hex(), duration_s=3.0, width=160, height=120)
    with open(path, "rb") as fh:
        video.file.save("v.bin", File(fh), save=True)
    return video


def test_a_landmark_mark_gets_its_key_frame_and_moving_it_edits_the_same_mark(session, clinician, recording):
    mark = services.mark_set(actor=clinician, session=session, kind="appendiceal_orifice", time_ms=1000,
                             video=recording)
    assert mark.frame is not None and mark.frame.video == recording and mark.frame.timestamp_ms == 1000
    moved = services.mark_set(actor=clinician, session=session, kind="appendiceal_orifice", time_ms=2000,
                              video=recording)
    assert moved.pk == mark.pk and moved.frame.timestamp_ms == 2000
    assert TimelineMark.objects.filter(session=session).count() == 1
    out = services.mark_set(actor=clinician, session=session, kind="scope_out", time_ms=2500, video=recording)
    assert out.frame is None and out.set_by == clinician


def test_marks_are_refused_past_the_end_on_other_recordings_and_off_colonoscopy(session, clinician, recording):
    with pytest.raises(schema.ReportDataError, match="after the end of Recording 1"):
        services.mark_set(actor=clinician, session=session, kind="cecum_reached", time_ms=9000, video=recording)
    other = ProcedureSessionFactory(clinician=clinician)
    with pytest.raises(schema.ReportDataError, match="another procedure"):
        services.mark_set(actor=clinician, session=other, kind="scope_out", time_ms=100, video=recording)
    with pytest.raises(schema.ReportDataError, match="Choose one of"):
        services.mark_set(actor=clinician, session=session, kind="halfway", time_ms=100)
    broncho = ProcedureSessionFactory(clinician=clinician, procedure_type="bronchoscopy")
    with pytest.raises(NotAllowed, match="colonoscopies"):
        services.mark_set(actor=clinician, session=broncho, kind="scope_out", time_ms=100)
    assert not TimelineMark.objects.exists()


def test_a_live_mark_takes_the_latest_live_frame_and_marks_are_locked_once_signed(session, clinician, media_root):
    from django.core.files.base import ContentFile

    from analysis.tests.factories import FrameFactory

    live = FrameFactory(session=session, source="live", timestamp_ms=4000)
    live.image.save("x.jpg", ContentFile(b"\xff\xd8\xff"), save=True)
    mark = services.mark_set(actor=clinician, session=session, kind="cecum_reached", time_ms=4500)
    assert mark.frame == live and mark.video is None
    assert services.mark_delete(actor=clinician, session=session, kind="scope_out") is False
    _sign(session, clinician)
    with pytest.raises(SessionReadOnly):
        services.mark_set(actor=clinician, session=session, kind="scope_out", time_ms=9000)
    with pytest.raises(SessionReadOnly):
        services.mark_delete(actor=clinician, session=session, mark_id=mark.pk)
    assert TimelineMark.objects.filter(pk=mark.pk).exists()


def test_report_view_gives_labels_totals_and_withdrawal(session, clinician):
    from reporting.tests.factories import complete_report

    complete_report(session, actor=clinician)
    services.report_update(actor=clinician, session=session, data={"polyps": [
        {"size_mm": 4, "location": "rectum", "paris": "0-Is", "histology": "hyperplastic"}]})
    view = selectors.report_view(session)
    fields = {f["name"]: f["display"] for f in view["fields"]}
    assert fields["asa_class"] == "ASA II: mild systemic disease" and fields["complications"] == "None"
    assert fields["bbps_right"].startswith("2:")
    (polyps,) = view["tables"]
    assert polyps["rows"][0]["cells"][:3] == ["4", "Rectum", "0-Is (sessile)"]
    assert (view["bbps_total"], view["withdrawal_display"], view["missing"]) == (8, "7:00", [])
    assert [m["label"] for m in view["marks"]] == ["Cecum reached", "Appendiceal orifice", "Ileocecal valve",
                                                  "Scope out"]
