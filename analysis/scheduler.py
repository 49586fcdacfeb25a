"""The GPU worker's scheduling loop: every live room served, batched across sessions, live
frames before recorded ones.

Each batch (at most ``ANALYZER_BATCH_SIZE`` frames) takes, in this order:

1. the newest waiting frame of **every** live session that has one, the rooms served least
   recently first (round robin). Latest frame wins: older waiting frames of a room are
   skipped as superseded and their JPEG is deleted (metadata only is kept);
2. recorded-video frames, oldest recording first, into the slots that are left.

So with N rooms streaming and a batch of B frames, every room gets a result for a frame at
most about one batch old every ``ceil(N / B)`` batches, whatever the other rooms or the
recordings do, and a live frame never waits behind more than the batch already on the GPU.
Voice ``look_again`` questions are their own Celery tasks on the ``gpu`` queue: the loop
hands the worker back after ``GPU_SCHEDULER_SLICE_S`` (re-queueing itself behind them) so
they are answered between batches.

Claims (which worker holds which frame, and giving back a dead worker's) are
``analysis.claims``; recording a result stays idempotent (services). With a step-wise
engine the loop admits frames between decoding steps; our database work for a batch runs
in a thread while the model works on the next.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from . import claims, dispatch, services, wakeup
from .engine.errors import AnalyzerUnavailable
from .models import AnalysisState, Frame

logger = logging.getLogger(__name__)


def _infer(frame_ids):
    """The model's part of a batch. Returns the results to record, or None when the batch
    was recorded as failed. Never leaves it "being analysed": given back if the analyzer
    is unavailable (the task retries), else recorded as failed with the reason (a live
    stream must not stall on one bad batch)."""
    try:
        return services.frames_infer(frame_ids=frame_ids, states=(AnalysisState.ANALYSING,))
    except AnalyzerUnavailable:
        claims.give_back(frame_ids)
        raise
    except Exception as exc:  # noqa: BLE001 - recorded on the frames and logged; the loop goes on
        logger.exception("A batch of %d frame(s) could not be analysed", len(frame_ids))
        claims.fail(frame_ids, exc)
        return None


def _record(frame_ids, inferred) -> dict:
    """The database's part of a batch: results written, recordings moved on."""
    from . import pipeline

    counts = None
    if inferred is not None:
        try:
            counts = services.frames_record(inferred)  # names the recordings it touched
        except Exception as exc:  # noqa: BLE001 - the frames not yet recorded are marked failed
            logger.exception("The results of a batch of %d frame(s) could not be recorded", len(frame_ids))
            claims.fail(frame_ids, exc)
    if counts is None:  # failed as a batch: its recordings still move on (their frames are decided)
        counts = {"analysed": 0, "failed": len(frame_ids), "skipped": 0, "video_ids": sorted(
            {str(v) for v in Frame.objects.filter(pk__in=list(frame_ids), video__isnull=False)
             .values_list("video_id", flat=True)})}
    for video_id in counts["video_ids"]:
        pipeline.video_check_complete(video_id)
    return counts


def analyse_batch(frame_ids) -> dict:
    """Analyse claimed frames, record the results and move their recordings on."""
    return _record(frame_ids, _infer(frame_ids))


class _Recorder:
    """Records batch k in a thread while the model runs batch k+1: our database work per
    frame (results, findings, events) overlaps the GPU's instead of adding to it. One batch
    at a time and in order, so a room's findings still follow its frames."""

    def __init__(self):
        self._thread: threading.Thread | None = None

    def submit(self, frame_ids, inferred) -> None:
        self.wait()
        if connection.in_atomic_block:
            # The caller holds a transaction (a test, a caller's atomic block): another
            # connection could not see its rows, so record here, in order.
            _record(frame_ids, inferred)
            return
        self._thread = threading.Thread(target=self._run, args=(frame_ids, inferred), name="gpu-recorder",
                                        daemon=True)
        self._thread.start()

    @staticmethod
    def _run(frame_ids, inferred) -> None:
        try:
            _record(frame_ids, inferred)
        finally:
            connection.close()  # this thread's connection goes back (to the pool)

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None


RECLAIM_EVERY_S = 1.0
_one_loop_per_process = threading.Lock()
ALIVE_KEY = "gpu-scheduler:alive:"  # + worker name: a loop is running there
ALIVE_REFRESH_S = 1.0


def _mark_alive(worker: str) -> None:
    # Lives as long as a claim (a loop that dies stops marking; its key expires with its claims).
    cache.set(ALIVE_KEY + worker, time.time(), timeout=settings.GPU_CLAIM_LEASE_S)


def loop_running() -> bool:
    """Whether some worker's loop is running (so a new frame needs no task of its own)."""
    return bool(cache.get(ALIVE_KEY + "any"))


