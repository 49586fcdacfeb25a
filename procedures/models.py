"""Procedure sessions and their recordings.

Patient identity lives in the EHR: a session holds only the EHR's opaque references
(``patient_ref`` / ``encounter_ref``), never names, dates of birth or other PHI fields.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from medvision.text_rules import multi_line_text, single_line_text

opaque_reference = RegexValidator(
    r"^[A-Za-z0-9._:/|-]{1,64}$",
    "Use the EHR's identifier (letters, digits and . _ : / | - only, at most 64 characters); "
    "do not enter names or other personal details.",
)


class ProcedureType(models.TextChoices):
    COLONOSCOPY = "colonoscopy", "Colonoscopy"
    UPPER_GI = "upper_gi", "Upper GI endoscopy"
    BRONCHOSCOPY = "bronchoscopy", "Bronchoscopy"
    OTHER = "other", "Other"


class SessionMode(models.TextChoices):
    LIVE = "live", "Live"
    RECORDED = "recorded", "Recorded"


class SessionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    LIVE = "live", "Live"
    PROCESSING = "processing", "Processing"
    REVIEW = "review", "In review"
    SIGNED = "signed", "Signed"
    FAILED = "failed", "Failed"


class ProcedureSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200, validators=[single_line_text])
    procedure_type = models.CharField(max_length=20, choices=ProcedureType.choices)
    mode = models.CharField(max_length=10, choices=SessionMode.choices, default=SessionMode.LIVE)
    status = models.CharField(max_length=12, choices=SessionStatus.choices, default=SessionStatus.DRAFT)
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="procedure_sessions"
    )
    patient_ref = models.CharField(max_length=64, blank=True, validators=[opaque_reference])
    encounter_ref = models.CharField(max_length=64, blank=True, validators=[opaque_reference])
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True, max_length=20000, validators=[multi_line_text])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["clinician", "-created_at"], name="session_clinician_recent"),
            models.Index(fields=["status", "-created_at"], name="session_status_recent"),
            models.Index(fields=["procedure_type"], name="session_procedure_type"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="signed") | (Q(signed_by__isnull=False) & Q(signed_at__isnull=False)),
                name="session_signed_has_signer",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(started_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="session_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_procedure_type_display()}, {self.get_status_display()})"

    @property
    def is_signed(self) -> bool:
        return self.status == SessionStatus.SIGNED


def video_upload_path(instance: "Video", filename: str) -> str:
    # The client's file name never becomes a path: it can carry PHI and path tricks.
    return f"videos/{instance.session_id}/{instance.id}.bin"


class VideoState(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    PROBING = "probing", "Probing"
    SAMPLING = "sampling", "Sampling frames"
    ANALYSING = "analysing", "Analysing"
    SUMMARISING = "summarising", "Summarising"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


def playback_copy_path(instance: "Video", filename: str) -> str:
    return f"videos/{instance.session_id}/{instance.id}.playback.mp4"


class PlaybackState(models.TextChoices):
    """A browser-playable copy of a recording the browser cannot play as recorded."""

    NOT_NEEDED = "not_needed", "Plays as recorded"
    PENDING = "pending", "Copy waiting"
    MAKING = "making", "Making a playable copy"
    READY = "ready", "Playable copy ready"
    FAILED = "failed", "Playable copy failed"


class Video(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(ProcedureSession, on_delete=models.CASCADE, related_name="videos")
    # 1, 2, ... in the order recordings were added to the session: how people, reports and
    # FHIR name a recording ("Recording 2"); never reused.
    number = models.PositiveIntegerField(default=1)
    file = models.FileField(upload_to=video_upload_path, max_length=255)
    # The original stays the evidence; findings' times refer to it. The copy (H.264 MP4,
    # faststart, at most 720p) keeps its time base, so a time seeks the same picture.
    playback_file = models.FileField(upload_to=playback_copy_path, max_length=255, blank=True)
    playback_state = models.CharField(max_length=12, choices=PlaybackState.choices, default=PlaybackState.NOT_NEEDED)
    playback_progress = models.FloatField(default=0.0)
    playback_error = models.TextField(blank=True)
    interlaced = models.BooleanField(default=False)  # field order seen by the probe: frames are deinterlaced
    start_time_s = models.FloatField(default=0.0)  # the container's first timestamp (MPEG-TS rarely starts at 0)
    original_name = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64)
    container = models.CharField(max_length=64, blank=True)
    codec = models.CharField(max_length=64, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    state = models.CharField(max_length=12, choices=VideoState.choices, default=VideoState.UPLOADED)
    progress = models.FloatField(default=0.0)  # 0..1 within the current state
    progress_detail = models.JSONField(default=dict, blank=True)
    gate_counts = models.JSONField(default=dict, blank=True)  # frames dropped per reason
    summary = models.JSONField(default=dict, blank=True)  # filled when processing is done
    error_message = models.TextField(blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    sampling_finished_at = models.DateTimeField(null=True, blank=True)
    processing_finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["session", "sha256"], name="video_unique_per_session"),
            models.UniqueConstraint(fields=["session", "number"], name="video_number_unique_per_session"),
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1), name="video_progress_0_1"),
        ]

    def __str__(self) -> str:
        return f"Recording {self.number} of session {self.session_id} ({self.get_state_display()})"

    @property
    def display_name(self) -> str:
        return f"Recording {self.number}"


class Addendum(models.Model):
    """A correction or addition after sign-off. The signed report itself never changes;
    addenda are shown beside it with their own author and time."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(ProcedureSession, on_delete=models.CASCADE, related_name="addenda")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField(max_length=5000, validators=[multi_line_text])
    finding = models.ForeignKey("analysis.Finding", on_delete=models.PROTECT, null=True, blank=True, related_name="addenda")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"Addendum by {self.author} at {self.created_at:%Y-%m-%d %H:%M}"
