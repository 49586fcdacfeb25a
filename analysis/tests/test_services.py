"""Recording analyzer results: provenance on everything, failures kept with their raw
text, and nothing duplicated when the same work is done twice."""

import pytest

from analysis import services
from analysis.models import AnalysisState, Finding, FindingOrigin, ReviewStatus
from analysis.tests.fakes import FakeAnalyzer, jpeg_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_analyzer(monkeypatch):
    analyzer = FakeAnalyzer()
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    return analyzer


def make_frame(session, ts=1000, seed=0):
    return services.frame_create(session=session, source="live", timestamp_ms=ts, jpeg=jpeg_bytes(seed=seed),
                                 width=64, height=48)


def test_results_become_proposed_findings_with_provenance(session, fake_analyzer):
    frame = make_frame(session)
    counts = services.frames_analyze(frame_ids=[frame.pk])
    assert counts == {"analysed": 1, "failed": 0, "skipped": 0, "video_ids": []}
    frame.refresh_from_db()
    assert frame.analysis_state == AnalysisState.DONE
    assert frame.model_id == "fake-analyzer" and frame.prompt_version == "frame-v1" and frame.latency_ms == 5
    finding = Finding.objects.get(session=session)
    assert finding.review_status == ReviewStatus.PROPOSED
    assert finding.origin == FindingOrigin.AI
    assert (finding.start_ms, finding.end_ms, finding.category, finding.location) == (1000, 1000, "polyp", "sigmoid_colon")
    assert finding.backend == "fake" and finding.is_demo and finding.raw_output.startswith("{")
    assert finding.frame == frame


def test_live_frames_get_the_compact_live_answer(session, fake_analyzer):
    frame = make_frame(session)
    services.frames_analyze(frame_ids=[frame.pk])
    assert fake_analyzer.kinds == ["live"]
    finding = Finding.objects.get(session=session)
    # confidence 80 (percent) becomes 0.8; a live answer has no prose.
    assert (finding.confidence, finding.size_mm, finding.label) == (0.8, 6.0, "Polyp")
    assert finding.description == "" and finding.suggested_next_step == ""
    frame.refresh_from_db()
    assert frame.analysis["findings"][0]["confidence"] == 80


def test_recorded_frames_get_the_full_answer(session, fake_analyzer, monkeypatch):
    from procedures.models import Video

    video = Video.objects.create(session=session, sha256="b" * 64, file="videos/y.bin", state="analysing")
    frame = services.frame_create(session=session, source="video", video=video, timestamp_ms=0,
                                  jpeg=jpeg_bytes(seed=3), width=64, height=48)
    counts = services.frames_analyze(frame_ids=[frame.pk])
    assert fake_analyzer.kinds == ["frame"]
    # The service names the recording; moving it on is the task's job (analysis.tasks).
    assert counts["video_ids"] == [str(video.pk)]
    video.refresh_from_db()
    assert video.state == "analysing"
    frame.refresh_from_db()
    assert frame.analysis["findings"][0]["description"] == "Sessile lesion."


def test_analysing_the_same_frames_twice_adds_nothing(session, fake_analyzer):
    frames = [make_frame(session, ts=t, seed=t) for t in (0, 1000, 2000)]
    ids = [f.pk for f in frames]
    services.frames_analyze(frame_ids=ids)
    again = services.frames_analyze(frame_ids=ids)  # a redelivered task
    assert again == {"analysed": 0, "failed": 0, "skipped": 3, "video_ids": []}
    # The same polyp in three consecutive live frames is one finding spanning them.
    assert list(Finding.objects.filter(session=session).values_list("start_ms", "end_ms")) == [(0, 2000)]
    assert fake_analyzer.calls == [3]  # one batched call, none for the redelivery


def test_recording_the_same_result_twice_cannot_duplicate_findings(session, fake_analyzer):
    frame = make_frame(session)
    result = fake_analyzer.analyze([type("F", (), {"frame_id": str(frame.pk), "timestamp_ms": 1000})()], "colonoscopy")[0]
    services.frame_record_result(frame_id=frame.pk, result=result)
    # Simulate a crash after the findings were written but before the frame was marked.
    type(frame).objects.filter(pk=frame.pk).update(analysis_state=AnalysisState.PENDING)
    services.frame_record_result(frame_id=frame.pk, result=result)
    assert Finding.objects.filter(session=session).count() == 1


def test_an_invalid_output_is_a_failed_analysis_never_a_finding(session, monkeypatch):
    analyzer = FakeAnalyzer(ok=False, error="The model's output is not valid JSON for the schema.")
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    frame = make_frame(session)
    services.frames_analyze(frame_ids=[frame.pk])
    frame.refresh_from_db()
    assert frame.analysis_state == AnalysisState.FAILED
    assert "not valid JSON" in frame.analysis_error
    assert frame.raw_output == "{not json"
    assert not Finding.objects.exists()


