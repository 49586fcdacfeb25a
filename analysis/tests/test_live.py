"""The live GPU loop never leaves a frame "being analysed" when its analysis raises."""

import pytest

from analysis import live, services
from analysis.engine.errors import AnalyzerUnavailable
from analysis.models import AnalysisState, Finding, Frame
from analysis.tests.fakes import FakeAnalyzer, jpeg_bytes

pytestmark = pytest.mark.django_db


def live_frame(session, ts):
    return services.frame_create(session=session, source="live", timestamp_ms=ts, jpeg=jpeg_bytes(seed=ts),
                                 width=64, height=48)


class FailsOnce(FakeAnalyzer):
    def __init__(self, exc):
        super().__init__()
        self.exc = exc

    def analyze(self, frames, procedure_type, kind="frame"):
        if self.exc is not None:
            exc, self.exc = self.exc, None
            raise exc
        return super().analyze(frames, procedure_type, kind)


def states(session):
    return dict(Frame.objects.filter(session=session).values_list("timestamp_ms", "analysis_state"))


def test_an_unexpected_error_fails_that_frame_and_the_loop_goes_on(session, monkeypatch, media_root):
    analyzer = FailsOnce(RuntimeError("database is locked"))
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    first = live_frame(session, 1000)
    original_claim = live._claim_newest

    def claim_then_a_new_frame_arrives(session_id):
        frame = original_claim(session_id)
        if frame is not None and frame.pk == first.pk:
            live_frame(session, 2000)  # arrives while the first is on the model
        return frame

    monkeypatch.setattr(live, "_claim_newest", claim_then_a_new_frame_arrives)
    assert live.live_analyze_pending(session_id=session.pk) == 2
    assert states(session) == {1000: AnalysisState.FAILED, 2000: AnalysisState.DONE}
    failed = Frame.objects.get(session=session, timestamp_ms=1000)
    assert "RuntimeError: database is locked" in failed.analysis_error
    assert "later frames are analysed as usual" in failed.analysis_error
    assert Finding.objects.filter(session=session, start_ms=2000).exists()


def test_an_unavailable_analyzer_puts_the_frame_back_for_the_retry(session, monkeypatch, media_root):
    analyzer = FailsOnce(AnalyzerUnavailable("the model server at 127.0.0.1:9 refused the connection"))
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    live_frame(session, 1000)
    with pytest.raises(AnalyzerUnavailable):
        live.live_analyze_pending(session_id=session.pk)
    assert states(session) == {1000: AnalysisState.PENDING}
    # The task's retry finds it waiting and analyses it.
    assert live.live_analyze_pending(session_id=session.pk) == 1
    assert states(session) == {1000: AnalysisState.DONE}


def test_a_released_frame_yields_to_a_newer_waiting_one(session, monkeypatch, media_root):
    analyzer = FailsOnce(AnalyzerUnavailable("down"))
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    live_frame(session, 1000)
    original_claim = live._claim_newest

    def claim_then_a_new_frame_arrives(session_id):
        frame = original_claim(session_id)
        live_frame(session, 2000)
        return frame

    monkeypatch.setattr(live, "_claim_newest", claim_then_a_new_frame_arrives)
    with pytest.raises(AnalyzerUnavailable):
        live.live_analyze_pending(session_id=session.pk)
    assert states(session) == {1000: AnalysisState.SKIPPED, 2000: AnalysisState.PENDING}
