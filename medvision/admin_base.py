"""What every clinical-data admin page shares: no writes, and audited reads.

Admin follows the services' rules: clinical records change through the portal's and the
API's workflow (audited there, with their checks), never by editing rows here; and an admin
page that shows clinical data is a read like any other, so it writes ACCESS entries.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote

from .audit import log_access, log_access_many


class NoWritesMixin:
    """The one "no writes" rule, for model admins and inlines alike (superusers included)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class NoWritesAdmin(NoWritesMixin, admin.ModelAdmin):
    pass


class ReadOnlyInline(NoWritesMixin, admin.TabularInline):
    """Related rows shown on a parent's page, never edited or deleted there."""

    extra = 0
    can_delete = False
    show_change_link = True


class AuditedReadsAdmin(admin.ModelAdmin):
    """ACCESS entries for the change (view) page and the list page. Entries name the
    session each object belongs to, like the portal's and the API's reads."""

    def audited_session(self, obj):
        return obj.session

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if getattr(response, "status_code", None) == 200:
            obj = self.get_object(request, unquote(object_id))
            if obj is not None:
                log_access(actor=request.user, instance=self.audited_session(obj),
                           what=f"admin:{self.opts.model_name}", object=str(obj.pk))
        return response

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl") if hasattr(response, "context_data") else None
        if changelist is not None:
            log_access_many(actor=request.user, what=f"admin:{self.opts.model_name}_list",
                            instances=[self.audited_session(obj) for obj in changelist.result_list])
        return response
