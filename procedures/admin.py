"""QA admin for sessions and videos. QA reviewers have view permissions only (migration
``medvision.0001_roles``). Admin follows the services' rules, superusers included: a session
changes only through the portal/API workflow (owner, status, patient reference and findings
are never edited here), and nothing clinical is deleted here: the services delete no
session or recording either (retention is the database's procedure, like the audit log's;
a row deleted there takes its files with it, medvision.file_cleanup). Every page that shows
a session is audited."""

from django.contrib import admin

from medvision.admin_base import AuditedReadsAdmin, NoWritesAdmin, ReadOnlyInline

from .models import ProcedureSession, Video


class VideoInline(ReadOnlyInline):
    model = Video
    fields = ["original_name", "state", "duration_s", "width", "height", "fps", "size_bytes", "error_message"]
    readonly_fields = fields


@admin.register(ProcedureSession)
class ProcedureSessionAdmin(AuditedReadsAdmin, NoWritesAdmin):
    list_display = ["title", "procedure_type", "mode", "status", "clinician", "created_at", "signed_at"]
    list_filter = ["procedure_type", "status", "mode", "clinician", "created_at", "signed_at"]
    search_fields = ["title", "patient_ref", "encounter_ref", "clinician__username", "id"]
    date_hierarchy = "created_at"
    inlines = [VideoInline]  # analysis/admin.py adds the findings

    def audited_session(self, obj):
        return obj




@admin.register(Video)
class VideoAdmin(AuditedReadsAdmin, NoWritesAdmin):
    list_display = ["id", "session", "state", "duration_s", "width", "height", "size_bytes", "created_at"]
    list_filter = ["state", "created_at"]
    search_fields = ["id", "session__id", "sha256"]
    readonly_fields = [f.name for f in Video._meta.fields]
