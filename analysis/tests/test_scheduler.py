"""The GPU scheduling loop (analysis.scheduler): every live room served in turn, batched
across rooms, live before recorded; claims that a dead worker left are given back; a batch
that raises never stays "being analysed"."""

from __future__ import annotations

import math
import os
from datetime import timedelta

import pytest
from django.utils import timezone

from analysis import claims, live, scheduler, services
from analysis.engine.errors import AnalyzerUnavailable
from analysis.models import AnalysisState, Finding, Frame
from analysis.tests.fakes import FakeAnalyzer, jpeg_bytes
from procedures.models import Video
from procedures.tests.factories import ProcedureSessionFactory

pytestmark = pytest.mark.django_db


class RecordingAnalyzer(FakeAnalyzer):
    """Remembers which frames each model call got (one call = one GPU batch)."""

    def __init__(self, fail_with=None):
        super().__init__()
        self.batches: list[list[str]] = []
        self.fail_with = fail_with

    def analyze(self, frames, procedure_type, kind="frame"):
        if self.fail_with is not None:
            exc, self.fail_with = self.fail_with, None
            raise exc
        self.batches.append([f.frame_id for f in frames])
        return super().analyze(frames, procedure_type, kind)


@pytest.fixture
def analyzer(monkeypatch):
    fake = RecordingAnalyzer()
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: fake)
    return fake


@pytest.fixture(autouse=True)
def _no_queue(monkeypatch, media_root):
    # The loop is driven by hand here; nothing goes to a broker.
    monkeypatch.setattr(live, "_enqueue", lambda session_id: None)
    monkeypatch.setattr(scheduler, "_continue_later", lambda: None)


def stream(session, ts):
    """A frame arriving on a room's socket (latest frame wins)."""
    frame = live.ParsedFrame(timestamp_ms=ts, jpeg=jpeg_bytes(seed=ts % 251), width=64, height=48)
    return live.live_frame_submit(session=session, frame=frame)[0]


def rooms(n, clinician):
    return [ProcedureSessionFactory(clinician=clinician, mode="live", status="live") for _ in range(n)]


def results_per_room(sessions):
    return [Frame.objects.filter(session=s, source="live", analysis_state="done").count() for s in sessions]


def test_every_room_is_served_in_turn_even_one_frame_per_batch(clinician, analyzer, settings):
    settings.ANALYZER_BATCH_SIZE = 1  # the worst case: one frame per model call
    sessions = rooms(3, clinician)
    first_result_batch = {}
    for tick in range(30):  # every room sends a new frame between two batches
        for s in sessions:
            stream(s, tick * 100)
        scheduler.run(max_batches=1)
        for i, s in enumerate(sessions):
            if s.pk not in first_result_batch and results_per_room([s])[0]:
                first_result_batch[s.pk] = tick + 1
    served = results_per_room(sessions)
    assert min(served) >= 9 and min(served) / max(served) >= 0.8, served
    # ceil(N / batch size) = 3 batches at most before each room's first result.
    assert max(first_result_batch.values()) <= math.ceil(3 / 1)
    # Latest frame wins: each room has at most its newest frame waiting (the last batch took one).
    assert Frame.objects.filter(source="live", analysis_state="pending").count() == 2
    assert Frame.objects.filter(source="live", analysis_state="analysing").count() == 0


def test_rooms_share_one_model_call(clinician, analyzer, settings):
    settings.ANALYZER_BATCH_SIZE = 4
    sessions = rooms(3, clinician)
    frames = [stream(s, 1000) for s in sessions]
    assert scheduler.run() == 3
    assert [sorted(b) for b in analyzer.batches] == [sorted(str(f.pk) for f in frames)]  # one GPU batch
    assert all(Finding.objects.filter(session=s).count() == 1 for s in sessions)


