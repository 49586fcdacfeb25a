"""Celery tasks of the analysis app. Thin: they take ids and call services.

``analyze_*`` tasks route to the ``gpu`` queue (settings.CELERY_TASK_ROUTES): the GPU worker
runs ``celery -A medvision worker -Q gpu -c 1 --prefetch-multiplier 1`` and keeps the model
loaded between tasks. ``acks_late``: a worker that dies mid-batch leaves the message to be
redelivered, and the services skip the frames already recorded.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .engine.errors import AnalyzerUnavailable

# The three analyze_* tasks run the same scheduling loop (analysis.scheduler): live frames of
# every room first, then recorded frames, until nothing waits. They differ only in what
# queued them; a recording's chunk is preferred among the recorded frames.
_GPU_RETRY = dict(acks_late=True, reject_on_worker_lost=True, autoretry_for=(AnalyzerUnavailable,),
                  retry_backoff=5, retry_backoff_max=120, max_retries=5)


@shared_task(name="analysis.tasks.analyze_frames", **_GPU_RETRY)
def analyze_frames(frame_ids: list[str]) -> int:
    """GPU queue: a recording's chunk of frames was sampled."""
    from . import scheduler

    return scheduler.run(prefer=frame_ids, linger_s=settings.GPU_SCHEDULER_LINGER_S)


@shared_task(name="analysis.tasks.analyze_waiting", **_GPU_RETRY)
def analyze_waiting() -> int:
    """GPU queue: run the loop (a worker started, or a loop handed its worker back)."""
    from . import scheduler

    return scheduler.run(linger_s=settings.GPU_SCHEDULER_LINGER_S)


@shared_task(name="analysis.tasks.process_video", acks_late=True, reject_on_worker_lost=True)
def process_video(video_id: str) -> None:
    """CPU queue: sample, gate and queue a recording's frames (resumable, see pipeline)."""
    from procedures import workflow

    from . import pipeline

    try:
        pipeline.video_sample(video_id)
    except Exception as exc:
        # Never leave a session stuck in "processing": say what broke, then re-raise so
        # the failure is visible in the worker's log and monitoring.
        workflow.video_fail(video_id, f"Processing failed unexpectedly ({type(exc).__name__}: {exc}).")
        raise


@shared_task(name="analysis.tasks.summarise_video", acks_late=True, reject_on_worker_lost=True)
def summarise_video(video_id: str) -> None:
    from . import pipeline

    pipeline.video_summarise(video_id)


@shared_task(name="analysis.tasks.analyze_live", **_GPU_RETRY)
def analyze_live(session_id: str) -> int:
    """GPU queue: a live room has a frame waiting (every room's are served, not only this one's)."""
    from . import scheduler

    return scheduler.run(linger_s=settings.GPU_SCHEDULER_LINGER_S)


@shared_task(name="analysis.tasks.analyze_clarify", acks_late=True, reject_on_worker_lost=True)
def analyze_clarify(frame_id: str, procedure_type: str, question: str, reply_channel: str, request_id: str) -> None:
    """GPU queue: answer a question about one frame and reply to the asking consumer."""
    from medvision.broadcast import send_to_channel

    from .clarify import frame_clarify
    from .models import Frame

    try:
        result = frame_clarify(frame=Frame.objects.get(pk=frame_id), procedure_type=procedure_type, question=question)
    except Exception as exc:  # the asker must hear about it rather than wait for its timeout
        result = {"ok": False, "error": f"The image model could not answer: {exc}"[:300]}
        send_to_channel(reply_channel, {"type": "clarify.result", "request_id": request_id, "result": result})
        raise
    send_to_channel(reply_channel, {"type": "clarify.result", "request_id": request_id, "result": result})


@shared_task(name="analysis.tasks.finish_upload", bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=None)
def finish_upload(self, upload_id: str) -> None:
    """CPU queue: a resumable upload's last byte arrived: hash, probe and store it as a
    recording (or refuse it). While the session processes another recording, try again
    every UPLOAD_BUSY_RETRY_S until the upload would expire."""
    from . import uploads

    try:
        uploads.upload_finish(upload_id)
    except uploads.SessionBusy:
        raise self.retry(countdown=settings.UPLOAD_BUSY_RETRY_S) from None


@shared_task(name="analysis.tasks.make_playback_copy", acks_late=True, reject_on_worker_lost=True)
def make_playback_copy(video_id: str) -> None:
    """CPU queue: the browser-playable H.264 MP4 copy of a recording (analysis.playback). A
    failure marks the copy failed, never the recording."""
    from . import playback

    try:
        playback.make_copy(video_id)
    except Exception as exc:
        playback.fail(video_id, f"unexpected error ({type(exc).__name__}: {exc})")
        raise
