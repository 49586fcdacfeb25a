"""The audit trail: who changed what and when, who read clinical data, and that nobody can
rewrite that history through admin."""

import pytest
from auditlog.models import LogEntry
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from analysis import services as analysis_services
from analysis.tests.factories import FindingFactory
from procedures import services
from procedures.models import ProcedureSession

pytestmark = pytest.mark.django_db


def entries_for(obj, action=None):
    qs = LogEntry.objects.get_for_object(obj)
    return qs.filter(action=action) if action is not None else qs


def test_create_update_and_delete_are_logged_with_the_actor(clinician):
    session = services.session_create(actor=clinician, title="Surveillance", procedure_type="colonoscopy")
    created = entries_for(session, LogEntry.Action.CREATE).get()
    assert created.actor == clinician

    services.session_update(actor=clinician, session=session, notes="Prep adequate")
    updated = entries_for(session, LogEntry.Action.UPDATE).get()
    assert updated.actor == clinician
    assert updated.changes_dict["notes"] == ["", "Prep adequate"]

    pk = session.pk
    session.delete()
    assert LogEntry.objects.filter(object_pk=str(pk), action=LogEntry.Action.DELETE).exists()


def test_portal_writes_are_attributed_to_the_logged_in_clinician(clinician):
    client = Client()
    client.force_login(clinician)
    response = client.post(
        reverse("procedures:create"),
        {"title": "Upper GI", "procedure_type": "upper_gi", "mode": "live", "patient_ref": "MRN-9"},
    )
    assert response.status_code == 302
    session = ProcedureSession.objects.get(title="Upper GI")
    assert entries_for(session, LogEntry.Action.CREATE).get().actor == clinician


def test_api_token_writes_are_attributed_to_the_token_owner(clinician):
    from rest_framework.authtoken.models import Token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=clinician).key}")
    response = client.post(reverse("api-procedure-list"), {"title": "Via API", "procedure_type": "bronchoscopy"})
    assert response.status_code == 201, response.content
    session = ProcedureSession.objects.get(pk=response.json()["id"])
    assert entries_for(session, LogEntry.Action.CREATE).get().actor == clinician
    client.patch(reverse("api-procedure-detail", args=[session.pk]), {"notes": "api note"})
    assert entries_for(session, LogEntry.Action.UPDATE).get().actor == clinician


def test_finding_review_is_logged_with_the_reviewer(session, clinician):
    finding = FindingFactory(session=session)
    analysis_services.finding_review(actor=clinician, finding=finding, status="confirmed", note="Agree")
    entry = entries_for(finding, LogEntry.Action.UPDATE).get()
    assert entry.actor == clinician
    assert entry.changes_dict["review_status"] == ["proposed", "confirmed"]


def test_reading_a_session_writes_an_access_entry(session, qa_user, clinician):
    client = Client()
    client.force_login(qa_user)
    assert client.get(reverse("procedures:detail", args=[session.pk])).status_code == 200
    access = entries_for(session, LogEntry.Action.ACCESS).get()
    assert access.actor == qa_user
    assert access.additional_data["what"] == "session"

    api = APIClient()
    api.force_authenticate(clinician)
    assert api.get(reverse("api-procedure-detail", args=[session.pk])).status_code == 200
    assert entries_for(session, LogEntry.Action.ACCESS).filter(actor=clinician).exists()


def test_refused_reads_leave_no_access_entry_for_the_session(session, other_clinician):
    client = Client()
    client.force_login(other_clinician)
    assert client.get(reverse("procedures:detail", args=[session.pk])).status_code == 404
    assert not entries_for(session, LogEntry.Action.ACCESS).exists()


