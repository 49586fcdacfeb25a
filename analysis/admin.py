"""QA admin for frames and findings: everything an auditor needs to trace an AI proposal
back to its frame, model, prompt version and raw output. Findings are changed by the
clinician in the portal (so that review is audited in one place), never here."""

from django.contrib import admin

from medvision.admin_base import AuditedReadsAdmin, NoWritesAdmin, ReadOnlyInline
from procedures.admin import ProcedureSessionAdmin
from procedures.models import ProcedureSession

from .models import Finding, Frame


class FindingInline(ReadOnlyInline):
    model = Finding
    fields = ["start_ms", "end_ms", "category", "location", "risk", "confidence", "review_status", "is_demo", "model_id"]
    readonly_fields = fields


# The session page lists its findings too; procedures knows nothing of findings, so the
# analysis app extends that page rather than procedures importing analysis.
admin.site.unregister(ProcedureSession)


@admin.register(ProcedureSession)
class ProcedureSessionWithFindingsAdmin(ProcedureSessionAdmin):
    inlines = [*ProcedureSessionAdmin.inlines, FindingInline]


@admin.register(Finding)
class FindingAdmin(AuditedReadsAdmin, NoWritesAdmin):
    list_display = ["label", "category", "location", "risk", "confidence", "review_status", "is_demo", "model_id",
                    "session", "start_ms", "created_at"]
    list_filter = ["risk", "review_status", "category", "model_id", "is_demo", "origin", "backend", "prompt_version"]
    search_fields = ["label", "description", "session__id", "session__title", "id"]
    readonly_fields = [f.name for f in Finding._meta.fields]


@admin.register(Frame)
class FrameAdmin(AuditedReadsAdmin, NoWritesAdmin):
    list_display = ["id", "session", "source", "timestamp_ms", "analysis_state", "model_id", "latency_ms", "is_demo"]
    list_filter = ["source", "analysis_state", "model_id", "is_demo", "backend"]
    search_fields = ["id", "session__id"]
    readonly_fields = [f.name for f in Frame._meta.fields]
