"""The live-frames WebSocket: who may connect and send, frame validation, rate limit,
latest-frame-wins scheduling, and sign-off."""

from __future__ import annotations

import asyncio
import struct
import time

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from rest_framework.authtoken.models import Token

from analysis.models import AnalysisState, Frame
from analysis.tests.fakes import FakeAnalyzer, jpeg_bytes
from medvision.routing import websocket_urlpatterns
from medvision.ws_auth import WebSocketAuthStack
from testing.servers import refusal_or_first_event

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT = 5


def frame_message(ts_ms: int, jpeg: bytes | None = None) -> bytes:
    return struct.pack(">Q", ts_ms) + (jpeg if jpeg is not None else jpeg_bytes(seed=ts_ms))


@pytest.fixture(autouse=True)
def _media(media_root):
    return media_root


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr("analysis.live._enqueue", lambda session_id: calls.append(str(session_id)))
    return calls


async def connect(user, session):
    token = await database_sync_to_async(lambda: Token.objects.get_or_create(user=user)[0].key)()
    app = WebSocketAuthStack(URLRouter(websocket_urlpatterns))
    comm = WebsocketCommunicator(app, f"/ws/procedures/{session.pk}/live/",
                                 headers=[(b"authorization", f"Token {token}".encode())])
    connected, code = await comm.connect(timeout=TIMEOUT)
    assert connected, "a refusal is sent as a close code after accepting, not as a refused handshake"
    refused, hello = await refusal_or_first_event(comm, TIMEOUT)
    if refused is not None:
        return None, refused
    snapshot = await comm.receive_json_from(TIMEOUT)
    assert hello["type"] == "hello" and snapshot["type"] == "snapshot"
    return comm, hello


async def next_of(comm, kind):
    while True:
        message = await comm.receive_json_from(TIMEOUT)
        if message["type"] == kind:
            return message


async def test_owner_streams_and_the_session_goes_live(clinician, session, queued):
    comm, hello = await connect(clinician, session)
    assert hello["can_send_frames"] is True
    assert "NOT FOR CLINICAL USE" in hello["notice"] and "Health AI Developer Foundations" in hello["notice"]
    await comm.send_to(bytes_data=frame_message(1500))
    status = await next_of(comm, "status")
    assert status["received"] == 1 and status["dropped"] == 0
    frame = await database_sync_to_async(Frame.objects.get)(pk=status["accepted"])
    assert frame.timestamp_ms == 1500 and frame.source == "live" and frame.analysis_state == AnalysisState.PENDING
    await database_sync_to_async(session.refresh_from_db)()
    assert session.status == "live" and session.started_at is not None
    assert queued == [str(session.pk)]
    await comm.disconnect()


async def test_anonymous_and_another_clinician_are_refused(other_clinician, session):
    app = WebSocketAuthStack(URLRouter(websocket_urlpatterns))
    anon = WebsocketCommunicator(app, f"/ws/procedures/{session.pk}/live/")
    assert await anon.connect(TIMEOUT) == (True, None)
    assert (await refusal_or_first_event(anon, TIMEOUT)) == (4401, None)
    comm, code = await connect(other_clinician, session)
    assert comm is None and code == 4404


async def test_qa_may_watch_but_not_send(qa_user, session, queued):
    comm, hello = await connect(qa_user, session)
    assert hello["can_send_frames"] is False
    await comm.send_to(bytes_data=frame_message(0))
    error = await next_of(comm, "error")
    assert error["code"] == "read_only"
    assert await database_sync_to_async(Frame.objects.count)() == 0
    await comm.disconnect()