def test_nobody_can_change_or_delete_audit_entries_in_admin(session, admin_user, qa_user, clinician):
    services.session_update(actor=clinician, session=session, notes="x")
    entry = LogEntry.objects.first()
    for user in (admin_user, qa_user):
        client = Client()
        client.force_login(user)
        change_url = reverse("admin:auditlog_logentry_change", args=[entry.pk])
        delete_url = reverse("admin:auditlog_logentry_delete", args=[entry.pk])
        assert client.get(reverse("admin:auditlog_logentry_changelist")).status_code == 200
        assert client.get(change_url).status_code == 200  # readable
        assert client.post(change_url, {"action": 2}).status_code == 403
        assert client.post(delete_url, {"post": "yes"}).status_code == 403
        bulk = client.post(
            reverse("admin:auditlog_logentry_changelist"),
            {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
        )
        assert bulk.status_code in (200, 302, 403)
    assert LogEntry.objects.filter(pk=entry.pk).exists()


def test_audit_log_admin_filters_by_user_object_and_action(session, clinician, qa_user):
    services.session_update(actor=clinician, session=session, notes="changed")
    client = Client()
    client.force_login(qa_user)
    url = reverse("admin:auditlog_logentry_changelist")
    by_user = client.get(url, {"actor": str(clinician.pk)})
    assert by_user.status_code == 200 and "changed" in by_user.content.decode() or session.title in by_user.content.decode()
    assert client.get(url, {"action__exact": "1"}).status_code == 200
    assert client.get(url, {"q": str(session.pk)}).status_code == 200


def test_consecutive_service_calls_on_one_thread_keep_their_actor(session, clinician, other_clinician):
    """auditlog leaves a stale context behind after set_actor; the next call must not reuse it."""
    services.session_update(actor=clinician, session=session, notes="one")
    services.session_update(actor=clinician, session=session, notes="two")
    other = services.session_create(actor=other_clinician, title="Other", procedure_type="other")
    actors = list(LogEntry.objects.get_for_object(session).filter(action=LogEntry.Action.UPDATE).values_list("actor", flat=True))
    assert actors == [clinician.pk, clinician.pk]
    assert entries_for(other, LogEntry.Action.CREATE).get().actor == other_clinician


def test_api_errors_name_the_code_for_not_found_and_forbidden(session, other_clinician, qa_user):
    api = APIClient()
    api.force_authenticate(other_clinician)
    body = api.get(reverse("api-procedure-detail", args=[session.pk])).json()
    assert body["error"]["code"] == "not_found"
    api.force_authenticate(qa_user)
    body = api.patch(reverse("api-procedure-detail", args=[session.pk]), {"notes": "x"}).json()
    assert body["error"]["code"] == "permission_denied"
    assert "Only the clinician who owns this session" in body["error"]["message"]


# --- issue #11: audit-trail gaps ---------------------------------------------------------

from medvision.audit import client_address  # noqa: E402


@pytest.mark.parametrize(
    "meta, trusted, expected",
    [
        ({"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "10.9.9.9"}, [], "203.0.113.9"),
        ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}, ["10.0.0.5"], "198.51.100.7"),
        ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.7"}, ["10.0.0.0/24"],
         "198.51.100.7"),
        ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "198.51.100.7, 10.0.0.6"}, ["10.0.0.0/24"],
         "198.51.100.7"),
    ],
    ids=["untrusted-peer-ignored", "trusted-proxy", "spoofed-left-entry-ignored", "chain-of-trusted-proxies"],
)
def test_the_client_address_trusts_forwarding_only_from_configured_proxies(settings, meta, trusted, expected):
    settings.TRUSTED_PROXIES = trusted
    assert client_address(meta) == expected


def test_a_forged_forwarded_for_does_not_reach_the_trail(session, clinician, settings):
    settings.TRUSTED_PROXIES = []
    client = Client(REMOTE_ADDR="203.0.113.9")
    client.force_login(clinician)
    client.get(reverse("procedures:detail", args=[session.pk]), HTTP_X_FORWARDED_FOR="1.2.3.4")
    entry = entries_for(session, LogEntry.Action.ACCESS).latest("timestamp")
    assert entry.remote_addr == "203.0.113.9"


def test_session_lists_are_reads_of_every_session_shown(session, clinician):
    client = Client()
    client.force_login(clinician)
    client.get(reverse("procedures:list"))
    assert entries_for(session, LogEntry.Action.ACCESS).filter(additional_data__what="session_list").exists()
    api = APIClient()
    api.force_authenticate(clinician)
    assert api.get("/api/v1/procedures/").status_code == 200
    assert entries_for(session, LogEntry.Action.ACCESS).filter(additional_data__what="api:session_list").exists()


def test_key_frames_recordings_and_the_recording_list_are_audited_reads(session, clinician, media_root):
    from django.core.files.base import ContentFile

    from analysis.tests.factories import FrameFactory
    from procedures.models import Video

    video = Video(session=session, sha256="d" * 64, original_name="x.mp4")
    video.file.save("x.mp4", ContentFile(b"0123456789"), save=True)
    frame = FrameFactory(session=session, video=video)
    frame.image.save("f.jpg", ContentFile(b"jpeg"), save=True)
    client = Client()
    client.force_login(clinician)
    assert client.get(reverse("procedures:frame-image", args=[session.pk, frame.pk])).status_code == 200
    assert client.get(reverse("procedures:video-file", args=[session.pk, video.pk])).status_code == 200
    assert client.get(reverse("procedures:video-file", args=[session.pk, video.pk]),
                      HTTP_RANGE="bytes=4-7").status_code == 206  # a seek: not another entry
    api = APIClient()
    api.force_authenticate(clinician)
    assert api.get(f"/api/v1/procedures/{session.pk}/video/").status_code == 200
    whats = list(entries_for(session, LogEntry.Action.ACCESS).values_list("additional_data__what", flat=True))
    assert whats.count("frame_image") == 1 and whats.count("video_file") == 1 and whats.count("api:videos") == 1
