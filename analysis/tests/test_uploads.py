"""Resumable (tus 1.0) uploads through the API: the protocol, the access rules, bad input,
and what is left on disk (nothing, for anything refused, cancelled or expired)."""

import base64
import hashlib
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from analysis import uploads
from analysis.models import ResumableUpload, UploadState
from medvision.body_limits import body_limit
from procedures.models import SessionStatus, Video
from testing import videos as tv

pytestmark = pytest.mark.django_db

TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return tv.make_test_video(tmp_path_factory.mktemp("tus") / "clip.mp4", seconds=2, size=(160, 120))


@pytest.fixture
def api(clinician):
    client = APIClient()
    client.force_authenticate(clinician)
    return client


@pytest.fixture
def finishing(monkeypatch):
    """The finish task runs inline (as a worker would, after the commit); the pipeline's
    task is only recorded."""
    queued = []
    monkeypatch.setattr("analysis.tasks.finish_upload.delay", lambda upload_id: uploads.upload_finish(upload_id))
    monkeypatch.setattr("analysis.tasks.process_video.delay", lambda video_id: queued.append(video_id))
    return queued


def create(api, session, length, filename="tower export.mp4", **headers):
    meta = "filename " + base64.b64encode(filename.encode()).decode()
    return api.post(reverse("api-procedure-uploads", args=[session.pk]), HTTP_UPLOAD_LENGTH=str(length),
                    HTTP_UPLOAD_METADATA=meta, **{**TUS, **headers})


def patch(api, location, offset, data, **headers):
    return api.generic("PATCH", location, data=data, content_type="application/offset+octet-stream",
                       HTTP_UPLOAD_OFFSET=str(offset), **{**TUS, **headers})


def head(api, location):
    return api.head(location, **TUS)


