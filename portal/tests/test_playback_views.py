"""The recording's file URL serves the playable copy once it is ready, the original on
?original=1 (a download, audited); the status include says where the copy stands."""

import pytest
from auditlog.models import LogEntry
from django.core.files.base import ContentFile
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse

from procedures.models import PlaybackState, Video

pytestmark = pytest.mark.django_db

ORIGINAL = b"\x47" + bytes(range(255)) * 8  # stands for an MPEG-TS
COPY = b"copy-bytes" * 50


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def a_recording(session, *, state=PlaybackState.NOT_NEEDED, with_copy=True, error=""):
    video = Video(session=session, sha256="e" * 64, container="mpegts", codec="mpeg2video", state="done",
                  playback_state=state, playback_error=error, number=2)
    video.file.save("v.bin", ContentFile(ORIGINAL), save=False)
    if with_copy:
        video.playback_file.save("c.mp4", ContentFile(COPY), save=False)
    video.save()
    return video


def _served(entry):
    return entry.additional_data.get("served")


def test_a_ready_copy_is_what_the_player_gets(clinician, session, media_root):
    video = a_recording(session, state=PlaybackState.READY)
    assert video.playback_file.name == f"videos/{session.pk}/{video.pk}.playback.mp4"
    url = reverse("procedures:video-file", args=[session.pk, video.pk])
    client = logged_in(clinician)
    whole = client.get(url)
    assert whole.status_code == 200 and whole["Content-Type"] == "video/mp4"
    assert b"".join(whole.streaming_content) == COPY
    assert not whole.get("Content-Disposition", "").startswith("attachment")
    part = client.get(url, HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 10-19/{len(COPY)}"
    assert b"".join(part.streaming_content) == COPY[10:20]


def test_the_original_is_a_download_and_is_audited(clinician, session, media_root):
    video = a_recording(session, state=PlaybackState.READY)
    url = reverse("procedures:video-file", args=[session.pk, video.pk]) + "?original=1"
    response = logged_in(clinician).get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == ORIGINAL
    assert response["Content-Disposition"] == 'attachment; filename="recording-2.ts"'
    entries = LogEntry.objects.filter(action=LogEntry.Action.ACCESS, object_pk=str(session.pk))
    assert [_served(e) for e in entries if e.additional_data.get("what") == "video_file"] == ["original_download"]


@pytest.mark.parametrize("state", [PlaybackState.NOT_NEEDED, PlaybackState.PENDING, PlaybackState.MAKING,
                                   PlaybackState.FAILED])
def test_until_a_copy_is_ready_the_original_is_played(clinician, session, media_root, state):
    video = a_recording(session, state=state)
    response = logged_in(clinician).get(reverse("procedures:video-file", args=[session.pk, video.pk]))
    assert b"".join(response.streaming_content) == ORIGINAL


def test_a_ready_copy_missing_on_disk_falls_back_to_the_original(clinician, session, media_root):
    video = a_recording(session, state=PlaybackState.READY)
    video.playback_file.storage.delete(video.playback_file.name)
    response = logged_in(clinician).get(reverse("procedures:video-file", args=[session.pk, video.pk]))
    assert b"".join(response.streaming_content) == ORIGINAL


def test_nobody_else_gets_the_original(other_clinician, session, media_root):
    video = a_recording(session, state=PlaybackState.READY)
    url = reverse("procedures:video-file", args=[session.pk, video.pk]) + "?original=1"
    assert logged_in(other_clinician).get(url).status_code in (403, 404)


@pytest.mark.parametrize(("state", "progress", "error", "expected"), [
    (PlaybackState.PENDING, 0.0, "", "waiting to be made"),
    (PlaybackState.MAKING, 0.42, "", "Making a playable copy… 42 %"),
    (PlaybackState.READY, 1.0, "", "browser-playable copy"),
    (PlaybackState.FAILED, 0.0, "ffmpeg <b>failed</b>",
     "A playable copy could not be made: ffmpeg &lt;b&gt;failed&lt;/b&gt;; download the original."),
])
def test_the_status_include_says_where_the_copy_stands(session, media_root, state, progress, error, expected):
    video = a_recording(session, state=state, error=error)
    video.playback_progress = progress
    html = render_to_string("procedures/_playback_status.html", {"video": video})
    assert f'data-playback-for="{video.pk}"' in html and f'data-playback-state="{state}"' in html
    assert expected in html
    assert "<progress" in html and f"{reverse('procedures:video-file', args=[session.pk, video.pk])}?original=1" in html
    assert (" hidden>" in html.split("<progress", 1)[1].split("\n", 1)[0]) == (state in ("ready", "failed"))


def test_the_status_include_is_hidden_when_no_copy_is_needed(session, media_root):
    video = a_recording(session, with_copy=False)
    html = render_to_string("procedures/_playback_status.html", {"video": video})
    assert 'data-playback-state="not_needed" role="status" hidden' in html