def _set_running(worker: str, running: bool) -> None:
    if running:
        _mark_alive(worker)
        cache.set(ALIVE_KEY + "any", worker, timeout=settings.GPU_CLAIM_LEASE_S)
    else:
        cache.delete(ALIVE_KEY + worker)
        if cache.get(ALIVE_KEY + "any") == worker:
            cache.delete(ALIVE_KEY + "any")


def run(*, prefer=(), slice_s: float | None = None, linger_s: float = 0.0, max_batches: int | None = None,
        idle_poll_s: float = 0.1) -> int:
    """The loop one GPU worker task runs: claim a batch, analyse it, repeat until nothing
    waits. Returns the number of frames analysed.

    ``linger_s``: when nothing waits, keep watching this long for the next frame (a room
    streaming at 3 fps sends one every 333 ms) instead of ending, so a new frame is claimed
    as soon as its commit wakes the loop (analysis.wakeup; at worst after ``idle_poll_s``),
    rather than after a trip through the broker and a new task.
    After ``slice_s`` seconds with work waiting (or claimed by other workers) it queues
    itself again and returns, so other tasks on the ``gpu`` queue (voice questions) run
    between batches. While other workers hold claims it keeps polling: a claim may be a
    dead worker's, given back once its lease ends, so a recording or room resumes without
    waiting for the broker's redelivery.
    """
    slice_s = settings.GPU_SCHEDULER_SLICE_S if slice_s is None else slice_s
    # One loop per process: the model (and a step-wise engine's rows) is the process's, and
    # one loop serves every room and recording. A second task in the same process (the
    # embedded worker runs two threads) ends at once; the running loop has its work.
    if not _one_loop_per_process.acquire(blocking=False):
        return 0
    worker = claims.worker_name()
    recorder = _Recorder()
    try:
        # (Only when there is work: a loop that starts idle does not load the model for nothing.)
        if claims.waiting():
            _announce_model_loading()
        batcher = _stepwise_batcher() if max_batches is None and claims.waiting() else None
        _set_running(worker, True)
        try:
            if batcher is not None:
                # The engine's rows are ours for the slice: a voice question in another
                # thread of this process waits for it (at most a slice), never shares rows.
                with batcher.exclusive:
                    analysed = _loop_stepwise(worker, batcher.batcher, recorder, prefer, slice_s, linger_s,
                                              idle_poll_s)
            else:
                analysed = _loop(worker, recorder, prefer, slice_s, linger_s, max_batches, idle_poll_s)
        finally:
            recorder.wait()
            _set_running(worker, False)
    finally:
        _one_loop_per_process.release()
    # A frame that arrived while the loop was ending saw it running and queued nothing:
    # look once more now that the mark is gone (a frame committed after this sees no mark
    # and queues a task itself).
    if linger_s and claims.waiting():
        _continue_later()
    return analysed


class _Pacing:
    """The timing rules both loops share: housekeeping every so often (give back dead
    workers' claims, keep the "a loop runs" mark fresh), the slice, and what an idle loop
    does (linger, hand over, or end)."""

    def __init__(self, worker: str, slice_s: float, linger_s: float, idle_poll_s: float):
        self.worker, self.slice_s, self.linger_s, self.idle_poll_s = worker, slice_s, linger_s, idle_poll_s
        self.started = self.idle_since = self.last_mark = time.monotonic()
        self.next_reclaim = 0.0

    def housekeeping(self) -> None:
        now = time.monotonic()
        if now >= self.next_reclaim:
            claims.reclaim_stale()
            self.next_reclaim = now + RECLAIM_EVERY_S
        if now - self.last_mark >= ALIVE_REFRESH_S:
            _set_running(self.worker, True)
            self.last_mark = now

    def worked(self) -> bool:
        """Note that work was done; True once the slice is used up."""
        self.idle_since = time.monotonic()
        return self.idle_since - self.started > self.slice_s

    def idle_ends_loop(self) -> bool:
        """Nothing to claim now: True to end the loop (queueing a successor where work may
        come), else wait for a wake-up."""
        busy_elsewhere = claims.in_flight()
        if not busy_elsewhere and time.monotonic() - self.idle_since >= self.linger_s:
            return True
        if time.monotonic() - self.started > self.slice_s:
            # Still lingering (a room streamed moments ago) or others hold claims: a new
            # task takes over behind the queue's other tasks, and lingers in its turn.
            _continue_later()
            return True
        wakeup.wait(self.idle_poll_s)
        return False


