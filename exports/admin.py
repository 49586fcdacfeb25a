from django.contrib import admin

from medvision.admin_base import AuditedReadsAdmin, NoWritesAdmin

from .models import Export


@admin.register(Export)
class ExportAdmin(AuditedReadsAdmin, NoWritesAdmin):
    list_display = ["kind", "session", "created_by", "created_at", "is_final", "size_bytes", "sha256"]
    list_filter = ["kind", "is_final", "created_at", "created_by"]
    search_fields = ["session__id", "sha256", "created_by__username"]
    readonly_fields = [f.name for f in Export._meta.fields]