def test_a_recording_fills_the_slots_live_rooms_leave_and_never_delays_them(clinician, session, analyzer, settings):
    settings.ANALYZER_BATCH_SIZE = 4
    video = Video.objects.create(session=session, sha256="d" * 64, file="videos/v.bin", state="analysing")
    recorded = [services.frame_create(session=session, source="video", video=video, timestamp_ms=t * 1000,
                                      jpeg=jpeg_bytes(seed=t), width=64, height=48) for t in range(12)]
    sessions = rooms(2, clinician)
    for tick in range(6):
        for s in sessions:
            stream(s, tick * 100)
        scheduler.run(max_batches=1)
        live_done = Frame.objects.filter(source="live", analysis_state="done").count()
        assert live_done == 2 * (tick + 1)  # both rooms in every batch
    done_recorded = Frame.objects.filter(pk__in=[f.pk for f in recorded], analysis_state="done").count()
    assert done_recorded == 6 * 2  # two free slots per batch went to the recording
    video.refresh_from_db()
    assert video.progress_detail["done"] == 12


def test_claims_never_overlap_and_a_dead_workers_claim_is_given_back(clinician, session, analyzer, settings):
    settings.ANALYZER_BATCH_SIZE = 2
    settings.GPU_CLAIM_LEASE_S = 30
    video = Video.objects.create(session=session, sha256="e" * 64, file="videos/w.bin", state="analysing")
    for t in range(4):
        services.frame_create(session=session, source="video", video=video, timestamp_ms=t * 1000,
                              jpeg=jpeg_bytes(seed=t), width=64, height=48)
    first, second = claims.claim_batch(), claims.claim_batch()
    assert len(first) == len(second) == 2 and not set(first) & set(second)
    assert claims.claim_batch() == []
    # The worker holding the first batch dies: nothing happens until its lease ends...
    assert claims.reclaim_stale() == 0
    Frame.objects.filter(pk__in=first).update(claimed_at=timezone.now() - timedelta(seconds=31))
    # ...then the frames wait again and any loop analyses them, once each.
    assert claims.reclaim_stale() == 2
    assert set(claims.claim_batch()) == set(first)
    scheduler.analyse_batch(first)
    scheduler.analyse_batch(first)  # the dead worker's late result (or a redelivery): ignored
    assert sorted(len(b) for b in analyzer.batches) == [2]
    assert Frame.objects.filter(pk__in=first, analysis_state="done").count() == 2


def test_a_stale_live_claim_yields_to_a_newer_frame_of_its_room(clinician, session, analyzer, settings,
                                                                 django_capture_on_commit_callbacks):
    settings.GPU_CLAIM_LEASE_S = 30
    old = stream(session, 1000)
    assert claims.claim_batch() == [old.pk]
    newer = stream(session, 2000)
    Frame.objects.filter(pk=old.pk).update(claimed_at=timezone.now() - timedelta(seconds=60))
    with django_capture_on_commit_callbacks(execute=True):
        claims.reclaim_stale()
    old.refresh_from_db()
    assert old.analysis_state == AnalysisState.SKIPPED and not old.image
    assert scheduler.run() == 1 and Frame.objects.get(pk=newer.pk).analysis_state == AnalysisState.DONE


