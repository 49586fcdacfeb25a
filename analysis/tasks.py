"""Celery tasks of the analysis app. Thin: they take ids and call services.

``analyze_*`` tasks route to the ``gpu`` queue (settings.CELERY_TASK_ROUTES): the GPU worker
runs ``celery -A medvision worker -Q gpu -c 1 --prefetch-multiplier 1`` and keeps the model
loaded between tasks. ``acks_late``: a worker that dies mid-batch leaves the message to be
redelivered, and the services skip the frames already recorded.
"""

from __future__ import annotations

from celery import shared_task

from .engine.errors import AnalyzerUnavailable


@shared_task(
    name="analysis.tasks.analyze_frames",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(AnalyzerUnavailable,),
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=5,
)
def analyze_frames(frame_ids: list[str]) -> dict:
    from . import pipeline, services

    counts = services.frames_analyze(frame_ids=frame_ids)
    for video_id in counts["video_ids"]:
        pipeline.video_check_complete(video_id)
    return counts


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


@shared_task(name="analysis.tasks.analyze_live", acks_late=True, reject_on_worker_lost=True,
             autoretry_for=(AnalyzerUnavailable,), retry_backoff=2, max_retries=3)
def analyze_live(session_id: str) -> int:
    """GPU queue: analyse a live session's newest waiting frame, and the next, until none waits."""
    from .live import live_analyze_pending

    return live_analyze_pending(session_id=session_id)


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
