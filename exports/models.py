"""A record of every document handed out of the system."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class ExportKind(models.TextChoices):
    BUNDLE = "bundle", "Documentation bundle (zip)"
    FHIR = "fhir", "FHIR R4 bundle"
    REPORT = "report", "Printable report"


class Export(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey("procedures.ProcedureSession", on_delete=models.CASCADE, related_name="exports")
    kind = models.CharField(max_length=8, choices=ExportKind.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    is_final = models.BooleanField(help_text="Final (signed session) or preliminary.")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["session", "-created_at"], name="export_session_recent")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.session_id} by {self.created_by} at {self.created_at:%Y-%m-%d %H:%M}"
