"""Recorded procedures: sample -> gate -> analyse -> merge -> summarise.

Stages (``Video.state``): sampling (ffmpeg decodes frames straight into numpy at the
analyzer's input size; quality gate and near-duplicate filter; kept frames stored as JPEG
evidence and queued for the GPU as they come), analysing (the ``gpu`` queue records each
frame's result), summarising (consecutive frames with the same category + location merge
into one finding with a start and an end; summary counts), done -> session in review.

Resumable: every step is keyed so that doing it again adds nothing. A frame is identified
by (video, media time); a frame already analysed is never queued again; merged findings
are keyed by (video, start, category, location). A worker killed mid-video loses only the
frame it was on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from medvision.events import (
    FindingChanged,
    RecordingSummary,
    StatusChanged,
    publish_after_commit,
)
from procedures import workflow
from procedures.models import ProcedureSession, Video, VideoState

from . import dispatch, playback, services
from .engine.schemas import RISK_RANK, RISKS_HIGHEST_FIRST
from .models import AnalysisState, Finding, FindingOrigin, FrameSource
from .serializers import finding_event

logger = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0




def _gate_settings():
    from .media.dedup import NearDuplicateFilter
    from .media.quality import QualityThresholds

    thresholds = QualityThresholds(
        min_blur_score=settings.QUALITY_MIN_BLUR_SCORE,
        max_dark_fraction=settings.QUALITY_MAX_DARK_FRACTION,
        max_bright_fraction=settings.QUALITY_MAX_BRIGHT_FRACTION,
    )
    if settings.DEDUP_WINDOW == 0:
        return thresholds, None  # near-duplicate dropping switched off
    return thresholds, NearDuplicateFilter(max_distance=settings.DEDUP_MAX_DISTANCE, window=settings.DEDUP_WINDOW)


class SamplingTooSlow(Exception):
    def __init__(self, budget_s: float):
        super().__init__(
            f"Reading the recording took longer than its {budget_s:.0f} s budget (a recording should decode at "
            "least twice as fast as it plays); it was stopped. Re-export it at a normal resolution and frame "
            "rate (for example 1920x1080, 30 fps, H.264) and upload it again."
        )


def sampling_budget_s(duration_s: float) -> float:
    """How long sampling a recording may take: half its duration at the slowest, plus a
    minute for start-up (VIDEO_SAMPLING_BUDGET_S overrides)."""
    return settings.VIDEO_SAMPLING_BUDGET_S or (60.0 + duration_s / 2)


def video_sample(video_id) -> None:
    """Sample, gate and store the kept frames, queueing them for analysis as they come."""
    from .media.gate import GateCounts
    from .media.probe import InvalidVideo, probe_video
    from .media.sampler import SamplingError, sample_frames

    video = Video.objects.select_related("session").get(pk=video_id)
    if video.state in (VideoState.DONE, VideoState.FAILED) or video.sampling_finished_at:
        video_check_complete(video.pk)  # a redelivered task after sampling: just move on
        return
    workflow.video_start_sampling(video)
    counts = GateCounts()
    capped: dict = {}
    try:
        info = probe_video(video.file.path, verify=False, max_width=settings.VIDEO_MAX_WIDTH,
                           max_height=settings.VIDEO_MAX_HEIGHT, max_duration_s=settings.VIDEO_MAX_DURATION_S)
        # Interlacing and container start noted; a copy queued if browsers cannot play it.
        playback.queue_if_needed(video, info)
        budget_s = sampling_budget_s(info.duration_s)
        with sample_frames(video.file.path, info=info, interval_s=settings.SAMPLING_INTERVAL_S,
                           scene_threshold=settings.SAMPLING_SCENE_THRESHOLD or None,
                           target_size=settings.SAMPLING_MAX_SIDE,
                           max_pixels=settings.VIDEO_MAX_WIDTH * settings.VIDEO_MAX_HEIGHT) as stream, \
                _watchdog(budget_s, stream.kill) as timed_out:
            try:
                _store_kept_frames(video, stream, info, counts, capped)
            except SamplingError:
                if timed_out.is_set():
                    raise SamplingTooSlow(budget_s) from None
                raise
            if timed_out.is_set():  # killed between two frames: the stream just ended
                raise SamplingTooSlow(budget_s)
    except InvalidVideo as exc:
        workflow.video_fail(video.pk, f"The recording could not be decoded: {exc.message}")
        return
    except SamplingTooSlow as exc:
        workflow.video_fail(video.pk, str(exc))
        return
    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video.pk)
        total = video.frames.count()
        workflow.video_finish_sampling(
            video, progress=_analysed_fraction(video),
            detail={"done": video.frames.exclude(analysis_state=AnalysisState.PENDING).count(), "total": total},
            gate_counts={**counts.as_dict(), "capped": capped.get("capped", 0)})
    video_check_complete(video.pk)


@contextlib.contextmanager
def _watchdog(budget_s: float, stop):
    """Calls ``stop`` when ``budget_s`` runs out (in another thread); yields the event
    that says it did."""
    fired = threading.Event()
    timer = threading.Timer(budget_s, lambda: (fired.set(), stop()))
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


def _store_kept_frames(video: Video, stream, info, counts, capped: dict) -> None:
    from .media.gate import gate_frames
    from .media.jpeg import encode_jpeg
    from .media.sampler import capped_per_minute

    thresholds, dedup = _gate_settings()
    pending: list = []
    last_announce = 0.0
    sampled = capped_per_minute(stream, settings.SAMPLING_MAX_FRAMES_PER_MINUTE, capped)
    for kept in gate_frames(sampled, thresholds, dedup, counts=counts):
        height, width = kept.image.shape[:2]
        frame = services.frame_create(
            session=video.session, video=video, source=FrameSource.VIDEO, timestamp_ms=kept.timestamp_ms,
            jpeg=encode_jpeg(kept.image, quality=90), width=width, height=height,
            quality={**kept.quality.as_dict(), "phash": kept.phash, "sampled_because": kept.reason},
        )
        if frame.analysis_state == AnalysisState.PENDING:
            pending.append(frame.pk)
        if len(pending) >= settings.ANALYZER_BATCH_SIZE:
            services.frames_enqueue(pending)
            pending = []
        if time.monotonic() - last_announce > PROGRESS_EVERY_S:
            last_announce = time.monotonic()
            workflow.video_record_progress(video, kept.timestamp_ms / 1000 / max(info.duration_s, 0.001),
                                           {"sampled": counts.sampled, "kept": counts.kept})
    services.frames_enqueue(pending)


def _analysed_fraction(video: Video) -> float:
    stats = video.frames.aggregate(total=Count("pk"), done=Count("pk", filter=~Q(analysis_state=AnalysisState.PENDING)))
    return stats["done"] / stats["total"] if stats["total"] else 1.0


def video_check_complete(video_id) -> None:
    """After sampling, and after each analysed batch: announce progress and, when every
    kept frame has a result, hand over to summarising (once: the row lock decides)."""
    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video_id)
        if video.state != VideoState.ANALYSING:
            return
        stats = video.frames.aggregate(
            total=Count("pk"), done=Count("pk", filter=~Q(analysis_state=AnalysisState.PENDING))
        )
        detail = {"done": stats["done"], "total": stats["total"]}
        if stats["done"] == stats["total"]:
            video.progress_detail = detail
            workflow.video_start_summarising(video)
            dispatch.send_after_commit(dispatch.SUMMARISE_VIDEO, str(video.pk))
        else:
            workflow.video_record_progress(video, stats["done"] / stats["total"] if stats["total"] else 1.0, detail)


LOADING_MODEL = "loading_model"


def videos_announce_model_loading() -> int:
    """Before a worker loads the model's weights (tens of seconds): every recording waiting
    for analysis says so (``progress_detail["phase"] = "loading_model"``), instead of
    "0 / 20 frames" standing still. The next progress of that recording replaces it.
    Returns how many recordings were told."""
    told = 0
    waiting = Video.objects.filter(state=VideoState.ANALYSING,
                                   frames__analysis_state=AnalysisState.PENDING).distinct()
    for video_id in waiting.values_list("pk", flat=True):
        with transaction.atomic():
            video = Video.objects.select_for_update().filter(pk=video_id, state=VideoState.ANALYSING).first()
            if video is None:
                continue
            detail = {**(video.progress_detail or {}), "phase": LOADING_MODEL}
            workflow.video_record_progress(video, video.progress, detail)
            told += 1
    return told


def _merged_timeline(video: Video):
    from .media.merge import merge_detections

    # Frames whose analysis failed were not looked at: leave them out rather than letting
    # them read as "nothing seen" and split a finding in two.
    frames = list(video.frames.filter(analysis_state=AnalysisState.DONE).order_by("timestamp_ms"))
    by_id = {str(f.pk): f for f in frames}
    timeline = merge_detections(
        [(f.timestamp_ms, str(f.pk), (f.analysis or {}).get("findings", [])) for f in frames],
        max_gap_ms=settings.FINDING_MERGE_MAX_GAP_MS,
        risk_rank=lambda risk: RISK_RANK.get(risk, 0),
    )
    return timeline, by_id


def video_summarise(video_id) -> None:
    started = time.monotonic()
    with transaction.atomic():
        video = Video.objects.select_for_update().select_related("session").get(pk=video_id)
        if video.state != VideoState.SUMMARISING:
            return
        timeline, frames = _merged_timeline(video)
        created = []
        for item in timeline:
            key_frame = frames[item.key_frame_id]
            det = item.key_detection
            finding, was_created = Finding.objects.get_or_create(
                session=video.session,
                origin_key=f"video:{video.pk}:{item.start_ms}:{item.category}:{item.location}"[:128],
                defaults=dict(
                    frame=key_frame, video=video, origin=FindingOrigin.AI, start_ms=item.start_ms, end_ms=item.end_ms,
                    category=item.category, location=item.location or "", risk=item.risk,
                    confidence=item.confidence, size_mm=det.get("size_mm"), label=det.get("label", ""),
                    description=det.get("description", ""), suggested_next_step=det.get("suggested_next_step", ""),
                    **key_frame.provenance_values(),
                ),
            )
            if was_created:
                created.append(finding)
        summary = _summary(video, timeline, frames)
        summary["processing_s"] = round(
            (timezone.now() - (video.processing_started_at or timezone.now())).total_seconds(), 1)
        summary["summarising_s"] = round(time.monotonic() - started, 3)
        workflow.video_finish(video, summary)
        session = ProcedureSession.objects.select_for_update().get(pk=video.session_id)
        workflow.session_finish_analysis(session)
        publish_after_commit(session.pk, *[FindingChanged(finding_event(f)) for f in created],
                             RecordingSummary(str(video.pk), summary), StatusChanged(session.status))


def _summary(video: Video, timeline, frames_by_id) -> dict:
    by_risk = dict.fromkeys(RISKS_HIGHEST_FIRST, 0)
    by_category: dict[str, int] = {}
    for item in timeline:
        by_risk[item.risk] = by_risk.get(item.risk, 0) + 1
        by_category[item.category] = by_category.get(item.category, 0) + 1
    ranked = sorted(timeline, key=lambda t: (-RISK_RANK.get(t.risk, 0), -(t.confidence or 0), t.start_ms))
    frame_states = dict(video.frames.values_list("analysis_state").annotate(n=Count("pk")))
    return {
        "findings": len(timeline),
        "by_risk": by_risk,
        "by_category": dict(sorted(by_category.items())),
        "top_findings": [
            {"category": t.category, "location": t.location, "risk": t.risk, "confidence": t.confidence,
             "start_ms": t.start_ms, "end_ms": t.end_ms, "key_frame": str(t.key_frame_id)}
            for t in ranked[:5]
        ],
        "frames": {
            **video.gate_counts,
            "analysed": frame_states.get(AnalysisState.DONE, 0),
            "failed": frame_states.get(AnalysisState.FAILED, 0),
        },
        "duration_s": video.duration_s,
    }
