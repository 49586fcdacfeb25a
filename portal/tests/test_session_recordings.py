"""Several recordings on one session page: each finding is listed with its recording, its
time link plays that recording, each recording has its own plot and processing panel, and
adding another recording is an explicit action. Clinicians' findings name a recording."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from analysis.models import Finding
from analysis.tests.factories import FindingFactory
from procedures.models import Video
from procedures.tests.factories import ProcedureSessionFactory

pytestmark = pytest.mark.django_db


def make_video(session, number, *, state="done", duration_s=60.0, **extra) -> Video:
    return Video.objects.create(session=session, number=number, sha256=f"{number:x}" * 64, file=f"videos/{number}.mp4",
                                state=state, duration_s=duration_s, width=640, height=480, **extra)


@pytest.fixture
def owner(clinician):
    client = Client()
    client.force_login(clinician)
    return client


@pytest.fixture
def two_recordings(session):
    """Recording 1 (60 s) and Recording 2 (10 min), each with findings at its own times."""
    first, second = make_video(session, 1, duration_s=60.0), make_video(session, 2, duration_s=600.0)
    a = FindingFactory(session=session, video=first, start_ms=30_000, end_ms=31_000, label="First polyp")
    b = FindingFactory(session=session, video=second, start_ms=15_000, end_ms=15_000, label="Second polyp")
    c = FindingFactory(session=session, video=second, start_ms=450_000, end_ms=452_000, label="Late ulcer")
    return first, second, (a, b, c)


def plot_geometry() -> tuple[float, float]:
    from portal import views

    return views.PLOT_LEFT, views.PLOT_WIDTH - views.PLOT_LEFT - views.PLOT_RIGHT


def page_of(client, session, **params) -> str:
    response = client.get(reverse("procedures:detail", args=[session.pk]), params)
    assert response.status_code == 200
    return response.content.decode()


def row_of(page: str, finding) -> str:
    start = page.index(f'id="finding-{finding.pk}"')
    return page[start:page.index("</article>", start)]


def section(page: str, element_id: str) -> str:
    start = page.index(f'id="{element_id}"')
    return page[start:page.index("</section>", start)]


def test_the_page_lists_both_recordings_with_a_player_each(owner, session, two_recordings):
    first, second, _ = two_recordings
    page = page_of(owner, session)
    listing = section(page, "recordings")
    assert "Recording 1" in listing and "Recording 2" in listing and "10:00" in listing
    for video in (first, second):
        panel = section(page, f"recording-{video.number}")
        assert f'data-video="{video.pk}"' in panel
        assert f'src="{reverse("procedures:video-file", args=[session.pk, video.pk])}"' in panel
    # One <video> per recording, each with its own id.
    assert len(re.findall(r"<video [^>]*class=\"recording-player\"", page)) == 2


def test_each_findings_time_link_names_its_own_recording(owner, session, two_recordings):
    first, second, (a, b, c) = two_recordings
    page = page_of(owner, session)
    for finding, video in ((a, first), (b, second), (c, second)):
        row = row_of(page, finding)
        link = re.search(r'<a href="#recording-(\d)" class="seek" data-video="([^"]+)" data-ms="(\d+)"', row)
        assert link is not None, row
        assert link.groups() == (str(video.number), str(video.pk), str(finding.start_ms))
        assert f"Recording {video.number}</a>" in row  # named on the row
    # Grouped: recording 1's findings come before recording 2's whatever their times.
    assert page.index(f'id="finding-{a.pk}"') < page.index(f'id="finding-{b.pk}"') < page.index(f'id="finding-{c.pk}"')


def test_the_plot_is_per_recording_on_its_own_time_axis(owner, session, two_recordings):
    first, second, (a, b, c) = two_recordings
    response = owner.get(reverse("procedures:detail", args=[session.pk]))
    recordings = response.context["recordings"]
    assert [r["video"].number for r in recordings] == [1, 2]
    plot1, plot2 = recordings[0]["plot"], recordings[1]["plot"]
    assert [m["id"] for m in plot1["marks"]] == [a.pk]
    assert [m["id"] for m in plot2["marks"]] == [b.pk, c.pk]
    assert plot1["span_ms"] == 60_000 and plot2["span_ms"] == 600_000
    # 30 s of a 60 s recording sits mid-axis; 450 s of 600 s three quarters along.
    left, inner = plot_geometry()
    assert plot1["marks"][0]["x"] == pytest.approx(left + inner * 0.5, abs=0.1)
    assert plot2["marks"][1]["x"] == pytest.approx(left + inner * 0.75, abs=0.1)
    assert plot2["ticks"][-1]["label"] == "10:00"  # m:ss, as the player shows it
    page = response.content.decode()
    plot_markup = page[page.index('id="findings-plot-2"'):page.index("</figure>", page.index('id="findings-plot-2"'))]
    assert f'data-video="{second.pk}" data-ms="450000"' in plot_markup and str(first.pk) not in plot_markup
    assert response.context["plot"] is None  # no finding without a recording


def test_findings_can_be_filtered_by_recording(owner, session, two_recordings):
    _, _, (a, b, c) = two_recordings
    live = FindingFactory(session=session, label="Live one")
    table = section(page_of(owner, session, recording="2"), "findings-panel")
    assert "Second polyp" in table and "Late ulcer" in table and "First polyp" not in table and "Live one" not in table
    table = section(page_of(owner, session, recording="none"), "findings-panel")
    assert f'id="finding-{live.pk}"' in table and "First polyp" not in table


def test_the_upload_panel_shows_until_a_first_recording(owner, session):
    page = page_of(owner, session)
    panel = page[page.index('id="upload-panel"'):page.index("</section>", page.index('id="upload-panel"'))]
    assert "Upload a recording" in panel and 'id="upload-panel" hidden' not in page
    assert 'id="add-recording"' not in page
    for needle in ('id="upload-form"', f'data-url="{reverse("api-procedure-video", args=[session.pk])}"',
                   f'data-tus-url="{reverse("api-procedure-uploads", args=[session.pk])}"', 'data-max-bytes="',
                   'id="upload-file"', 'id="upload-progress"', 'id="upload-message"',
                   '<button type="button" id="upload-pause" hidden>', '<button type="button" id="upload-resume" hidden>'):
        assert needle in panel, needle


def test_another_recording_is_an_explicit_action(owner, session):
    make_video(session, 1)
    page = page_of(owner, session)
    assert 'id="upload-panel" hidden' in page
    button = re.search(r'<button type="button" id="add-recording"[^>]*>', page).group(0)
    assert "disabled" not in button and "Add another recording" in page


def test_adding_is_disabled_with_the_reason_while_one_processes(owner, session):
    make_video(session, 1)
    make_video(session, 2, state="analysing", progress=0.4)
    page = page_of(owner, session)
    button = re.search(r'<button type="button" id="add-recording"[^>]*>', page).group(0)
    assert "disabled" in button
    assert "Recording 2 is still being processed" in page
    panel = section(page, "recording-2")
    assert 'id="processing-progress"' in panel and 'value="0.4"' in panel  # the processing one's own panel
    assert 'id="processing-progress"' not in section(page, "recording-1")


def test_a_watcher_gets_no_upload_panel(qa_user, session, two_recordings):
    client = Client()
    client.force_login(qa_user)
    page = page_of(client, session)
    assert 'id="upload-panel"' not in page and 'id="add-recording"' not in page
    assert 'class="seek" data-video="' in page  # but may still play the recordings


# --- a clinician's finding names its recording --------------------------------------------

NEW = {"category": "diverticulum", "location": "sigmoid_colon", "risk": "low", "start_ms": "0:31"}


def test_the_add_a_finding_link_and_form_default_to_the_recording(owner, session, two_recordings):
    first, second, _ = two_recordings
    page = page_of(owner, session)
    assert f'id="add-finding" href="{reverse("procedures:finding-new", args=[session.pk])}?video={second.pk}"' in page
    form = owner.get(reverse("procedures:finding-new", args=[session.pk]), {"video": first.pk, "ms": "12345"})
    assert form.context["form"]["video"].value() == first.pk
    assert form.context["form"]["start_ms"].value() == "0:12.345"  # the player's time, shown as m:ss
    assert form.context["form"]["end_ms"].value() == "0:12.345"
    assert "Recording 1</option>" in form.content.decode() and "Recording 2</option>" in form.content.decode()
    latest = owner.get(reverse("procedures:finding-new", args=[session.pk]))
    assert latest.context["form"]["video"].value() == second.pk


def test_a_new_finding_goes_into_the_chosen_recording(owner, session, two_recordings):
    first, _, _ = two_recordings
    response = owner.post(reverse("procedures:finding-new", args=[session.pk]), {**NEW, "video": str(first.pk)})
    assert response.status_code == 302
    finding = Finding.objects.get(session=session, origin="clinician")
    assert finding.video == first and finding.start_ms == 31000


def test_a_recording_of_another_session_is_a_form_error(owner, session, clinician, two_recordings):
    elsewhere = make_video(ProcedureSessionFactory(clinician=clinician), 1)
    response = owner.post(reverse("procedures:finding-new", args=[session.pk]), {**NEW, "video": str(elsewhere.pk)})
    assert response.status_code == 200
    assert "That recording is not one of this session&#x27;s recordings." in response.content.decode()
    response = owner.post(reverse("procedures:finding-new", args=[session.pk]), {**NEW, "video": "not-a-uuid"})
    assert response.status_code == 200 and response.context["form"].errors["video"]  # an error, not a 500
    assert not Finding.objects.filter(origin="clinician").exists()


def test_a_recorded_session_with_recordings_needs_one_chosen(owner, session, two_recordings):
    response = owner.post(reverse("procedures:finding-new", args=[session.pk]), NEW)
    assert response.status_code == 200 and "This field is required." in response.content.decode()


def test_a_session_without_recordings_adds_findings_as_before(owner, session):
    assert owner.post(reverse("procedures:finding-new", args=[session.pk]), NEW).status_code == 302
    assert Finding.objects.get(session=session).video is None


def test_editing_does_not_move_a_finding_unless_chosen(owner, session, two_recordings):
    first, second, (a, _, _) = two_recordings
    edit = reverse("procedures:finding-edit", args=[session.pk, a.pk])
    values = {"category": "polyp", "location": "rectum", "risk": "high"}
    # An AI finding stays in its recording: the field is fixed, a posted other one ignored.
    assert owner.post(edit, {**values, "video": str(second.pk)}).status_code == 302
    a.refresh_from_db()
    assert a.video == first and a.location == "rectum"
    # A clinician's finding moves only when another recording is chosen.
    mine = FindingFactory(session=session, origin="clinician", video=first)
    edit = reverse("procedures:finding-edit", args=[session.pk, mine.pk])
    assert owner.post(edit, {**values, "video": str(first.pk)}).status_code == 302
    mine.refresh_from_db()
    assert mine.video == first
    assert owner.post(edit, {**values, "video": str(second.pk)}).status_code == 302
    mine.refresh_from_db()
    assert mine.video == second


def test_editing_a_finding_of_no_recording_does_not_force_one(owner, session, two_recordings):
    old = FindingFactory(session=session, video=None, label="From before")
    edit = reverse("procedures:finding-edit", args=[session.pk, old.pk])
    assert owner.post(edit, {"category": "polyp", "location": "rectum", "risk": "low"}).status_code == 302
    old.refresh_from_db()
    assert old.video is None and old.location == "rectum"


def test_the_page_says_what_became_of_my_unfinished_uploads(owner, session, clinician, qa_user):
    from datetime import timedelta

    from django.utils import timezone

    from analysis.models import ResumableUpload

    make_video(session, 1)
    later = timezone.now() + timedelta(hours=1)
    ResumableUpload.objects.create(session=session, created_by=clinician, length=10, offset=10, state="refused",
                                   filename="<b>export</b>.ts", error_message="The file has no video stream.",
                                   expires_at=later)
    ResumableUpload.objects.create(session=session, created_by=clinician, length=10, offset=10, state="checking",
                                   filename="second.ts", expires_at=later)
    page = page_of(owner, session)
    panel = section(page, "upload-panel")
    assert "hidden" not in panel[:80]  # shown, so the outcome is seen without a click
    assert "was refused: The file has no video stream." in panel
    assert "&lt;b&gt;export&lt;/b&gt;.ts" in panel  # a file name is text, never markup
    assert "second.ts is complete and being checked" in panel
    qa = Client()
    qa.force_login(qa_user)
    assert "was refused" not in page_of(qa, session)  # only the uploader sees their uploads
