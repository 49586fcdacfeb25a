"""The recorded-video pipeline with a scripted analyzer: true timestamps, merged findings,
progress events, a summary, and resumption without duplicates."""

from __future__ import annotations

import numpy as np
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from analysis import pipeline, services
from analysis.engine import AnalysisResult, frame_model
from analysis.models import AnalysisState, Finding, Frame
from analysis.tests.fakes import PROVENANCE
from medvision.broadcast import session_group
from medvision.celery import app as celery_app
from procedures.models import SessionStatus, Video, VideoState
from testing import videos as tv

pytestmark = pytest.mark.django_db(transaction=True)

# 0-2 s red, 2-4 s blue, 4-6 s red: the scripted analyzer "sees" a polyp on red frames.
SEGMENTS = (("0xe04040", 2.0), ("0x4080e0", 2.0), ("0xe04040", 2.0))


class ColourAnalyzer:
    """Reports a polyp in the sigmoid on predominantly red frames, nothing otherwise."""

    provenance_base = PROVENANCE

    def __init__(self):
        self.analysed_timestamps: list[int] = []

    def analyze(self, frames, procedure_type, kind="frame"):
        model = frame_model(procedure_type)
        results = []
        for f in frames:
            self.analysed_timestamps.append(f.timestamp_ms)
            rgb = np.asarray(f.image, dtype=float).reshape(-1, 3).mean(axis=0)
            red = rgb[0] > rgb[2] + 50
            analysis = model.model_validate({
                "image_adequacy": "adequate", "no_finding": not red,
                "findings": [{"category": "polyp", "location": "sigmoid_colon", "risk": "high" if f.timestamp_ms > 4000 else "medium",
                              "confidence": 0.9, "size_mm": 8, "label": "Polyp", "description": "Red lesion.",
                              "suggested_next_step": "Resect."}] if red else [],
            })
            results.append(AnalysisResult(frame_id=f.frame_id, timestamp_ms=f.timestamp_ms, ok=True, analysis=analysis,
                                          error=None, raw_output=analysis.model_dump_json(), provenance=PROVENANCE))
        return results

    def close(self):
        pass


@pytest.fixture
def colour_analyzer(monkeypatch):
    analyzer = ColourAnalyzer()
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    return analyzer


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def uniform_video(tmp_path_factory):
    # Solid colours are "blurry" for a Laplacian and near-duplicates by design; the
    # timestamps and merging are what this test is about, so the gate is relaxed below.
    path = tmp_path_factory.mktemp("pipeline") / "colours.mp4"
    return tv.make_scene_change_video(path, segments=SEGMENTS, size=(160, 120))


@pytest.fixture
def video(session, uniform_video, media_root, settings):
    from django.core.files import File

    settings.QUALITY_MIN_BLUR_SCORE = 0
    settings.DEDUP_WINDOW = 0  # off
    settings.SAMPLING_SCENE_THRESHOLD = 0
    video = Video(session=session, sha256="b" * 64, duration_s=6.0)
    with open(uniform_video, "rb") as fh:
        video.file.save("v.bin", File(fh), save=True)
    session.status = SessionStatus.PROCESSING
    session.save()
    return video


def listen(session_id):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(session_group(session_id), channel)

    def drain():
        import asyncio

        async def collect():
            out = []
            while True:
                try:
                    out.append((await asyncio.wait_for(layer.receive(channel), 0.5))["event"])
                except asyncio.TimeoutError:
                    return out

        return async_to_sync(collect)()

    return drain


def test_a_recording_becomes_a_merged_timeline_with_true_timestamps(video, colour_analyzer, eager_celery):
    drain = listen(video.session_id)
    from analysis.tasks import process_video

    process_video.delay(str(video.pk))

    video.refresh_from_db()
    assert video.state == VideoState.DONE, video.error_message
    frames = list(Frame.objects.filter(video=video).order_by("timestamp_ms"))
    assert [f.timestamp_ms for f in frames] == [0, 1000, 2000, 3000, 4000, 5000]
    assert all(f.analysis_state == AnalysisState.DONE for f in frames)

    findings = list(Finding.objects.filter(session=video.session).order_by("start_ms"))
    assert [(f.start_ms, f.end_ms) for f in findings] == [(0, 1000), (4000, 5000)]
    assert [f.risk for f in findings] == ["medium", "high"]
    assert all(f.review_status == "proposed" and f.model_id == "fake-analyzer" for f in findings)
    assert findings[1].frame.timestamp_ms in (4000, 5000)

    summary = video.summary
    assert summary["findings"] == 2
    assert summary["by_risk"] == {"high": 1, "medium": 1, "low": 0}
    assert summary["by_category"] == {"polyp": 2}
    assert summary["top_findings"][0]["risk"] == "high"
    assert summary["frames"]["sampled"] == 6 and summary["frames"]["analysed"] == 6
    video.session.refresh_from_db()
    assert video.session.status == SessionStatus.REVIEW

    events = drain()
    stages = [e["stage"] for e in events if e["type"] == "progress"]
    assert stages[0] == "sampling" and "analysing" in stages and "summarising" in stages and stages[-1] == "done"
    assert any(e["type"] == "summary" for e in events)
    assert {e["finding"]["id"] for e in events if e["type"] == "finding"} == {str(f.pk) for f in findings}


