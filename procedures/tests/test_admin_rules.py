"""Admin follows the services' rules, superusers included (issue #11, item 4), and its
pages that show clinical data are audited (item 5)."""

import os

import pytest
from auditlog.models import LogEntry
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from analysis.tests.factories import FindingFactory, FrameFactory
from procedures.models import ProcedureSession, Video

pytestmark = pytest.mark.django_db


def admin_client(user):
    client = Client()
    client.force_login(user)
    return client


def with_recording(session, media_root):
    video = Video(session=session, sha256="c" * 64, original_name="recording.mp4")
    video.file.save("recording.mp4", ContentFile(b"not really a video"), save=True)
    frame = FrameFactory(session=session, video=video)
    frame.image.save("frame.jpg", ContentFile(b"jpeg"), save=True)
    return video, frame


def sign(session, clinician):
    session.status = "signed"
    session.signed_by = clinician
    session.signed_at = timezone.now()
    session.save()


def test_a_superuser_cannot_edit_or_reassign_a_session(session, other_clinician, admin_user):
    client = admin_client(admin_user)
    url = f"/admin/procedures/proceduresession/{session.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and b'type="submit" value="Save"' not in page.content  # view only
    response = client.post(url, {"title": "hijacked", "clinician": other_clinician.pk, "status": "signed",
                                 "patient_ref": "MRN-EVIL"})
    assert response.status_code == 403
    session.refresh_from_db()
    assert session.clinician_id != other_clinician.pk and session.patient_ref != "MRN-EVIL"


def test_a_signed_sessions_recording_cannot_be_deleted_in_admin(session, clinician, admin_user, media_root):
    video, _ = with_recording(session, media_root)
    sign(session, clinician)
    client = admin_client(admin_user)
    response = client.post(f"/admin/procedures/video/{video.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Video.objects.filter(pk=video.pk).exists()
    response = client.post(f"/admin/procedures/proceduresession/{session.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403


def test_nothing_clinical_is_deleted_in_admin_as_the_services_delete_nothing(session, admin_user, media_root):
    with_recording(session, media_root)
    client = admin_client(admin_user)
    assert client.post(f"/admin/procedures/proceduresession/{session.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ProcedureSession.objects.filter(pk=session.pk).exists()


def test_a_deleted_row_takes_its_files_with_it(session, media_root, django_capture_on_commit_callbacks):
    """Wherever the delete comes from (a retention job, a shell): no orphaned clinical file."""
    video, frame = with_recording(session, media_root)
    paths = [video.file.path, frame.image.path]
    assert all(os.path.exists(path) for path in paths)
    with django_capture_on_commit_callbacks(execute=True):
        ProcedureSession.objects.filter(pk=session.pk).delete()
    assert not any(os.path.exists(path) for path in paths)


def test_a_user_in_the_audit_trail_is_deactivated_not_deleted(session, qa_user, admin_user):
    from django.db.models import ProtectedError

    from procedures.selectors import session_get

    session_get(user=qa_user, session_id=session.pk)  # an ACCESS entry names the reviewer
    client = admin_client(admin_user)
    assert client.post(f"/admin/auth/user/{qa_user.pk}/delete/", {"post": "yes"}).status_code == 403
    from django.db import transaction

    with pytest.raises(ProtectedError, match="Deactivate the account instead"), transaction.atomic():
        qa_user.delete()
    assert LogEntry.objects.filter(actor=qa_user).exists()


@pytest.mark.parametrize("page", ["proceduresession", "video", "finding", "frame"])
def test_admin_pages_showing_clinical_data_are_audited(session, qa_user, media_root, page):
    video, frame = with_recording(session, media_root)
    finding = FindingFactory(session=session, frame=frame)
    obj = {"proceduresession": session, "video": video, "finding": finding, "frame": frame}[page]
    app = "procedures" if page in ("proceduresession", "video") else "analysis"
    client = admin_client(qa_user)
    before = LogEntry.objects.filter(action=LogEntry.Action.ACCESS, actor=qa_user).count()
    assert client.get(f"/admin/{app}/{page}/{obj.pk}/change/").status_code == 200
    assert client.get(f"/admin/{app}/{page}/").status_code == 200
    entries = LogEntry.objects.filter(action=LogEntry.Action.ACCESS, actor=qa_user, object_pk=str(session.pk))
    assert entries.count() - before >= 2
    assert {e.additional_data["what"] for e in entries} >= {f"admin:{page}", f"admin:{page}_list"}