def test_a_superseded_frame_keeps_its_metadata_not_its_jpeg(session, analyzer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = stream(session, 1000)
        path = first.image.path
        stream(session, 2000)
    first.refresh_from_db()
    assert first.analysis_state == AnalysisState.SKIPPED and "latest frame wins" in first.analysis_error
    assert not first.image and not os.path.exists(path)
    assert first.sha256 and first.timestamp_ms == 1000  # what arrived, and when, is still recorded


def test_an_unexpected_error_fails_that_batch_and_the_loop_goes_on(session, monkeypatch):
    analyzer = RecordingAnalyzer(fail_with=RuntimeError("database is locked"))
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    first = stream(session, 1000)
    original = claims.claim_batch

    def claim_then_a_new_frame_arrives(**kwargs):
        claimed = original(**kwargs)
        if claimed == [first.pk]:
            stream(session, 2000)  # arrives while the first is on the model
        return claimed

    monkeypatch.setattr(claims, "claim_batch", claim_then_a_new_frame_arrives)
    assert scheduler.run() == 2
    failed = Frame.objects.get(pk=first.pk)
    assert failed.analysis_state == AnalysisState.FAILED
    assert "RuntimeError: database is locked" in failed.analysis_error
    assert "later frames are analysed as usual" in failed.analysis_error
    assert Finding.objects.filter(session=session, start_ms=2000).exists()


def test_an_unavailable_analyzer_puts_the_frame_back_for_the_retry(session, monkeypatch):
    analyzer = RecordingAnalyzer(fail_with=AnalyzerUnavailable("the model server at 127.0.0.1:9 refused"))
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    frame = stream(session, 1000)
    with pytest.raises(AnalyzerUnavailable):
        scheduler.run()
    frame.refresh_from_db()
    assert frame.analysis_state == AnalysisState.PENDING and frame.claimed_by == ""
    assert scheduler.run() == 1  # the task's retry finds it waiting
    assert Frame.objects.get(pk=frame.pk).analysis_state == AnalysisState.DONE


def test_a_released_frame_yields_to_a_newer_waiting_one(session, monkeypatch):
    analyzer = RecordingAnalyzer(fail_with=AnalyzerUnavailable("down"))
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    first = stream(session, 1000)
    original = claims.claim_batch

    def claim_then_a_new_frame_arrives(**kwargs):
        claimed = original(**kwargs)
        stream(session, 2000)
        return claimed

    monkeypatch.setattr(claims, "claim_batch", claim_then_a_new_frame_arrives)
    with pytest.raises(AnalyzerUnavailable):
        scheduler.run()
    states = dict(Frame.objects.filter(session=session).values_list("timestamp_ms", "analysis_state"))
    assert states == {1000: AnalysisState.SKIPPED, 2000: AnalysisState.PENDING}
    assert Frame.objects.get(pk=first.pk).analysis_error.startswith("Skipped: a newer frame")


def test_a_session_signed_while_its_frame_is_in_a_batch_gets_no_late_findings(clinician, session, analyzer):
    from procedures import workflow
    from reporting.tests.factories import complete_report

    frame = stream(session, 1000)
    claimed = claims.claim_batch()
    assert claimed == [frame.pk]
    session.refresh_from_db()
    complete_report(session, actor=clinician)  # signing needs a complete structured report
    workflow.session_sign(actor=clinician, session=session)
    scheduler.analyse_batch(claimed)
    assert Finding.objects.filter(session=session).count() == 0
    assert Frame.objects.get(pk=frame.pk).analysis_state == AnalysisState.SKIPPED


def test_a_frame_claimed_while_a_newer_one_arrives_keeps_its_jpeg(session, analyzer,
                                                                 django_capture_on_commit_callbacks):
    # The race the services-profile test found: the submitter lists the waiting frames, a
    # worker claims one of them, then the submitter marks "them" superseded. Only the frames
    # it actually skipped may lose their image; the claimed one is on the model.
    frame = stream(session, 1000)
    assert claims.claim_batch() == [frame.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert claims.supersede(Frame.objects.filter(pk=frame.pk)) == 0
    frame.refresh_from_db()
    assert frame.analysis_state == AnalysisState.ANALYSING and frame.image and os.path.exists(frame.image.path)


def test_one_unreadable_frame_fails_alone_not_its_batch(clinician, analyzer, settings):
    settings.ANALYZER_BATCH_SIZE = 4
    sessions = rooms(3, clinician)
    frames = [stream(s, 1000) for s in sessions]
    frames[1].image.delete(save=False)  # its JPEG is gone (disk trouble, an operator's cleanup)
    assert scheduler.run() == 3
    states = {f.pk: Frame.objects.get(pk=f.pk) for f in frames}
    assert states[frames[1].pk].analysis_state == AnalysisState.FAILED
    assert "image could not be read" in states[frames[1].pk].analysis_error
    assert [states[f.pk].analysis_state for f in (frames[0], frames[2])] == [AnalysisState.DONE] * 2


class StepwiseAnalyzer(RecordingAnalyzer):
    """A step-wise engine stand-in: each row needs ``steps`` decoding steps; ``step()``
    returns the rows that finished, as the fast engine's ContinuousBatcher does."""

    def __init__(self, steps=3, on_step=None):
        super().__init__()
        self.steps, self.on_step = steps, on_step
        self.admitted_at: dict[str, int] = {}  # frame id -> step number when it joined
        self.step_count = 0

    def batcher(self):
        analyzer = self

        class Batcher:
            def __init__(self):
                self.rows = {}  # number -> [item, kind, steps left]

            def submit(self, item, procedure_type, kind):
                number = len(analyzer.admitted_at)
                analyzer.admitted_at[item.frame_id] = analyzer.step_count
                self.rows[number] = [item, procedure_type, kind, analyzer.steps]
                return number

            def step(self):
                analyzer.step_count += 1
                if analyzer.on_step:
                    analyzer.on_step(analyzer.step_count)
                done = {}
                for number, row in list(self.rows.items()):
                    row[3] -= 1
                    if row[3] == 0:
                        item, procedure_type, kind, _ = self.rows.pop(number)
                        done[number] = FakeAnalyzer.analyze(analyzer, [item], procedure_type, kind)[0]
                return done

        return Batcher()


def test_with_a_stepwise_engine_a_new_rooms_frame_joins_between_decoding_steps(clinician, monkeypatch, settings):
    settings.ANALYZER_BATCH_SIZE = 4
    sessions = rooms(2, clinician)
    late = {}

    def second_room_streams_at_step_1(step):
        if step == 1:
            late["frame"] = stream(sessions[1], 1000)  # arrives while the first room's row decodes

    analyzer = StepwiseAnalyzer(steps=3, on_step=second_room_streams_at_step_1)
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    first = stream(sessions[0], 1000)
    assert scheduler.run() == 2
    # The late frame started decoding at the next step (1), not after the first row's 3 steps.
    assert analyzer.admitted_at == {str(first.pk): 0, str(late["frame"].pk): 1}
    assert analyzer.step_count == 4  # 3 steps for the first row, overlapping 3 for the second
    assert all(Finding.objects.filter(session=s).count() == 1 for s in sessions)
    assert Frame.objects.filter(analysis_state=AnalysisState.DONE).count() == 2


def test_the_demo_fast_engine_is_driven_step_wise(clinician, monkeypatch, settings, demo_model_dir):
    # The real fast engine (demo weights, CPU): the loop uses its step-wise batcher, and every
    # room's frame gets a validated result with the engine's provenance.
    from analysis.engine import reset_analyzers

    settings.DEMO_MODEL_DIR = demo_model_dir
    settings.ANALYZER_BACKEND = "demo"
    reset_analyzers()
    used = []
    original = scheduler._loop_stepwise
    monkeypatch.setattr(scheduler, "_loop_stepwise", lambda *a, **k: used.append(True) or original(*a, **k))
    sessions = rooms(3, clinician)
    frames = [stream(s, 1000) for s in sessions]
    assert scheduler.run() == 3
    assert used == [True]
    for frame in frames:
        frame.refresh_from_db()
        assert frame.analysis_state == AnalysisState.DONE and frame.backend == "demo" and frame.is_demo
        assert "fast" in frame.generation_params.get("engine", "")


def test_a_second_loop_in_the_same_process_ends_at_once(session, analyzer):
    # The embedded worker runs two threads; the model (and a step-wise engine's rows) is the
    # process's, so only one loop drives it and the other task leaves the work to it.
    stream(session, 1000)
    with scheduler._one_loop_per_process:
        assert scheduler.run() == 0
    assert analyzer.batches == []
    assert scheduler.run() == 1