def test_a_killed_worker_resumes_without_redoing_or_duplicating(video, colour_analyzer, monkeypatch, eager_celery,
                                                                settings):
    settings.ANALYZER_BATCH_SIZE = 1  # each kept frame goes to the analyzer at once
    real_create = services.frame_create
    calls = {"n": 0}

    def dies_on_the_fourth_frame(**kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise SystemExit("worker killed")  # not an Exception: no handler runs, like SIGKILL
        return real_create(**kwargs)

    monkeypatch.setattr(services, "frame_create", dies_on_the_fourth_frame)
    with pytest.raises(SystemExit):
        pipeline.video_sample(video.pk)
    assert Frame.objects.filter(video=video).count() == 3
    assert sorted(colour_analyzer.analysed_timestamps) == [0, 1000, 2000]

    monkeypatch.setattr(services, "frame_create", real_create)
    pipeline.video_sample(video.pk)  # the redelivered task

    video.refresh_from_db()
    assert video.state == VideoState.DONE
    assert Frame.objects.filter(video=video).count() == 6
    assert sorted(colour_analyzer.analysed_timestamps) == [0, 1000, 2000, 3000, 4000, 5000]  # each frame once
    assert Finding.objects.filter(session=video.session).count() == 2

    pipeline.video_sample(video.pk)  # and once more after completion: a no-op
    assert Finding.objects.filter(session=video.session).count() == 2


def test_a_video_that_breaks_while_decoding_fails_with_the_reason(video, colour_analyzer, eager_celery):
    with open(video.file.path, "r+b") as fh:  # damage the file after it was accepted
        fh.truncate(100)
    from analysis.tasks import process_video

    process_video.delay(str(video.pk))
    video.refresh_from_db()
    assert video.state == VideoState.FAILED
    assert video.error_message
    video.session.refresh_from_db()
    assert video.session.status == SessionStatus.FAILED


def test_quality_gate_and_dedup_counts_are_stored(video, colour_analyzer, eager_celery, settings):
    settings.DEDUP_MAX_DISTANCE = 6
    settings.DEDUP_WINDOW = 8
    from analysis.tasks import process_video

    process_video.delay(str(video.pk))
    video.refresh_from_db()
    counts = video.gate_counts
    assert counts["sampled"] == 6
    assert counts["duplicate"] >= 3  # the same solid colours come back
    assert counts["sampled"] == counts["kept"] + counts["blurry"] + counts["too_dark"] + counts["blown_out"] + counts["duplicate"]
    assert Frame.objects.filter(video=video).count() == counts["kept"]


# --- issue #11: costly uploads -----------------------------------------------------------


def test_scene_frames_beyond_the_per_minute_cap_are_dropped():
    from types import SimpleNamespace

    from analysis.media.sampler import capped_per_minute

    frames = [SimpleNamespace(timestamp_ms=i * 100, reason="interval" if i % 10 == 0 else "scene")
              for i in range(100)]  # 10 s: 10 interval frames and 90 scene changes
    counter: dict = {}
    kept = list(capped_per_minute(frames, 20, counter))
    # The first 20 frames fill the minute; after that only the 8 remaining interval frames.
    assert len(kept) == 28 and counter["capped"] == 72
    # Interval frames are never dropped, whatever the scene changes did before them.
    assert {f.timestamp_ms for f in frames if f.reason == "interval"} <= {f.timestamp_ms for f in kept}


def test_a_clip_cut_for_scene_changes_is_capped_per_minute(video, colour_analyzer, eager_celery, settings):
    settings.SAMPLING_INTERVAL_S = 10  # one grid frame (at 0 s) ...
    settings.SAMPLING_SCENE_THRESHOLD = 0.05  # ... and scene changes at the colour cuts (2 s, 4 s: 0.07)
    settings.SAMPLING_MAX_FRAMES_PER_MINUTE = 1  # the grid frame fills the minute
    from analysis.tasks import process_video

    process_video.delay(str(video.pk))
    video.refresh_from_db()
    assert video.state == VideoState.DONE, video.error_message
    assert video.gate_counts["capped"] == 2
    assert list(Frame.objects.filter(video=video).values_list("timestamp_ms", flat=True)) == [0]


def test_sampling_that_outruns_its_time_budget_fails_with_a_reason(video, colour_analyzer, eager_celery, settings):
    settings.VIDEO_SAMPLING_BUDGET_S = 0.001
    from analysis.tasks import process_video

    process_video.delay(str(video.pk))
    video.refresh_from_db()
    assert video.state == VideoState.FAILED
    assert "took longer than its" in video.error_message and "Re-export it" in video.error_message
