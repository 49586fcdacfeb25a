"""The GPU scheduler with real worker processes (services profile: PostgreSQL, Redis, one or
two ``celery worker -Q gpu -c 1`` processes whose model is a stand-in slower than the frame
interval, testing/standin_worker.py): every room is served from its first frames on, a
recording being analysed does not hold the rooms up, two workers never analyse a frame
twice, and a worker killed mid-batch loses no frame."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.conf import settings
from django.db.models import Max, Min

from analysis import live, services
from analysis.models import AnalysisState, Frame
from analysis.tests.fakes import jpeg_bytes
from procedures.models import Video
from procedures.tests.factories import ProcedureSessionFactory
from testing.servers import standin_worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.skipif(settings.EMBEDDED, reason="services profile only (worker processes need Redis)"),
]

BASE_MS, PER_FRAME_MS = 150, 10  # a batch of 4: 190 ms, slower than a room's 100 ms frame interval
BATCH_S = (BASE_MS + 4 * PER_FRAME_MS) / 1000


def rooms(clinician, n=3):
    return [ProcedureSessionFactory(clinician=clinician, mode="live", status="live") for _ in range(n)]


def recording(clinician, n_frames):
    session = ProcedureSessionFactory(clinician=clinician, mode="recorded", status="processing")
    video = Video.objects.create(session=session, sha256="f" * 64, file="videos/r.bin", state="analysing")
    frames = [services.frame_create(session=session, source="video", video=video, timestamp_ms=t * 1000,
                                    jpeg=jpeg_bytes(seed=t), width=64, height=48) for t in range(n_frames)]
    services.frames_enqueue([f.pk for f in frames])
    return video, frames


def stream(sessions, seconds, interval_s=0.1):
    """Every room sends a frame every ``interval_s`` (latest frame wins), as a capture box would."""
    started = time.monotonic()
    tick = 0
    while time.monotonic() - started < seconds:
        for s in sessions:
            frame = live.ParsedFrame(timestamp_ms=tick * 100, jpeg=jpeg_bytes(seed=tick % 200), width=64, height=48)
            live.live_frame_submit(session=s, frame=frame)
        tick += 1
        time.sleep(max(0.0, started + tick * interval_s - time.monotonic()))


def wait_until_settled(timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not Frame.objects.filter(analysis_state__in=(AnalysisState.PENDING, AnalysisState.ANALYSING)).exists():
            return
        time.sleep(0.2)
    raise AssertionError(f"frames still waiting after {timeout_s} s: "
                         f"{Counter(Frame.objects.values_list('analysis_state', flat=True))}")


def analysed_ids(*logs) -> list[str]:
    return [line for log in logs if log.exists() for line in log.read_text().split()]


def assert_every_room_served(sessions):
    served = []
    for s in sessions:
        first = Frame.objects.filter(session=s).aggregate(t=Min("created_at"))["t"]
        done = Frame.objects.filter(session=s, analysis_state=AnalysisState.DONE)
        first_result = done.aggregate(t=Min("analysed_at"))["t"]
        assert first_result is not None, f"room {s.pk} got no result"
        # ~2 batch times after its first frame (plus slack for a busy test machine), where the
        # old per-room loop kept a third room waiting until the others stopped streaming.
        assert (first_result - first).total_seconds() <= 2 * BATCH_S + 1.0
        served.append(done.count())
    assert min(served) >= max(served) / 2, served
    return served


def test_one_gpu_worker_serves_three_rooms_while_a_recording_is_analysed(clinician, media_root, tmp_path):
    with standin_worker(tmp_path, "gpu1", base_ms=BASE_MS, per_frame_ms=PER_FRAME_MS) as (proc, log):
        video, recorded = recording(clinician, n_frames=16)
        sessions = rooms(clinician)
        stream(sessions, seconds=4)
        wait_until_settled()
        assert proc.poll() is None, "the worker died"
    served = assert_every_room_served(sessions)
    assert min(served) >= 4  # results keep coming: at least one per room per second of streaming
    # The recording was analysed meanwhile, and the rooms were not held up by it: no room
    # went longer than a few batches without a result while the recording ran.
    states = list(Frame.objects.filter(video=video).values_list("analysis_state", "analysis_error"))
    assert [state for state, _ in states].count(AnalysisState.DONE) == 16, states
    for s in sessions:
        times = list(Frame.objects.filter(session=s, analysis_state=AnalysisState.DONE)
                     .order_by("analysed_at").values_list("analysed_at", flat=True))
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
        assert max(gaps) <= 3 * BATCH_S + 1.0, gaps
    ids = analysed_ids(log)
    assert len(ids) == len(set(ids))


def test_two_gpu_workers_share_the_work_and_never_analyse_a_frame_twice(clinician, media_root, tmp_path):
    with standin_worker(tmp_path, "gpu1", base_ms=BASE_MS, per_frame_ms=PER_FRAME_MS) as (one, log1), \
            standin_worker(tmp_path, "gpu2", base_ms=BASE_MS, per_frame_ms=PER_FRAME_MS) as (two, log2):
        video, recorded = recording(clinician, n_frames=24)
        sessions = rooms(clinician)
        stream(sessions, seconds=3)
        wait_until_settled()
        assert one.poll() is None and two.poll() is None, "a worker died"
    assert_every_room_served(sessions)
    ids = analysed_ids(log1, log2)
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert duplicates == []
    done = set(map(str, Frame.objects.filter(analysis_state=AnalysisState.DONE).values_list("pk", flat=True)))
    assert set(ids) == done  # every recorded result was analysed exactly once


def test_a_worker_killed_mid_batch_loses_no_frame_and_a_new_worker_resumes(clinician, media_root, tmp_path):
    # A slow first worker (a batch takes 3 s), killed with SIGKILL while it holds a batch.
    with standin_worker(tmp_path, "doomed", base_ms=3000, per_frame_ms=0, pool="solo") as (doomed, doomed_log):
        video, recorded = recording(clinician, n_frames=8)
        deadline = time.monotonic() + 30
        while not Frame.objects.filter(analysis_state=AnalysisState.ANALYSING).exists():
            assert time.monotonic() < deadline, "the first worker never claimed a batch"
            time.sleep(0.1)
        doomed.kill()
        doomed.wait(10)
    held = set(map(str, Frame.objects.filter(analysis_state=AnalysisState.ANALYSING).values_list("pk", flat=True)))
    assert held
    killed_at = time.monotonic()
    # A new worker, with a short lease: the dead worker's batch comes back after it, not
    # after the broker's visibility timeout (an hour).
    with standin_worker(tmp_path, "rescuer", base_ms=50, per_frame_ms=5, GPU_CLAIM_LEASE_S="5") as (rescuer, log):
        wait_until_settled(timeout_s=60)
        assert rescuer.poll() is None
    assert time.monotonic() - killed_at < 45
    assert Frame.objects.filter(video=video, analysis_state=AnalysisState.DONE).count() == 8
    ids = analysed_ids(doomed_log, log)
    assert len(ids) == len(set(ids)) == 8 and held <= set(ids)
    last = Frame.objects.filter(video=video).aggregate(t=Max("analysed_at"))["t"]
    assert last is not None
    video.refresh_from_db()
    assert video.progress_detail["done"] == 8