@pytest.mark.parametrize(
    "payload, code",
    [
        (b"\x00\x01", "malformed"),
        (struct.pack(">Q", 0) + b"this is not a jpeg", "bad_image"),
        (struct.pack(">Q", 0) + b"\x89PNG\r\n\x1a\n" + b"0" * 100, "bad_image"),
        (struct.pack(">Q", 2**63), "bad_timestamp"),
        (frame_message(0, jpeg_bytes(width=8, height=8)), "bad_dimensions"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(clinician, session, queued, payload, code):
    comm, _ = await connect(clinician, session)
    if code == "bad_timestamp":
        payload = payload + jpeg_bytes()
    await comm.send_to(bytes_data=payload)
    error = await next_of(comm, "error")
    assert error["code"] == code and error["message"]
    await comm.send_to(text_data='{"type": "ping"}')
    assert (await next_of(comm, "pong"))["type"] == "pong"  # still open
    assert await database_sync_to_async(Frame.objects.count)() == 0
    await comm.disconnect()


async def test_oversized_frames_are_refused(clinician, session, queued, settings):
    settings.LIVE_FRAME_MAX_BYTES = 2000
    comm, _ = await connect(clinician, session)
    await comm.send_to(bytes_data=frame_message(0, jpeg_bytes(width=400, height=300)))
    error = await next_of(comm, "error")
    assert error["code"] == "too_large" and "2000" in error["message"]
    await comm.disconnect()


async def test_bad_json_and_unknown_messages_are_answered(clinician, session):
    comm, _ = await connect(clinician, session)
    await comm.send_to(text_data="{nope")
    assert (await next_of(comm, "error"))["code"] == "bad_json"
    await comm.send_to(text_data='{"type": "delete_everything"}')
    assert (await next_of(comm, "error"))["code"] == "unsupported"
    await comm.disconnect()


async def test_rate_limit_per_session_shared_by_its_sockets(clinician, session, queued, settings, monkeypatch):
    settings.LIVE_MAX_FPS = 2
    clock = [1_800_000_000.2]  # wall-clock seconds, frozen: the window is the same for all 5 frames
    monkeypatch.setattr("analysis.consumers._wall_clock", lambda: clock[0])
    first, _ = await connect(clinician, session)
    second, _ = await connect(clinician, session)  # another tab: same session, same budget

    async def send(comm, ts):
        await comm.send_to(bytes_data=frame_message(ts))
        while True:  # skip the other tab's broadcasts (frame / finding events)
            message = await comm.receive_json_from(TIMEOUT)
            if message["type"] == "error":
                return message["code"]
            if message["type"] == "status" and "accepted" in message:
                return "status"

    outcomes = [await send(first, 0), await send(second, 10), await send(first, 20), await send(second, 30)]
    assert outcomes == ["status", "status", "rate_limited", "rate_limited"]
    clock[0] += 1.0  # the next second: a fresh allowance
    assert await send(second, 40) == "status"
    for comm in (first, second):
        await comm.disconnect()


async def test_latest_frame_wins_while_the_model_is_busy(clinician, session, queued):
    comm, _ = await connect(clinician, session)
    statuses = []
    for i in range(5):
        await comm.send_to(bytes_data=frame_message(i * 200))
        statuses.append(await next_of(comm, "status"))
    # Only the newest frame waits; each newer one replaced the waiting one.
    assert [s["dropped"] for s in statuses] == [0, 1, 2, 3, 4]
    states = await database_sync_to_async(
        lambda: dict(Frame.objects.values_list("timestamp_ms", "analysis_state")))()
    assert states == {0: "skipped", 200: "skipped", 400: "skipped", 600: "skipped", 800: "pending"}
    assert queued == [str(session.pk)]  # one task; it will pick the newest frame
    await comm.disconnect()


async def test_slow_model_analyses_fresh_frames_not_a_backlog(clinician, session, monkeypatch):
    """Real scheduling through the GPU loop: frames arrive while the model works."""
    from analysis import live, scheduler

    class SlowAnalyzer(FakeAnalyzer):
        def analyze(self, frames, procedure_type, kind="frame"):
            time.sleep(0.3)
            return super().analyze(frames, procedure_type, kind)

    analyzer = SlowAnalyzer()
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    import queue
    import threading

    tasks: queue.Queue = queue.Queue()

    def gpu_worker():  # one worker slot, like `celery worker -Q gpu -c 1`
        while tasks.get() is not None:
            scheduler.run()

    worker = threading.Thread(target=gpu_worker)
    worker.start()
    monkeypatch.setattr(live, "_enqueue", tasks.put)

    comm, _ = await connect(clinician, session)
    for i in range(12):  # 12 frames over ~1.2 s against a model taking 0.3 s each
        await comm.send_to(bytes_data=frame_message(i * 100))
        await next_of(comm, "status")
        await asyncio.sleep(0.1)
    tasks.put(None)
    await asyncio.get_running_loop().run_in_executor(None, worker.join, 20)
    analysed = await database_sync_to_async(
        lambda: sorted(Frame.objects.filter(analysis_state="done").values_list("timestamp_ms", flat=True)))()
    assert 2 <= len(analysed) <= 6  # far fewer than 12: no backlog
    assert analysed[-1] == 1100  # the last frame sent was analysed: results stay fresh
    pending = await database_sync_to_async(Frame.objects.filter(analysis_state__in=["pending", "analysing"]).count)()
    assert pending == 0
    await comm.disconnect()


async def test_frames_after_sign_off_are_refused(clinician, session, queued):
    from procedures import workflow
    from reporting.tests.factories import complete_report

    comm, _ = await connect(clinician, session)
    await database_sync_to_async(complete_report)(session, actor=clinician)  # signing needs a complete report
    key_frames = await database_sync_to_async(Frame.objects.count)()  # the report's landmark pictures
    await database_sync_to_async(workflow.session_sign)(actor=clinician, session=session)
    await comm.send_to(bytes_data=frame_message(0))
    error = await next_of(comm, "error")
    assert error["code"] == "read_only" and "signed" in error["message"]
    assert await database_sync_to_async(Frame.objects.count)() == key_frames
    await comm.disconnect()
    comm, hello = await connect(clinician, session)
    assert hello["can_send_frames"] is False
    await comm.disconnect()


async def test_results_reach_every_open_page(clinician, qa_user, session, monkeypatch):
    from analysis import scheduler, services

    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: FakeAnalyzer())
    monkeypatch.setattr("analysis.live._enqueue", lambda sid: None)
    owner, _ = await connect(clinician, session)
    watcher, _ = await connect(qa_user, session)
    await owner.send_to(bytes_data=frame_message(4200))
    await next_of(owner, "status")
    await sync_to_async(scheduler.run)()
    for page in (owner, watcher):
        finding = (await next_of(page, "finding"))["finding"]
        assert finding["start_ms"] == 4200 and finding["category"] == "polyp" and finding["is_demo"] is True
        assert finding["review_status"] == "proposed" and finding["provenance"]["model_id"] == "fake-analyzer"
    # A page that reconnects catches up from the snapshot.
    late, _ = await connect(qa_user, session)
    await late.send_to(text_data='{"type": "sync"}')
    snapshot = await next_of(late, "snapshot")
    assert [f["start_ms"] for f in snapshot["findings"]] == [4200]
    for page in (owner, watcher, late):
        await page.disconnect()
    assert services  # imported for the monkeypatch target's module to be loaded


class ClarifyingAnalyzer(FakeAnalyzer):
    """Answers every "look again" question the same way (for the clarify plumbing tests)."""

    def clarify(self, frame, procedure_type, question):
        from analysis.engine import ClarifyResult, clarify_model
        from analysis.tests.fakes import PROVENANCE

        answer = clarify_model(procedure_type).model_validate({
            "answer": "Regular margin.", "confidence": 0.5, "relevant_category": "polyp",
            "relevant_location": "sigmoid_colon", "image_adequacy": "adequate"})
        return ClarifyResult(frame_id=frame.frame_id, timestamp_ms=frame.timestamp_ms, question=question, ok=True,
                             answer=answer, error=None, raw_output=answer.model_dump_json(), provenance=PROVENANCE)


async def test_deeply_nested_json_control_messages_are_bad_json_and_the_socket_stays(clinician, session, queued):
    comm, _ = await connect(clinician, session)
    await comm.send_to(text_data="[" * 100_000)
    error = await next_of(comm, "error")
    assert error["code"] == "bad_json"
    await comm.send_to(text_data='{"type": "ping"}')
    assert (await next_of(comm, "pong"))["type"] == "pong"
    await comm.disconnect()


@pytest.fixture
def signed_with_a_rejected_proposal(session, clinician):
    from analysis.models import ReviewStatus
    from analysis.tests.factories import FindingFactory

    kept = FindingFactory(session=session, review_status=ReviewStatus.CONFIRMED, reviewed_by=clinician)
    rejected = FindingFactory(session=session, review_status=ReviewStatus.REJECTED, reviewed_by=clinician)
    from django.utils import timezone

    session.status = "signed"
    session.signed_by = clinician
    session.signed_at = timezone.now()
    session.save()
    return kept, rejected


async def test_a_connector_sees_the_signed_report_on_the_socket_as_in_the_api(connector, session,
                                                                             signed_with_a_rejected_proposal):
    from channels.layers import get_channel_layer

    from analysis.serializers import finding_event, frame_event
    from analysis.tests.factories import FindingFactory, FrameFactory
    from medvision.broadcast import session_group

    kept, rejected = signed_with_a_rejected_proposal
    comm, hello = await connect(connector, session)
    assert hello["can_send_frames"] is False
    await comm.send_to(text_data='{"type": "sync"}')
    snapshot = await next_of(comm, "snapshot")
    assert [f["id"] for f in snapshot["findings"]] == [str(kept.pk)]
    # Events fanned out to every page of the session: the connector gets the report's only.
    proposal = await database_sync_to_async(lambda: finding_event(FindingFactory(session=session)))()
    frame = await database_sync_to_async(lambda: frame_event(FrameFactory(session=session)))()
    layer = get_channel_layer()
    for event in ({"type": "frame", "frame": frame}, {"type": "finding", "finding": proposal},
                  {"type": "finding", "finding": {**proposal, "review_status": "confirmed"}}):
        await layer.group_send(session_group(session.pk), {"type": "session.event", "event": event})
    received = await next_of(comm, "finding")
    assert received["finding"]["review_status"] == "confirmed"
    assert await comm.receive_nothing(0.3)
    await comm.disconnect()


async def test_a_live_frame_is_recorded_with_the_streaming_clinician_as_actor(clinician, session, queued):
    from auditlog.models import LogEntry

    comm, _ = await connect(clinician, session)
    await comm.send_to(bytes_data=frame_message(100))
    status = await next_of(comm, "status")
    await comm.disconnect()
    frame = await database_sync_to_async(Frame.objects.get)(pk=status["accepted"])
    entry = await database_sync_to_async(
        lambda: LogEntry.objects.get_for_object(frame).filter(action=LogEntry.Action.CREATE).get())()
    assert entry.actor_id == clinician.pk


def test_daphne_is_started_with_websocket_limits_that_fit_a_live_frame(settings):
    from medvision.serve import daphne_arguments

    args = daphne_arguments(["-b", "0.0.0.0", "-p", "8000"])
    size = int(args[args.index("--websocket-max-message-size") + 1])
    assert size > settings.LIVE_FRAME_MAX_BYTES + 8
    assert args[-1] == "medvision.asgi:application"
    assert daphne_arguments(["--websocket-max-message-size", "5", "app:x"]).count("--websocket-max-message-size") == 1


async def test_a_room_that_disconnects_stops_being_scheduled(clinician, session, queued):
    comm, _ = await connect(clinician, session)
    await comm.send_to(bytes_data=frame_message(1000))
    await next_of(comm, "status")
    await comm.disconnect()
    frame = await database_sync_to_async(Frame.objects.get)(session=session)
    assert frame.analysis_state == "skipped" and "stream stopped" in frame.analysis_error
    assert not frame.image  # nobody will analyse it: metadata only


async def test_a_watcher_leaving_does_not_stop_the_stream(clinician, qa_user, session, queued):
    owner, _ = await connect(clinician, session)
    watcher, _ = await connect(qa_user, session)
    await owner.send_to(bytes_data=frame_message(1000))
    await next_of(owner, "status")
    await watcher.disconnect()
    frame = await database_sync_to_async(Frame.objects.get)(session=session)
    assert frame.analysis_state == "pending"
    await owner.disconnect()
