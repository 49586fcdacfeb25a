"""Analysed frames and the findings proposed from them.

Category and location values come from the analyzer engine's schemas
(``analysis.engine.schemas``); they are validated there, so the database stores plain
strings and a schema change does not need a migration of old rows.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from medvision.text_rules import multi_line_text, single_line_text


class AnalysisProvenance(models.Model):
    """Where an AI result came from. Shared by Frame and Finding (same columns)."""

    backend = models.CharField(max_length=32, blank=True)
    model_id = models.CharField(max_length=255, blank=True)
    model_revision = models.CharField(max_length=128, blank=True)
    prompt_version = models.CharField(max_length=32, blank=True)
    generation_params = models.JSONField(default=dict, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    raw_output = models.TextField(blank=True)
    is_demo = models.BooleanField(default=False)

    # The columns above, as copied from a frame onto the findings proposed from it.
    PROVENANCE_FIELDS = ("backend", "model_id", "model_revision", "prompt_version", "generation_params",
                         "latency_ms", "is_demo", "raw_output")

    class Meta:
        abstract = True

    def provenance_values(self) -> dict:
        return {name: getattr(self, name) for name in self.PROVENANCE_FIELDS}

    def set_provenance(self, provenance: dict, raw_output: str = "") -> None:
        self.backend = provenance.get("backend", "")
        self.model_id = provenance.get("model_id", "")
        self.model_revision = provenance.get("model_revision") or ""
        self.prompt_version = provenance.get("prompt_version", "")
        self.generation_params = provenance.get("generation_params", {})
        self.latency_ms = provenance.get("latency_ms")
        self.is_demo = bool(provenance.get("is_demo", False))
        self.raw_output = raw_output


class FrameSource(models.TextChoices):
    LIVE = "live", "Live stream"
    VIDEO = "video", "Recorded video"


class AnalysisState(models.TextChoices):
    PENDING = "pending", "Pending"
    ANALYSING = "analysing", "Being analysed"
    DONE = "done", "Analysed"
    FAILED = "failed", "Analysis failed"
    SKIPPED = "skipped", "Skipped"


def frame_image_path(instance: "Frame", filename: str) -> str:
    return f"frames/{instance.session_id}/{instance.id}.jpg"


class Frame(AnalysisProvenance):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey("procedures.ProcedureSession", on_delete=models.CASCADE, related_name="frames")
    video = models.ForeignKey("procedures.Video", on_delete=models.CASCADE, null=True, blank=True, related_name="frames")
    source = models.CharField(max_length=8, choices=FrameSource.choices)
    timestamp_ms = models.BigIntegerField(validators=[MinValueValidator(0)])
    image = models.ImageField(upload_to=frame_image_path, null=True, blank=True, max_length=255)
    sha256 = models.CharField(max_length=64, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    quality = models.JSONField(default=dict, blank=True)  # blur score, luma, verdict, phash
    analysis_state = models.CharField(max_length=10, choices=AnalysisState.choices, default=AnalysisState.PENDING)
    analysis_error = models.TextField(blank=True)
    analysis = models.JSONField(null=True, blank=True)  # the validated structured result
    analysed_at = models.DateTimeField(null=True, blank=True)
    # The GPU scheduler's claim (analysis.scheduler): which worker's batch holds the frame
    # and since when; a claim older than GPU_CLAIM_LEASE_S is a dead worker's, given back.
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "timestamp_ms"]
        indexes = [
            models.Index(fields=["session", "timestamp_ms"], name="frame_session_time"),
            models.Index(fields=["analysis_state"], name="frame_analysis_state"),
            models.Index(fields=["source", "analysis_state", "created_at"], name="frame_waiting"),
        ]
        constraints = [
            # A recorded frame is identified by its media time: a retried sampling task
            # finds the frame it already stored instead of adding a second one.
            models.UniqueConstraint(
                fields=["video", "timestamp_ms"], condition=Q(video__isnull=False), name="frame_unique_video_time"
            ),
        ]

    def __str__(self) -> str:
        return f"Frame at {self.timestamp_ms} ms ({self.get_analysis_state_display()})"


class Risk(models.TextChoices):
    # The engine's RISK_LEVELS as database choices (analysis/tests/test_vocabularies.py keeps them equal).
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class ReviewStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    CONFIRMED = "confirmed", "Confirmed"
    REJECTED = "rejected", "Rejected"
    EDITED = "edited", "Edited"


class FindingOrigin(models.TextChoices):
    AI = "ai", "AI proposal"
    CLINICIAN = "clinician", "Added by clinician"


class Finding(AnalysisProvenance):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey("procedures.ProcedureSession", on_delete=models.CASCADE, related_name="findings")
    frame = models.ForeignKey(Frame, on_delete=models.SET_NULL, null=True, blank=True, related_name="findings")
    # The recording the finding's times refer to (null for a live session's findings, which
    # refer to the live stream). AI findings take their frame's recording.
    video = models.ForeignKey("procedures.Video", on_delete=models.CASCADE, null=True, blank=True,
                              related_name="findings")
    origin = models.CharField(max_length=10, choices=FindingOrigin.choices, default=FindingOrigin.AI)
    # Idempotency key for AI findings (e.g. "<frame id>:<index>"): a redelivered task that
    # records the same result again hits the unique constraint instead of duplicating.
    origin_key = models.CharField(max_length=128, blank=True)
    start_ms = models.BigIntegerField(validators=[MinValueValidator(0)])
    end_ms = models.BigIntegerField(validators=[MinValueValidator(0)])
    category = models.CharField(max_length=40)
    label = models.CharField(max_length=120, blank=True, validators=[single_line_text])
    location = models.CharField(max_length=40, blank=True)
    risk = models.CharField(max_length=6, choices=Risk.choices)
    confidence = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    size_mm = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(500.0)])
    description = models.TextField(blank=True, max_length=2000, validators=[multi_line_text])
    suggested_next_step = models.TextField(blank=True, max_length=1000, validators=[multi_line_text])
    review_status = models.CharField(max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.PROPOSED)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    clinician_note = models.TextField(blank=True, max_length=5000, validators=[multi_line_text])
    # What the model proposed, kept unchanged when a clinician edits the finding.
    ai_original = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["session", "start_ms", "created_at"]
        indexes = [
            models.Index(fields=["session", "start_ms"], name="finding_session_time"),
            models.Index(fields=["session", "review_status"], name="finding_session_review"),
            models.Index(fields=["risk"], name="finding_risk"),
            models.Index(fields=["category"], name="finding_category"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "origin_key"], condition=~Q(origin_key=""), name="finding_unique_origin_key"
            ),
            models.CheckConstraint(condition=Q(end_ms__gte=models.F("start_ms")), name="finding_end_after_start"),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | (Q(confidence__gte=0) & Q(confidence__lte=1)),
                name="finding_confidence_0_1",
            ),
            models.CheckConstraint(condition=Q(risk__in=["low", "medium", "high"]), name="finding_risk_valid"),
            models.CheckConstraint(
                condition=Q(review_status__in=["proposed", "confirmed", "rejected", "edited"]),
                name="finding_review_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label or self.category} at {self.start_ms} ms ({self.get_review_status_display()})"

    @property
    def in_signed_report(self) -> bool:
        """Only a clinician's confirmation (or correction) puts a finding into the report."""
        return self.review_status in (ReviewStatus.CONFIRMED, ReviewStatus.EDITED)


