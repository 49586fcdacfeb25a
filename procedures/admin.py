"""QA admin for sessions and videos. QA reviewers have view permissions only (migration
``medvision.0001_roles``); a signed session is read-only for everybody, superusers too."""

from django.contrib import admin

from analysis.models import Finding

from .models import ProcedureSession, SessionStatus, Video


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class FindingInline(ReadOnlyInline):
    model = Finding
    fields = ["start_ms", "end_ms", "category", "location", "risk", "confidence", "review_status", "is_demo", "model_id"]
    readonly_fields = fields


class VideoInline(ReadOnlyInline):
    model = Video
    fields = ["original_name", "state", "duration_s", "width", "height", "fps", "size_bytes", "error_message"]
    readonly_fields = fields


@admin.register(ProcedureSession)
class ProcedureSessionAdmin(admin.ModelAdmin):
    list_display = ["title", "procedure_type", "mode", "status", "clinician", "created_at", "signed_at"]
    list_filter = ["procedure_type", "status", "mode", "clinician", "created_at", "signed_at"]
    search_fields = ["title", "patient_ref", "encounter_ref", "clinician__username", "id"]
    date_hierarchy = "created_at"
    readonly_fields = ["id", "created_at", "updated_at", "signed_by", "signed_at"]
    inlines = [VideoInline, FindingInline]

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status == SessionStatus.SIGNED:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.status == SessionStatus.SIGNED:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(Video)
class VideoAdmin(admin.ModelAdmin):
    list_display = ["id", "session", "state", "duration_s", "width", "height", "size_bytes", "created_at"]
    list_filter = ["state", "created_at"]
    search_fields = ["id", "session__id", "sha256"]
    readonly_fields = [f.name for f in Video._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
