"""A finding belongs to the recording its times refer to: the pipeline sets it, the JSON
shape (API, WebSocket, exports) names it, a clinician's finding must name one of the
session's own recordings."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analysis import services
from analysis.api import FindingSerializer
from analysis.models import Finding
from analysis.serializers import finding_event
from analysis.tests.factories import FindingFactory
from procedures.models import Video
from procedures.tests.factories import ProcedureSessionFactory


def make_video(session, number, **extra) -> Video:
    return Video.objects.create(session=session, number=number, sha256=f"{number:x}" * 64,
                                file=f"videos/{number}.mp4", state=extra.pop("state", "done"), **extra)


@pytest.mark.django_db
def test_the_finding_json_names_its_recording(session):
    video = make_video(session, 2)  # noqa: F811 - a fixture imported for reuse
    recorded = FindingFactory(session=session, video=video)
    live = FindingFactory(session=session)
    assert (finding_event(recorded)["video"], finding_event(recorded)["recording"]) == (str(video.pk), 2)
    assert (finding_event(live)["video"], finding_event(live)["recording"]) == (None, None)


@pytest.mark.django_db
def test_the_api_lists_video_and_recording_and_documents_them(session, clinician, connector):
    first, second = make_video(session, 1), make_video(session, 2)
    FindingFactory(session=session, video=first, start_ms=1000, end_ms=1000)
    FindingFactory(session=session, video=second, start_ms=500, end_ms=500, review_status="confirmed")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=clinician)[0].key}")
    rows = client.get(reverse("api-procedure-findings", args=[session.pk])).json()["results"]
    assert [(r["start_ms"], r["recording"], r["video"]) for r in rows] == [(500, 2, str(second.pk)),
                                                                           (1000, 1, str(first.pk))]
    assert {"video", "recording"} <= set(FindingSerializer().fields)
    assert FindingSerializer().fields["recording"].read_only and FindingSerializer().fields["video"].read_only
    detail = client.get(reverse("api-finding-detail", args=[rows[0]["id"]])).json()
    assert detail["recording"] == 2


@pytest.mark.django_db
def test_a_manual_finding_takes_only_a_recording_of_its_session(session, clinician):
    mine = make_video(session, 1)
    other = make_video(ProcedureSessionFactory(clinician=clinician), 1)
    values = dict(start_ms=2000, category="polyp", location="rectum", risk="low")
    finding = services.finding_add_manual(actor=clinician, session=session, video=mine, **values)
    assert Finding.objects.get(pk=finding.pk).video == mine
    with pytest.raises(ValidationError) as refused:
        services.finding_add_manual(actor=clinician, session=session, video=other, **values)
    assert "video" in refused.value.message_dict
    assert Finding.objects.filter(session=session).count() == 1


@pytest.mark.django_db
def test_an_ai_finding_stays_in_its_recording(session, clinician):
    first, second = make_video(session, 1), make_video(session, 2)
    ai = FindingFactory(session=session, video=first)
    with pytest.raises(ValidationError):
        services.finding_set_recording(actor=clinician, finding=ai, video=second)
    ai.refresh_from_db()
    assert ai.video == first
    mine = FindingFactory(session=session, origin="clinician", video=first)
    services.finding_set_recording(actor=clinician, finding=mine, video=second)
    mine.refresh_from_db()
    assert mine.video == second


# --- the pipeline: two recordings of one session, each finding in its own ---------------

from analysis.tests.test_pipeline import colour_analyzer, eager_celery, uniform_video, video  # noqa: E402,F401


@pytest.mark.django_db(transaction=True)
def test_each_recorded_finding_gets_the_recording_it_was_found_in(video, uniform_video, colour_analyzer, eager_celery):  # noqa: F811 - a fixture imported for reuse
    from django.core.files import File

    from analysis.tasks import process_video
    from procedures.models import SessionStatus

    video.number = 1
    video.save(update_fields=["number"])
    process_video.delay(str(video.pk))
    video.refresh_from_db()
    assert video.state == "done", video.error_message

    second = Video(session=video.session, number=2, sha256="c" * 64, duration_s=6.0)
    with open(uniform_video, "rb") as fh:
        second.file.save("w.bin", File(fh), save=True)
    video.session.status = SessionStatus.PROCESSING
    video.session.save()
    process_video.delay(str(second.pk))
    second.refresh_from_db()
    assert second.state == "done", second.error_message

    per_video = dict(Finding.objects.filter(session=video.session).values_list("video").annotate(n=Count("pk")))
    assert per_video == {video.pk: 2, second.pk: 2}  # the same clip twice: the same findings in each
    for finding in Finding.objects.filter(session=video.session).select_related("frame", "video"):
        assert finding.video_id == finding.frame.video_id
        assert finding_event(finding)["recording"] == finding.video.number