class UploadState(models.TextChoices):
    RECEIVING = "receiving", "Receiving"
    CHECKING = "checking", "Checking the recording"
    DONE = "done", "Became a recording"
    REFUSED = "refused", "Refused"


def upload_part_path(upload_id) -> str:
    """Where a resumable upload's bytes are written (relative to MEDIA_ROOT)."""
    return f"uploads/{upload_id}.part"


class ResumableUpload(models.Model):
    """A tus 1.0 upload of a recording (analysis.tus): its bytes go straight to
    ``uploads/<id>.part`` on disk; ``offset`` is how many are stored. When the last byte
    arrives the file is checked like any recording and becomes a ``procedures.Video``, or is
    refused (file deleted, reason kept). Abandoned uploads expire (``expires_at``) and are
    removed with their file by ``python manage.py uploads_expire`` and the next upload."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey("procedures.ProcedureSession", on_delete=models.CASCADE, related_name="uploads")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    length = models.BigIntegerField(validators=[MinValueValidator(1)])
    offset = models.BigIntegerField(default=0)
    filename = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=10, choices=UploadState.choices, default=UploadState.RECEIVING)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    video = models.ForeignKey("procedures.Video", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "expires_at"], name="upload_state_expiry")]
        constraints = [
            models.CheckConstraint(condition=Q(offset__gte=0) & Q(offset__lte=models.F("length")),
                                   name="upload_offset_within_length"),
        ]

    def __str__(self) -> str:
        return f"Upload {self.id} ({self.offset}/{self.length} bytes, {self.get_state_display()})"

    @property
    def part_name(self) -> str:
        return upload_part_path(self.id)