def _loop(worker, recorder, prefer, slice_s, linger_s, max_batches, idle_poll_s) -> int:
    pacing = _Pacing(worker, slice_s, linger_s, idle_poll_s)
    analysed = batches = 0
    while max_batches is None or batches < max_batches:
        pacing.housekeeping()
        frame_ids = claims.claim_batch(prefer=prefer) if claims.waiting() else []
        if frame_ids:
            inferred = _infer(frame_ids)
            recorder.submit(frame_ids, inferred)
            analysed += len(frame_ids)
            batches += 1
            if pacing.worked():
                _continue_later()  # rooms are streaming: the loop goes on in a new task
                break
            continue
        if pacing.idle_ends_loop():
            break
    return analysed


def _continue_later() -> None:
    """Queue the loop again, behind whatever else the gpu queue holds. (Not when tasks run
    eagerly, in tests: there it would recurse instead of queueing.)"""
    from medvision.celery import app

    if not app.conf.task_always_eager:
        dispatch.send(dispatch.SCHEDULE)


def _announce_model_loading() -> None:
    """The first batch of a worker process loads the weights first: the recordings waiting
    say "loading the model" meanwhile (a remote model server has nothing to load here)."""
    from . import analyzer as analyzer_module
    from .pipeline import videos_announce_model_loading

    if settings.ANALYZER_BACKEND == "openai_compatible" or analyzer_module.analyzer_loaded():
        return
    try:
        videos_announce_model_loading()
    except Exception:  # noqa: BLE001 - a progress line must never stop the analysis
        logger.exception("Could not announce that the model is loading")


def _stepwise_batcher():
    """The analyzer's step-wise batcher, when it has one (the fast engine): new frames then
    join the rows being decoded between two decoding steps instead of waiting for the whole
    batch. None for analyzers that answer a batch per call (reference, remote, stand-ins)."""
    from . import analyzer as analyzer_module

    if not settings.GPU_SCHEDULER_STEPWISE:
        return None
    analyzer = analyzer_module.configured_analyzer()
    make = getattr(analyzer, "batcher", None)
    if not callable(make):
        return None
    return _Stepwise(batcher=make(), exclusive=getattr(analyzer, "exclusive", None) or contextlib.nullcontext())


@dataclass
class _Stepwise:
    batcher: object
    exclusive: object  # held while the loop drives the batcher


def _admit(batcher, frame_ids, rows: dict, recorder) -> None:
    from . import analyzer as analyzer_module

    analyzer = analyzer_module.configured_analyzer()
    frames = list(Frame.objects.filter(pk__in=list(frame_ids), analysis_state=AnalysisState.ANALYSING)
                  .select_related("session"))
    inputs, unreadable = services.frame_inputs(analyzer, frames)
    by_id = {str(f.pk): f for f in frames}
    if unreadable:
        failed = [by_id[r.frame_id] for r in unreadable]
        recorder.submit([f.pk for f in failed], services.Inferred(frames=failed, results=unreadable, skipped=0))
    for item in inputs:
        frame = by_id[item.frame_id]
        try:
            number = batcher.submit(item, frame.session.procedure_type, services.answer_kind(frame.source))
        except Exception as exc:  # noqa: BLE001 - a frame the engine refuses fails alone
            logger.exception("Frame %s could not be admitted to the model", frame.pk)
            claims.fail([frame.pk], exc)
            continue
        rows[number] = frame


def _loop_stepwise(worker, batcher, recorder, prefer, slice_s, linger_s, idle_poll_s) -> int:
    """``_loop`` for a step-wise engine: before every decoding step, claim frames for the
    free rows (live rooms first, as for a batch), so a live frame starts decoding at the
    next step rather than after the rows in flight finish; each finished row is recorded
    at once. At the end of its slice the loop admits nothing more, finishes its rows, then
    hands over like ``_loop``."""
    size = settings.ANALYZER_BATCH_SIZE
    rows: dict = {}
    pacing = _Pacing(worker, slice_s, linger_s, idle_poll_s)
    analysed = 0
    stopping = False
    while True:
        pacing.housekeeping()
        if not stopping and len(rows) < size and claims.waiting():
            frame_ids = claims.claim_batch(size=size - len(rows), prefer=prefer)
            if frame_ids:
                _admit(batcher, frame_ids, rows, recorder)
        if rows:
            try:
                finished = batcher.step()
            except AnalyzerUnavailable:
                claims.give_back([f.pk for f in rows.values()])
                raise
            except Exception as exc:  # noqa: BLE001 - recorded on the frames; the loop goes on
                logger.exception("A decoding step failed for %d frame(s)", len(rows))
                claims.fail([f.pk for f in rows.values()], exc)
                rows.clear()
                continue
            for number, result in finished.items():
                frame = rows.pop(number, None)
                if frame is None:
                    continue
                recorder.submit([frame.pk], services.Inferred(frames=[frame], results=[result], skipped=0))
                analysed += 1
            if pacing.worked():
                stopping = True  # admit no more; finish the rows in flight, then hand over
            continue
        if stopping:
            _continue_later()
            break
        if pacing.idle_ends_loop():
            break
    return analysed
