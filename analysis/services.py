"""Writes to frames and findings: recording analyzer results and the clinician's review.

Tasks, consumers and views call these; these call the engine's types and the broadcast
helper. Every write runs in a transaction and is attributed to its actor for the audit log.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from medvision.audit import acting_as
from medvision.events import FindingChanged, FrameChanged, publish, publish_after_commit
from procedures import access
from procedures.models import ProcedureSession, SessionStatus

from . import dispatch
from .engine.schemas import RISK_RANK
from .models import AnalysisState, Finding, FindingOrigin, Frame, FrameSource, ReviewStatus
from .serializers import finding_event, frame_event

logger = logging.getLogger(__name__)

REVIEW_ACTIONS = {"confirm": ReviewStatus.CONFIRMED, "reject": ReviewStatus.REJECTED}
CORRECTABLE_FIELDS = ("category", "label", "location", "risk", "size_mm", "description", "suggested_next_step")


def _locked_finding(finding_id, session_id) -> tuple[Finding, ProcedureSession]:
    # Lock the session row first: sign-off takes the same lock, so a review cannot slip in
    # after the report was signed.
    session = ProcedureSession.objects.select_for_update().get(pk=session_id)
    finding = Finding.objects.select_for_update().get(pk=finding_id, session=session)
    return finding, session


def finding_review(
    *, actor, finding: Finding, status: str | None = None, note: str | None = None, corrections: dict | None = None
) -> Finding:
    """Confirm, reject or correct a finding, and/or set the clinician's note.

    Corrections mark the finding "edited" (it enters the report with the clinician's
    values); the model's original proposal stays in ``ai_original``.
    """
    corrections = {k: v for k, v in (corrections or {}).items() if k in CORRECTABLE_FIELDS}
    with transaction.atomic(), acting_as(actor):
        finding, session = _locked_finding(finding.pk, finding.session_id)
        access.ensure_editable(actor, session)
        fields = {"updated_at"}
        if corrections:
            if finding.ai_original is None and finding.origin == FindingOrigin.AI:
                finding.ai_original = {f: getattr(finding, f) for f in CORRECTABLE_FIELDS}
            for name, value in corrections.items():
                setattr(finding, name, value)
            fields |= set(corrections) | {"ai_original"}
            status = status or ReviewStatus.EDITED
        if status:
            if status not in ReviewStatus.values or status == ReviewStatus.PROPOSED:
                raise ValueError("Review status must be confirmed, rejected or edited.")
            finding.review_status = status
            finding.reviewed_by = actor
            finding.reviewed_at = timezone.now()
            fields |= {"review_status", "reviewed_by", "reviewed_at"}
        if note is not None:
            finding.clinician_note = note
            fields.add("clinician_note")
        finding.full_clean()
        finding.save(update_fields=sorted(fields))
    publish(session.pk, FindingChanged(finding_event(finding)))
    return finding


def _check_recording_of(session: ProcedureSession, video) -> None:
    if video is not None and video.session_id != session.pk:
        raise ValidationError({"video": ["That recording is not one of this session's recordings."]})


def _manual_key_frame(*, session, video, time_ms: int):
    """The key frame of a clinician's finding at its time (as an AI finding has one), or None
    when ffmpeg could not take the picture (a finding without one beats no finding). A time
    not in the recording is refused on ``start_ms``, in words for the clinician."""
    from .keyframes import KeyFrameError, key_frame_at

    try:
        return key_frame_at(session=session, video=video, time_ms=time_ms)
    except KeyFrameError:
        logger.exception("No key frame at %s ms of recording %s", time_ms, getattr(video, "pk", None))
        return None
    except ValueError as exc:  # e.g. after the end of the recording
        raise ValidationError({"start_ms": [str(exc)]}) from None


def finding_add_manual(*, actor, session: ProcedureSession, video=None, with_key_frame: bool = False,
                       **values) -> Finding:
    """A finding the model missed, added by the clinician (it is confirmed by its author).

    ``video``: the recording its time refers to (one of the session's; None for a live
    stream's finding). ``with_key_frame``: give it the frame at its start time as its key
    frame (``analysis.keyframes``: taken from the recording with ffmpeg before any lock is
    held; for a live stream, the live frame at that time)."""
    if with_key_frame and values.get("frame") is None:
        access.ensure_editable(actor, session)  # no ffmpeg work for someone who may not add it
        values["frame"] = _manual_key_frame(session=session, video=video, time_ms=values.get("start_ms") or 0)
    with transaction.atomic(), acting_as(actor):
        session = ProcedureSession.objects.select_for_update().get(pk=session.pk)
        access.ensure_editable(actor, session)
        _check_recording_of(session, video)
        now = timezone.now()
        finding = Finding(
            session=session,
            video=video,
            origin=FindingOrigin.CLINICIAN,
            review_status=ReviewStatus.CONFIRMED,
            reviewed_by=actor,
            reviewed_at=now,
            end_ms=values.pop("end_ms", None) or values.get("start_ms", 0),
            **values,
        )
        finding.full_clean()
        finding.save()
    publish(session.pk, FindingChanged(finding_event(finding)))
    return finding


def finding_set_recording(*, actor, finding: Finding, video) -> Finding:
    """Say which recording a clinician's finding refers to (its times are kept). An AI
    finding stays in the recording of the frame it was found in."""
    with transaction.atomic(), acting_as(actor):
        finding, session = _locked_finding(finding.pk, finding.session_id)
        access.ensure_editable(actor, session)
        _check_recording_of(session, video)
        if finding.origin == FindingOrigin.AI and finding.video_id and video != finding.video:
            raise ValidationError({"video": ["An AI finding stays in the recording it was found in."]})
        finding.video = video
        finding.save(update_fields=["video", "updated_at"])
    publish(session.pk, FindingChanged(finding_event(finding)))
    return finding


# --- frames and analyzer results ---------------------------------------------------------


def frame_create(
    *, session: ProcedureSession, source: str, timestamp_ms: int, jpeg: bytes, width: int, height: int,
    video=None, quality: dict | None = None,
) -> Frame:
    """Store a frame's JPEG as evidence and queue it for analysis (after commit).

    For recorded video, (video, timestamp) identifies a frame: a retried sampling task gets
    the frame it stored before, and a frame already analysed is not queued again.
    """
    if video is not None:
        existing = Frame.objects.filter(video=video, timestamp_ms=timestamp_ms).first()
        if existing is not None:
            return existing
    frame = Frame(
        session=session, video=video, source=source, timestamp_ms=timestamp_ms,
        sha256=hashlib.sha256(jpeg).hexdigest(), width=width, height=height, quality=quality or {},
    )
    frame.image.save(f"{frame.pk}.jpg", ContentFile(jpeg), save=False)
    try:
        with transaction.atomic():
            frame.save()
    except IntegrityError:
        frame.image.delete(save=False)  # lost a race with a redelivered twin: keep theirs
        return Frame.objects.get(video=video, timestamp_ms=timestamp_ms)
    return frame


def frames_enqueue(frame_ids: list) -> None:
    """Send frames to the GPU queue once the surrounding transaction has committed."""
    ids = [str(i) for i in frame_ids]
    if not ids:
        return
    batch = settings.ANALYZER_BATCH_SIZE
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        dispatch.send_after_commit(dispatch.ANALYZE_FRAMES, chunk)


def _load_image(frame: Frame):
    from PIL import Image

    with frame.image.open("rb") as fh:
        return Image.open(io.BytesIO(fh.read())).convert("RGB")


def frames_analyze(*, frame_ids: list, states: tuple = (AnalysisState.PENDING,)) -> dict:
    """Analyse the pending frames among ``frame_ids`` and record the results.

    Idempotent: frames already analysed are skipped, so a redelivered task only does the
    work that was not finished. Returns counts for the caller's logs and, under
    ``"video_ids"``, the recordings whose frames were analysed (the caller moves them on:
    ``pipeline.video_check_complete``).
    """
    inferred = frames_infer(frame_ids=frame_ids, states=states)
    return frames_record(inferred)


@dataclass
class Inferred:
    """A batch between the model and the database: the frames and the model's results."""

    frames: list
    results: list
    skipped: int


def frames_infer(*, frame_ids: list, states: tuple = (AnalysisState.PENDING,)) -> Inferred:
    """Load the frames among ``frame_ids`` that are in ``states`` and run the model on them
    (nothing is written). The scheduler records one batch while the model runs the next."""
    from .analyzer import configured_analyzer
    from .engine import OutOfMemory

    frames = list(
        Frame.objects.filter(pk__in=frame_ids, analysis_state__in=states)
        .select_related("session").order_by("session_id", "timestamp_ms")
    )
    if not frames:
        return Inferred(frames=[], results=[], skipped=len(frame_ids))
    analyzer = configured_analyzer()
    results = []
    # One model call per (procedure type, kind): the prompt depends on nothing else, so the
    # scheduler's batch of several rooms' live frames goes to the GPU as one batch.
    groups: dict = {}
    for frame in frames:
        groups.setdefault((frame.session.procedure_type, frame.source), []).append(frame)
    for (procedure_type, source), group in groups.items():
        inputs, unreadable = frame_inputs(analyzer, group)
        results += unreadable
        # The engine halves a batch on CUDA out-of-memory by itself; OutOfMemory here means
        # a single frame does not fit, which no retry will fix.
        try:
            results += analyzer.analyze(inputs, procedure_type, answer_kind(source)) if inputs else []
        except OutOfMemory as exc:
            results += [failed_result(analyzer, item, f"The GPU ran out of memory on this frame: {exc}")
                        for item in inputs]
    return Inferred(frames=frames, results=results, skipped=len(frame_ids) - len(frames))


def answer_kind(source: str) -> str:
    # Live frames get the compact live answer (a few dozen decoding steps); recorded frames
    # the full one, with description and suggested next step.
    return "live" if source == FrameSource.LIVE else "frame"


def frame_inputs(analyzer, frames) -> tuple[list, list]:
    """The model's inputs for ``frames``, and a failed result for each whose JPEG is gone
    or unreadable (that frame fails, not its batch)."""
    from .engine import FrameInput

    inputs, unreadable = [], []
    for f in frames:
        try:
            image = _load_image(f)
        except (OSError, ValueError) as exc:
            item = FrameInput(image=None, timestamp_ms=f.timestamp_ms, frame_id=str(f.pk))
            unreadable.append(failed_result(analyzer, item, f"The frame's image could not be read ({exc})."))
            continue
        inputs.append(FrameInput(image=image, timestamp_ms=f.timestamp_ms, frame_id=str(f.pk)))
    return inputs, unreadable


def frames_record(inferred: Inferred) -> dict:
    """Write a batch's results (each frame in its own transaction, idempotent); the counts
    as ``frames_analyze`` returns them."""
    counts = {"analysed": 0, "failed": 0, "skipped": inferred.skipped}
    by_id = {str(f.pk): f for f in inferred.frames}
    for result in inferred.results:
        known = by_id.get(str(result.frame_id))
        frame, _ = frame_record_result(frame_id=result.frame_id, result=result,
                                       session_id=known.session_id if known else None,
                                       source=known.source if known else None)
        counts["analysed" if frame.analysis_state == AnalysisState.DONE else "failed"] += 1
    counts["video_ids"] = sorted({str(f.video_id) for f in inferred.frames if f.video_id})
    return counts


def _record_live_proposals(frame: Frame, proposals, raw_output: str) -> list[Finding]:
    """Turn a live frame's detections into proposals, extending a still-proposed finding
    of the previous analysed frame (same category + location, within the merge gap)
    instead of repeating it. Returns the findings created or extended."""
    if not proposals:
        return []
    previous_ts = (
        Frame.objects.filter(session_id=frame.session_id, source=FrameSource.LIVE, analysis_state=AnalysisState.DONE,
                             timestamp_ms__lte=frame.timestamp_ms)
        .exclude(pk=frame.pk).order_by("-timestamp_ms").values_list("timestamp_ms", flat=True).first()
    )
    touched: list[Finding] = []
    for index, detection in enumerate(proposals):
        proposal = detection.record_values()
        run = None
        if previous_ts is not None and frame.timestamp_ms - previous_ts <= settings.FINDING_MERGE_MAX_GAP_MS:
            run = (Finding.objects.select_for_update()
                   .filter(session_id=frame.session_id, origin=FindingOrigin.AI, review_status=ReviewStatus.PROPOSED,
                           category=proposal["category"], location=proposal["location"], end_ms=previous_ts)
                   .exclude(pk__in=[f.pk for f in touched]).first())
        if run is not None:
            run.end_ms = max(run.end_ms, frame.timestamp_ms)
            if RISK_RANK[proposal["risk"]] > RISK_RANK.get(run.risk, 0):
                run.risk = proposal["risk"]
            if (proposal["confidence"] or 0) > (run.confidence or 0):
                run.confidence, run.frame = proposal["confidence"], frame  # the clearest view is the key frame
            run.save(update_fields=["end_ms", "risk", "confidence", "frame", "updated_at"])
            touched.append(run)
            continue
        finding, was_created = Finding.objects.get_or_create(
            session_id=frame.session_id,
            origin_key=f"{frame.pk}:{index}",
            defaults=dict(
                frame=frame, origin=FindingOrigin.AI, start_ms=frame.timestamp_ms, end_ms=frame.timestamp_ms,
                **proposal, **{**frame.provenance_values(), "raw_output": raw_output},
            ),
        )
        if was_created:
            touched.append(finding)
    return touched


def failed_result(analyzer, item, message: str):
    from .engine import AnalysisResult

    return AnalysisResult(frame_id=item.frame_id, timestamp_ms=item.timestamp_ms, ok=False, analysis=None,
                          error=message, raw_output="", provenance=analyzer.provenance_base)


def frame_record_result(*, frame_id, result, session_id=None, source=None) -> tuple[Frame, list[Finding]]:
    """Record one analyzer result on its frame and, for live frames, turn its findings
    into proposals at once. (Recorded video frames keep their detections on the frame; the
    pipeline merges consecutive ones into timeline findings when the video is done.)

    Each finding's ``origin_key`` is "<frame id>:<index>", unique per session, so recording
    the same result twice (a redelivered task) cannot duplicate a finding. A caller that
    has the frame's ``session_id`` and ``source`` at hand passes them (one query less per
    live frame).
    """
    provenance = result.provenance.as_dict()
    created: list[Finding] = []
    with transaction.atomic():
        if session_id is None or source is None:
            session_id, source = Frame.objects.values_list("session_id", "source").get(pk=frame_id)
        if source == FrameSource.LIVE:
            # A live result can race the sign-off. Lock the session row first, as sign-off
            # does (same order, no deadlock): the result is either recorded before the
            # signature, and counted by it, or finds its frame cancelled. (Recorded frames
            # cannot race it: signing is refused while a recording is processed.)
            ProcedureSession.objects.select_for_update().only("pk").get(pk=session_id)
        frame = Frame.objects.select_for_update().select_related("session").get(pk=frame_id)
        if frame.analysis_state not in (AnalysisState.PENDING, AnalysisState.ANALYSING):
            return frame, []
        if frame.session.status == SessionStatus.SIGNED:
            return frame, []
        frame.set_provenance(provenance, raw_output=result.raw_output)
        frame.analysed_at = timezone.now()
        if result.ok:
            frame.analysis_state = AnalysisState.DONE
            frame.analysis = result.analysis.model_dump(mode="json")
            if frame.source == FrameSource.LIVE:
                created = _record_live_proposals(frame, result.analysis.findings, result.raw_output)
        else:
            frame.analysis_state = AnalysisState.FAILED
            frame.analysis_error = result.error or "The analyzer returned no valid result."
        frame.save()
        publish_after_commit(frame.session_id, FrameChanged(frame_event(frame)),
                             *[FindingChanged(finding_event(f)) for f in created])
    return frame, created