def checksum(data, algorithm="sha1"):
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def files_under(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_discovery_names_version_extensions_and_limits(api, session, settings):
    response = api.options(reverse("api-procedure-uploads", args=[session.pk]))
    assert response.status_code == 204
    assert response["Tus-Resumable"] == response["Tus-Version"] == "1.0.0"
    assert set(response["Tus-Extension"].split(",")) == {"creation", "termination", "checksum", "expiration"}
    assert int(response["Tus-Max-Size"]) == settings.VIDEO_MAX_UPLOAD_BYTES
    assert "sha1" in response["Tus-Checksum-Algorithm"].split(",")


def test_an_upload_in_chunks_becomes_the_sessions_next_recording(api, session, clip, media_root, finishing,
                                                                 django_capture_on_commit_callbacks):
    data = clip.read_bytes()
    created = create(api, session, len(data))
    assert created.status_code == 201, created.content
    location = created["Location"]
    assert location.startswith(f"/api/v1/procedures/{session.pk}/uploads/")
    assert created["Tus-Resumable"] == "1.0.0" and created["Upload-Expires"].endswith("GMT")
    assert head(api, location)["Upload-Offset"] == "0"

    half = len(data) // 2
    first = patch(api, location, 0, data[:half], HTTP_UPLOAD_CHECKSUM=checksum(data[:half]))
    assert first.status_code == 204, first.content
    assert first["Upload-Offset"] == str(half)
    assert head(api, location)["Upload-Offset"] == str(half)
    assert Video.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        last = patch(api, location, half, data[half:], HTTP_UPLOAD_CHECKSUM=checksum(data[half:], "sha256"))
    assert last.status_code == 204 and last["Upload-Offset"] == str(len(data))

    video = Video.objects.get(session=session)
    assert video.number == 1 and video.original_name == "tower export.mp4"
    assert video.sha256 == hashlib.sha256(data).hexdigest()
    assert (media_root / video.file.name).read_bytes() == data
    assert files_under(media_root) == [video.file.name]  # moved, not copied; no .part left
    assert finishing == [str(video.pk)]
    session.refresh_from_db()
    assert session.status == SessionStatus.PROCESSING
    status = api.get(location, **TUS).json()
    assert status["state"] == "done" and status["video"] == str(video.pk) and status["recording"] == 1


def test_requests_without_the_tus_version_are_refused_with_412(api, session):
    response = api.post(reverse("api-procedure-uploads", args=[session.pk]), HTTP_UPLOAD_LENGTH="10")
    assert response.status_code == 412
    assert response["Tus-Version"] == "1.0.0"
    assert "Tus-Resumable" in response.json()["error"]["message"]
    assert ResumableUpload.objects.count() == 0


def test_a_final_size_over_the_limit_is_refused_before_anything_is_stored(api, session, settings, media_root):
    settings.VIDEO_MAX_UPLOAD_BYTES = 1000
    response = create(api, session, 1001)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert ResumableUpload.objects.count() == 0 and files_under(media_root) == []


@pytest.mark.parametrize("length, code", [("", "missing_header"), ("-5", "bad_header"), ("1e9", "bad_header"),
                                          ("0", "empty")])
def test_a_missing_or_malformed_length_is_a_400(api, session, media_root, length, code):
    headers = {"HTTP_UPLOAD_LENGTH": length} if length else {}
    response = api.post(reverse("api-procedure-uploads", args=[session.pk]), **{**TUS, **headers})
    assert response.status_code == 400 and response.json()["error"]["code"] == code
    assert ResumableUpload.objects.count() == 0 and files_under(media_root) == []


def test_metadata_that_is_not_base64_is_a_400(api, session, media_root):
    response = api.post(reverse("api-procedure-uploads", args=[session.pk]), HTTP_UPLOAD_LENGTH="10",
                        HTTP_UPLOAD_METADATA="filename not*base64", **TUS)
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_metadata"


def test_a_wrong_checksum_discards_the_chunk_with_460(api, session, media_root):
    location = create(api, session, 100)["Location"]
    response = patch(api, location, 0, b"x" * 40, HTTP_UPLOAD_CHECKSUM=checksum(b"y" * 40))
    assert response.status_code == 460
    assert response.json()["error"]["code"] == "checksum_mismatch"
    assert head(api, location)["Upload-Offset"] == "0"
    upload = ResumableUpload.objects.get()
    assert uploads.part_path(upload).stat().st_size == 0  # the bad bytes were cut off again
    assert patch(api, location, 0, b"x" * 40, HTTP_UPLOAD_CHECKSUM=checksum(b"x" * 40)).status_code == 204


def test_an_unknown_checksum_algorithm_is_a_400(api, session, media_root):
    location = create(api, session, 100)["Location"]
    response = patch(api, location, 0, b"x" * 10, HTTP_UPLOAD_CHECKSUM="crc32 AAAA")
    assert response.status_code == 400 and response.json()["error"]["code"] == "checksum_algorithm"


def test_an_offset_mismatch_is_a_409_and_stores_nothing(api, session, media_root):
    location = create(api, session, 100)["Location"]
    assert patch(api, location, 0, b"a" * 30).status_code == 204
    response = patch(api, location, 10, b"b" * 30)
    assert response.status_code == 409 and response.json()["error"]["code"] == "offset_mismatch"
    upload = ResumableUpload.objects.get()
    assert upload.offset == 30 and uploads.part_path(upload).read_bytes() == b"a" * 30


def test_a_chunk_must_be_sent_as_offset_octet_stream(api, session, media_root):
    location = create(api, session, 100)["Location"]
    response = api.generic("PATCH", location, data=b"a" * 10, content_type="application/octet-stream",
                           HTTP_UPLOAD_OFFSET="0", **TUS)
    assert response.status_code == 415


def test_bytes_beyond_the_declared_length_are_refused(api, session, media_root):
    location = create(api, session, 10)["Location"]
    response = patch(api, location, 0, b"a" * 11)
    assert response.status_code == 413 and response.json()["error"]["code"] == "beyond_length"
    assert ResumableUpload.objects.get().offset == 0


def test_someone_elses_session_is_not_found_and_stores_nothing(session, other_clinician, media_root):
    other = APIClient()
    other.force_authenticate(other_clinician)
    assert create(other, session, 10).status_code == 404
    assert ResumableUpload.objects.count() == 0 and files_under(media_root) == []


def test_someone_elses_upload_cannot_be_read_continued_or_cancelled(api, session, qa_user, media_root):
    location = create(api, session, 10)["Location"]
    qa = APIClient()
    qa.force_authenticate(qa_user)  # QA staff see the session, but the upload is not theirs
    assert head(qa, location).status_code == 404
    assert patch(qa, location, 0, b"a" * 10).status_code == 404
    assert qa.delete(location, **TUS).status_code == 404
    assert ResumableUpload.objects.get().offset == 0


def test_a_signed_session_takes_no_upload_and_no_more_chunks(api, session, clinician, media_root):
    location = create(api, session, 10)["Location"]
    session.status, session.signed_by, session.signed_at = SessionStatus.SIGNED, clinician, timezone.now()
    session.save()
    response = patch(api, location, 0, b"a" * 10)
    assert response.status_code == 403
    assert ResumableUpload.objects.get().offset == 0
    assert create(api, session, 10).status_code == 403
    assert ResumableUpload.objects.count() == 1


def test_an_expired_upload_is_gone_with_its_file(api, session, media_root, django_capture_on_commit_callbacks):
    location = create(api, session, 10)["Location"]
    upload = ResumableUpload.objects.get()
    assert uploads.part_path(upload).exists()
    ResumableUpload.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert patch(api, location, 0, b"a" * 10).status_code == 410
    assert head(api, location).status_code == 404  # (the row went with the first refusal)
    assert not uploads.part_path(upload).exists() and files_under(media_root) == []


def test_the_expiry_command_removes_abandoned_uploads_only(api, session, media_root,
                                                          django_capture_on_commit_callbacks):
    create(api, session, 10)
    create(api, session, 10)
    stale, fresh = ResumableUpload.objects.order_by("created_at")
    ResumableUpload.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("uploads_expire")
    assert list(ResumableUpload.objects.all()) == [fresh]
    assert files_under(media_root) == [fresh.part_name]


def test_cancelling_deletes_the_upload_and_its_bytes(api, session, media_root, django_capture_on_commit_callbacks):
    location = create(api, session, 100)["Location"]
    patch(api, location, 0, b"a" * 50)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(location, **TUS).status_code == 204
    assert head(api, location).status_code == 404
    assert ResumableUpload.objects.count() == 0 and files_under(media_root) == []


def test_a_file_that_fails_the_probe_is_refused_with_a_reason_and_deleted(api, session, media_root, finishing,
                                                                         django_capture_on_commit_callbacks):
    data = bytes(range(256)) * 40
    location = create(api, session, len(data), filename="notes.mp4")["Location"]
    with django_capture_on_commit_callbacks(execute=True):
        assert patch(api, location, 0, data).status_code == 204
    status = api.get(location, **TUS).json()
    assert status["state"] == "refused" and status["error_message"]
    assert head(api, location).status_code == 410
    assert Video.objects.count() == 0 and files_under(media_root) == []
    session.refresh_from_db()
    assert session.status == SessionStatus.DRAFT


def test_a_complete_upload_waits_while_another_recording_is_processing(api, session, clip, media_root,
                                                                       finishing, django_capture_on_commit_callbacks):
    first = clip.read_bytes()
    location = create(api, session, len(first))["Location"]
    with django_capture_on_commit_callbacks(execute=True):
        patch(api, location, 0, first)
    assert Video.objects.get().state == "uploaded"  # still being processed (its task only recorded)

    second = tv.make_test_video(media_root.parent / "second.mp4", seconds=1, size=(160, 120)).read_bytes()
    location = create(api, session, len(second))["Location"]
    waiting = []
    finishing_later = lambda upload_id: waiting.append(upload_id)  # noqa: E731
    import analysis.tasks
    original = analysis.tasks.finish_upload.delay
    analysis.tasks.finish_upload.delay = finishing_later
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert patch(api, location, 0, second).status_code == 204
    finally:
        analysis.tasks.finish_upload.delay = original
    with pytest.raises(uploads.SessionBusy):
        uploads.upload_finish(waiting[0])
    upload = ResumableUpload.objects.get(pk=waiting[0])
    assert upload.state == UploadState.CHECKING and uploads.part_path(upload).exists()  # the bytes wait
    Video.objects.update(state="done")  # the first recording finished
    assert uploads.upload_finish(waiting[0]).video.number == 2


def test_a_signed_in_browser_must_send_the_csrf_token(clinician, session, media_root):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(clinician)
    response = browser.post(reverse("api-procedure-uploads", args=[session.pk]), HTTP_UPLOAD_LENGTH="10", **TUS)
    assert response.status_code == 403
    assert ResumableUpload.objects.count() == 0


def test_anonymous_clients_are_refused(session):
    response = APIClient().post(reverse("api-procedure-uploads", args=[session.pk]), HTTP_UPLOAD_LENGTH="10", **TUS)
    assert response.status_code == 401
    assert response["Tus-Resumable"] == "1.0.0"


def test_a_chunk_route_has_its_own_small_body_limit(settings):
    path = "/api/v1/procedures/0b9e/uploads/77aa/"
    assert body_limit(path, "PATCH") == settings.TUS_MAX_CHUNK_BYTES
    assert body_limit(path, "POST") == settings.REQUEST_MAX_BODY_BYTES


def test_a_complete_upload_whose_check_was_lost_is_queued_again_by_the_sweep(api, session, media_root, monkeypatch,
                                                                            django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr("analysis.tasks.finish_upload.delay", lambda upload_id: queued.append(upload_id))
    location = create(api, session, 10)["Location"]
    with django_capture_on_commit_callbacks(execute=True):
        patch(api, location, 0, b"a" * 10)
    [upload_id] = queued
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("uploads_expire")
    assert queued == []  # not yet expired: its task may still come
    ResumableUpload.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("uploads_expire")
    assert queued == [upload_id]