def test_a_frame_too_big_for_the_gpu_fails_cleanly(session, monkeypatch):
    from analysis.engine import OutOfMemory

    class OomAnalyzer(FakeAnalyzer):
        def analyze(self, frames, procedure_type, kind="frame"):
            raise OutOfMemory("1 frame needs 90 GiB")

    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: OomAnalyzer())
    frame = make_frame(session)
    services.frames_analyze(frame_ids=[frame.pk])
    frame.refresh_from_db()
    assert frame.analysis_state == AnalysisState.FAILED
    assert "ran out of memory" in frame.analysis_error


def test_frames_are_queued_only_after_commit_in_batches(session, monkeypatch, settings, django_capture_on_commit_callbacks):
    settings.ANALYZER_BATCH_SIZE = 2
    sent = []
    monkeypatch.setattr("analysis.tasks.analyze_frames.delay", lambda ids: sent.append(ids))
    with django_capture_on_commit_callbacks(execute=True):
        frames = [make_frame(session, ts=t, seed=t) for t in range(0, 5000, 1000)]
        services.frames_enqueue([f.pk for f in frames])
        assert sent == []  # nothing leaves before the frames are committed
    assert [len(b) for b in sent] == [2, 2, 1]
    assert sent[0] == [str(frames[0].pk), str(frames[1].pk)]


def test_video_frames_are_identified_by_media_time(session):
    from procedures.models import Video

    video = Video.objects.create(session=session, sha256="a" * 64, file="videos/x.bin")
    first = services.frame_create(session=session, source="video", timestamp_ms=2000, jpeg=jpeg_bytes(), width=64,
                                  height=48, video=video)
    second = services.frame_create(session=session, source="video", timestamp_ms=2000, jpeg=jpeg_bytes(seed=1),
                                   width=64, height=48, video=video)
    assert first.pk == second.pk


def test_a_live_finding_seen_again_extends_instead_of_repeating(session, monkeypatch):
    from analysis.tests.fakes import polyp_analysis

    analyzer = FakeAnalyzer()
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    for ts in (0, 1000):
        services.frames_analyze(frame_ids=[make_frame(session, ts=ts, seed=ts).pk])
    analyzer.analysis = polyp_analysis(location="rectum")  # somewhere else: a new finding
    services.frames_analyze(frame_ids=[make_frame(session, ts=2000, seed=2).pk])
    analyzer.analysis = polyp_analysis(risk="high")  # back in the sigmoid, after a frame without it
    services.frames_analyze(frame_ids=[make_frame(session, ts=3000, seed=3).pk])
    rows = list(Finding.objects.filter(session=session).order_by("start_ms", "location")
                .values_list("start_ms", "end_ms", "location", "risk"))
    assert rows == [(0, 1000, "sigmoid_colon", "medium"), (2000, 2000, "rectum", "medium"),
                    (3000, 3000, "sigmoid_colon", "high")]


def test_a_confirmed_finding_is_not_extended(session, monkeypatch, clinician):
    analyzer = FakeAnalyzer()
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    services.frames_analyze(frame_ids=[make_frame(session, ts=0).pk])
    first = Finding.objects.get(session=session)
    services.finding_review(actor=clinician, finding=first, status="confirmed")
    services.frames_analyze(frame_ids=[make_frame(session, ts=1000, seed=1).pk])
    first.refresh_from_db()
    assert (first.start_ms, first.end_ms) == (0, 0)  # a clinician's decision is not moved under them
    assert Finding.objects.filter(session=session).count() == 2


@pytest.mark.django_db(transaction=True)
def test_look_again_runs_as_a_gpu_task_and_replies_to_the_asker(session, media_root, monkeypatch):
    """analyze_clarify answers on the gpu queue and sends the answer to the consumer's channel."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from analysis.tasks import analyze_clarify
    from analysis.tests.test_live_consumer import ClarifyingAnalyzer

    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: ClarifyingAnalyzer())
    frame = make_frame(session, ts=65_000)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    assert analyze_clarify.app.amqp.router.route({}, analyze_clarify.name)["queue"].name == "gpu"
    analyze_clarify(str(frame.pk), "colonoscopy", "Is the margin regular?", channel, "req-1")
    message = async_to_sync(layer.receive)(channel)
    assert message["type"] == "clarify.result" and message["request_id"] == "req-1"
    assert message["result"]["ok"] is True and message["result"]["frame_time"] == "01:05"
    assert message["result"]["answer"] == "Regular margin." and message["result"]["question"] == "Is the margin regular?"
