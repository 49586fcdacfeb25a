"""End to end on the real demo model: frames in, validated findings with provenance out,
broadcast received, through a real Celery worker.

- embedded profile: the in-process worker thread on kombu's in-memory broker;
- services profile: a separate ``celery -A medvision worker -Q gpu`` process on Redis,
  started exactly as the README tells an operator to.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction

from analysis import services
from analysis.models import AnalysisState, Finding, Frame
from analysis.tests.fakes import jpeg_bytes
from medvision.broadcast import session_group

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WAIT_S = 240


def wait_for_frames(frame_ids, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = list(Frame.objects.filter(pk__in=frame_ids).values_list("analysis_state", flat=True))
        if all(s not in (AnalysisState.PENDING, AnalysisState.ANALYSING) for s in states):
            return
        time.sleep(0.5)
    raise AssertionError(f"frames not analysed within {timeout} s: {states}")


def listen(session_id):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(session_group(session_id), channel)
    return layer, channel


def drain(layer, channel, count, timeout=10):
    async def collect():
        import asyncio

        events = []
        try:
            while len(events) < count:
                message = await asyncio.wait_for(layer.receive(channel), timeout)
                events.append(message["event"])
        except asyncio.TimeoutError:
            pass
        return events

    return async_to_sync(collect)()


def submit_frames(session, n=2):
    """Live frames one after the other, each once the previous is analysed (sent together,
    the newer would supersede the older: latest frame wins)."""
    ids = []
    for i in range(n):
        with transaction.atomic():
            frame = services.frame_create(session=session, source="live", timestamp_ms=1000 * i,
                                          jpeg=jpeg_bytes(seed=i), width=64, height=48)
            services.frames_enqueue([frame.pk])
        ids.append(frame.pk)
        if i < n - 1:
            wait_for_frames([frame.pk])
    return ids


def assert_recorded_with_provenance(session, frame_ids):
    frames = Frame.objects.filter(pk__in=frame_ids)
    assert all(f.analysis_state == AnalysisState.DONE for f in frames), [f.analysis_error for f in frames]
    for frame in frames:
        assert frame.backend == "demo" and frame.is_demo
        assert "NOT a medical model" in frame.model_id
        assert frame.model_revision.startswith("sha256:")
        assert frame.prompt_version and frame.latency_ms is not None
        assert frame.generation_params["do_sample"] is False
        assert frame.analysis["image_adequacy"]
    for finding in Finding.objects.filter(session=session):
        assert finding.review_status == "proposed" and finding.is_demo
        assert finding.model_id == frames[0].model_id and finding.raw_output


@pytest.mark.skipif(not settings.EMBEDDED, reason="embedded profile only (the services run uses a worker process)")
def test_frames_flow_through_the_in_process_worker(session, demo_model_dir, media_root, settings):
    from medvision.embedded_worker import start_embedded_worker, stop_embedded_worker

    settings.DEMO_MODEL_DIR = demo_model_dir
    start_embedded_worker()
    try:
        layer, channel = listen(session.pk)
        frame_ids = submit_frames(session)
        wait_for_frames(frame_ids)
        assert_recorded_with_provenance(session, frame_ids)
        events = drain(layer, channel, count=2 + Finding.objects.filter(session=session).count())
        frame_events = [e for e in events if e["type"] == "frame"]
        assert {e["frame"]["id"] for e in frame_events} == {str(i) for i in frame_ids}
        finding_events = {e["finding"]["id"] for e in events if e["type"] == "finding"}
        assert finding_events == {str(i) for i in Finding.objects.filter(session=session).values_list("pk", flat=True)}
    finally:
        stop_embedded_worker()


@pytest.fixture
def worker_process(demo_model_dir, media_root, tmp_path):
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        DEMO_MODEL_DIR=demo_model_dir,
        MEDIA_ROOT=str(media_root),
        CELERY_EMBEDDED_WORKER="false",
    )
    log = open(tmp_path / "worker.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "medvision", "worker", "-Q", "gpu,celery", "-c", "1",
         "--prefetch-multiplier", "1", "-n", f"test-{os.getpid()}@%h", "--without-mingle", "--without-gossip",
         "-l", "INFO"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.seek(0)
    print(log.read()[-4000:])


@pytest.mark.services
@pytest.mark.skipif(settings.EMBEDDED, reason="services profile only (needs Redis as the broker)")
def test_frames_flow_through_a_worker_process(session, worker_process):
    from analysis.tasks import analyze_frames

    layer, channel = listen(session.pk)
    frame_ids = submit_frames(session)
    wait_for_frames(frame_ids)
    assert worker_process.poll() is None, "the worker died"
    assert_recorded_with_provenance(session, frame_ids)
    findings_before = Finding.objects.filter(session=session).count()
    events = drain(layer, channel, count=2 + findings_before)
    assert {e["frame"]["id"] for e in events if e["type"] == "frame"} == {str(i) for i in frame_ids}

    # Redelivery: the same message again must not add a single finding.
    analyze_frames.delay([str(i) for i in frame_ids])
    analyze_frames.delay([str(i) for i in frame_ids])
    # One worker slot, FIFO: once a frame sent afterwards is done, the repeats ran too.
    sentinel = submit_frames(session, n=1)
    wait_for_frames(sentinel)
    assert Finding.objects.filter(session=session, frame__in=frame_ids).count() == findings_before


def upload_and_wait(session, tmp_path, clinician):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse
    from rest_framework.test import APIClient

    from procedures.models import Video
    from testing import videos as tv

    path = tv.make_test_video(tmp_path / "procedure.mp4", seconds=3, size=(320, 240), pattern="testsrc")
    client = APIClient()
    client.force_authenticate(clinician)
    response = client.post(reverse("api-procedure-video", args=[session.pk]),
                           {"file": SimpleUploadedFile("procedure.mp4", path.read_bytes())}, format="multipart")
    assert response.status_code == 202, response.content
    video_id = response.json()["id"]
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        video = Video.objects.get(pk=video_id)
        if video.state in ("done", "failed"):
            return video
        time.sleep(0.5)
    raise AssertionError(f"video still {video.state} after {WAIT_S} s")


def assert_video_outcome(video, events):
    assert video.state == "done", video.error_message
    frames = list(video.frames.order_by("timestamp_ms"))
    # testsrc at 1 frame/s: samples at true media times 0, 1000, 2000 ms (scene cuts may add more).
    assert {0, 1000, 2000} <= {f.timestamp_ms for f in frames}
    assert all(f.analysis_state in ("done", "failed") and f.model_id for f in frames)
    timestamps = {f.timestamp_ms for f in frames}
    for finding in video.session.findings.all():
        assert finding.start_ms in timestamps and finding.end_ms in timestamps and finding.is_demo
    assert video.summary["frames"]["sampled"] >= 3
    assert video.summary["findings"] == video.session.findings.count()
    stages = [e["stage"] for e in events if e["type"] == "progress"]
    assert "sampling" in stages and "analysing" in stages and stages[-1] == "done"
    assert any(e["type"] == "summary" for e in events)
    video.session.refresh_from_db()
    assert video.session.status == "review"


@pytest.mark.skipif(not settings.EMBEDDED, reason="embedded profile only")
def test_a_recording_flows_through_the_in_process_worker(session, clinician, demo_model_dir, media_root, settings,
                                                         tmp_path):
    from medvision.embedded_worker import start_embedded_worker, stop_embedded_worker

    settings.DEMO_MODEL_DIR = demo_model_dir
    start_embedded_worker()
    try:
        layer, channel = listen(session.pk)
        video = upload_and_wait(session, tmp_path, clinician)
        assert_video_outcome(video, drain(layer, channel, count=1000, timeout=2))
    finally:
        stop_embedded_worker()


@pytest.mark.services
@pytest.mark.skipif(settings.EMBEDDED, reason="services profile only (needs Redis as the broker)")
def test_a_recording_flows_through_a_worker_process(session, clinician, worker_process, tmp_path):
    layer, channel = listen(session.pk)
    video = upload_and_wait(session, tmp_path, clinician)
    assert_video_outcome(video, drain(layer, channel, count=1000, timeout=2))
