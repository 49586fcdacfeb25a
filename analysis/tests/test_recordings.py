"""Uploading a recording: probed, not trusted by extension; refused uploads leave nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from procedures.models import SessionStatus, Video
from testing import videos as tv

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    good = tv.make_test_video(d / "good.mp4", seconds=2, size=(160, 120))
    return {
        "good": good,
        "empty": tv.make_empty_file(d / "empty.mp4"),
        "random": tv.make_random_bytes(d / "random.mp4"),
        "truncated": tv.make_truncated_copy(good, d / "truncated.mp4"),
        "audio_only": tv.make_audio_only(d / "audio.m4a"),
        "image": tv.make_still_image(d / "image.mp4"),
    }


@pytest.fixture
def api(clinician):
    client = APIClient()
    client.force_authenticate(clinician)
    return client


@pytest.fixture
def enqueued(monkeypatch):
    sent = []
    monkeypatch.setattr("analysis.tasks.process_video.delay", lambda video_id: sent.append(video_id))
    return sent


def upload(api, session, path, name="procedure.mp4"):
    data = path.read_bytes()
    return api.post(reverse("api-procedure-video", args=[session.pk]),
                    {"file": SimpleUploadedFile(name, data, content_type="video/mp4")}, format="multipart")


def media_files(root):
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_valid_recording_is_accepted_probed_and_queued(api, session, videos, enqueued, media_root,
                                                        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(api, session, videos["good"])
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["state"] == "uploaded"
    assert (body["width"], body["height"]) == (160, 120)
    assert body["duration_s"] == pytest.approx(2.0, abs=0.1)
    assert body["fps"] == pytest.approx(25, abs=0.1)
    assert body["codec"] == "h264"
    assert len(body["sha256"]) == 64
    session.refresh_from_db()
    assert session.status == SessionStatus.PROCESSING and session.mode == "recorded"
    assert enqueued == [body["id"]]
    stored = Video.objects.get(pk=body["id"])
    assert stored.file.path.endswith(".bin")  # the client's file name never becomes a path
    assert stored.original_name == "procedure.mp4"


@pytest.mark.parametrize(
    "case, expected",
    [
        ("empty", "The file is empty"),
        ("random", "not a video"),
        ("truncated", "cut short"),
        ("audio_only", "no video"),
        ("image", "still image"),
    ],
)
def test_malformed_uploads_get_a_clear_400_and_leave_nothing(case, expected, api, session, videos, enqueued, media_root):
    response = upload(api, session, videos[case])
    assert response.status_code == 400, response.content
    message = response.json()["error"]["message"]
    assert expected.lower() in message.lower(), message
    assert not Video.objects.exists()
    assert media_files(media_root) == []
    session.refresh_from_db()
    assert session.status == SessionStatus.DRAFT
    assert enqueued == []


def test_absurd_dimensions_are_refused(api, session, videos, settings, media_root):
    settings.VIDEO_MAX_WIDTH = 100  # the 160x120 test video is "too wide" now
    response = upload(api, session, videos["good"])
    assert response.status_code == 400
    assert "160" in response.json()["error"]["message"]
    assert not Video.objects.exists()


def test_oversized_upload_is_refused(api, session, videos, settings, media_root):
    settings.VIDEO_MAX_UPLOAD_BYTES = 1024
    response = upload(api, session, videos["good"])
    assert response.status_code in (400, 413)
    assert "limit" in response.json()["error"]["message"]
    assert not Video.objects.exists() and media_files(media_root) == []


def test_the_same_file_twice_is_detected(api, session, videos, enqueued, media_root, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert upload(api, session, videos["good"]).status_code == 202
    Video.objects.update(state="done")
    again = upload(api, session, videos["good"], name="renamed.mov")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "duplicate"
    assert "already uploaded" in again.json()["error"]["message"]
    assert Video.objects.count() == 1


def test_missing_file_field_is_explained(api, session):
    response = api.post(reverse("api-procedure-video", args=[session.pk]), {}, format="multipart")
    assert response.status_code == 400
    assert "field named 'file'" in response.json()["error"]["message"]


def test_another_clinicians_upload_attempt_is_not_found(other_clinician, session, videos, media_root):
    client = APIClient()
    client.force_authenticate(other_clinician)
    response = upload(client, session, videos["good"])
    assert response.status_code == 404
    assert not Video.objects.exists() and media_files(media_root) == []


def test_progress_is_readable_from_the_api(api, session, videos, enqueued, media_root, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(api, session, videos["good"])
    page = api.get(reverse("api-procedure-video", args=[session.pk])).json()
    assert page["count"] == 1 and "NOT FOR CLINICAL USE" in page["disclaimer"]
    listing = page["results"]
    assert [v["state"] for v in listing] == ["uploaded"]
    assert {"progress", "progress_detail", "gate_counts", "summary", "error_message"} <= set(listing[0])
    assert listing[0]["original_name"]


def test_connectors_do_not_see_uploaded_file_names(api, session, videos, enqueued, media_root, connector, clinician,
                                                   django_capture_on_commit_callbacks):
    """A recorder's file name can carry the patient's name; the bundle leaves it out, and so
    does the API for connectors."""
    from django.utils import timezone
    from rest_framework.test import APIClient

    with django_capture_on_commit_callbacks(execute=True):
        upload(api, session, videos["good"])
    type(session).objects.filter(pk=session.pk).update(status="signed", signed_by=clinician, signed_at=timezone.now())
    ehr = APIClient()
    ehr.force_authenticate(connector)
    [video] = ehr.get(reverse("api-procedure-video", args=[session.pk])).json()["results"]
    assert video["original_name"] is None
    [own] = api.get(reverse("api-procedure-video", args=[session.pk])).json()["results"]
    assert own["original_name"]


def test_a_single_request_over_its_limit_points_to_the_resumable_upload(api, session, videos, settings, media_root):
    settings.VIDEO_SINGLE_REQUEST_MAX_BYTES = 1024  # the clip is larger; the overall limit is not reached
    response = upload(api, session, videos["good"])
    assert response.status_code in (400, 413)
    assert "resumable upload" in response.json()["error"]["message"]
    assert not Video.objects.exists() and media_files(media_root) == []
