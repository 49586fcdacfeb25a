"""The clinician's structured report of a session, and the marks on its timeline.

``StructuredReport.data`` holds the per-procedure-type fields (``reporting.schema``), always
valid JSON of that schema (a draft may be incomplete; ``reporting.validation`` says what
signing needs). ``TimelineMark`` rows hold the moments a clinician marked on the live page
or the review video (cecum reached, scope out, cecal landmarks with their key frame): the
withdrawal time is computed from them, never typed.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from medvision.text_rules import single_line_text

from . import vocabulary


class StructuredReport(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.OneToOneField("procedures.ProcedureSession", on_delete=models.CASCADE,
                                   related_name="structured_report")
    data = models.JSONField(default=dict, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Structured report of session {self.session_id}"


MarkKind = models.TextChoices("MarkKind", [(code, (code, text)) for code, text in vocabulary.MARK_KINDS])


class TimelineMark(models.Model):
    """One moment of the procedure, at most one per kind and session (moving a mark edits
    it). ``video`` names the recording the time refers to; null for the live stream.
    ``frame`` is the key frame at that moment (a landmark's photo documentation)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey("procedures.ProcedureSession", on_delete=models.CASCADE, related_name="marks")
    kind = models.CharField(max_length=24, choices=MarkKind.choices)
    time_ms = models.BigIntegerField(validators=[MinValueValidator(0)])
    video = models.ForeignKey("procedures.Video", on_delete=models.CASCADE, null=True, blank=True, related_name="marks")
    frame = models.ForeignKey("analysis.Frame", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["session", "time_ms"]
        constraints = [
            models.UniqueConstraint(fields=["session", "kind"], name="mark_one_per_kind"),
            models.CheckConstraint(condition=Q(time_ms__gte=0), name="mark_time_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.time_ms} ms"


# Histology a pathology result may give: every code but "pending" (a result is the end of pending).
PathologyHistology = models.TextChoices(
    "PathologyHistology",
    [(code, (code, text)) for code, text in vocabulary.POLYP_HISTOLOGY if code != "pending"],
)


class PathologyResult(models.Model):
    """A polyp's histology as pathology reported it, entered after the report was signed.

    The signed report never changes: these rows sit beside it (each one with its addendum),
    append-only; a correction is a newer row, and the latest per ``polyp_id`` counts.
    ``polyp_id`` is the polyp row's ``id`` in ``StructuredReport.data["polyps"]``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey("procedures.ProcedureSession", on_delete=models.CASCADE,
                                related_name="pathology_results")
    polyp_id = models.CharField(max_length=64)
    histology = models.CharField(max_length=32, choices=PathologyHistology.choices)
    note = models.CharField(max_length=200, blank=True, default="", validators=[single_line_text])
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "created_at"]
        indexes = [models.Index(fields=["session", "polyp_id", "created_at"], name="pathology_latest_idx")]
        constraints = [
            models.CheckConstraint(condition=~Q(histology="pending"), name="pathology_not_pending"),
            models.CheckConstraint(condition=~Q(polyp_id=""), name="pathology_names_a_polyp"),
        ]

    def __str__(self) -> str:
        return f"Pathology of polyp {self.polyp_id}: {self.get_histology_display()}"
