from django.contrib import admin

from .models import Export


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ["kind", "session", "created_by", "created_at", "is_final", "size_bytes", "sha256"]
    list_filter = ["kind", "is_final", "created_at", "created_by"]
    search_fields = ["session__id", "sha256", "created_by__username"]
    readonly_fields = [f.name for f in Export._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
