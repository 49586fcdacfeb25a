"""The audit log in admin: readable by QA, changeable and deletable by nobody."""

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.sites import NotRegistered
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from .admin_base import NoWritesMixin


class ActorFilter(admin.SimpleListFilter):
    title = "user"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        actors = (
            LogEntry.objects.exclude(actor=None)
            .values_list("actor_id", "actor__username")
            .distinct()
            .order_by("actor__username")
        )
        return [(str(pk), name) for pk, name in actors]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            # A hand-edited URL: admin shows its "invalid filter" page, not a server error.
            raise IncorrectLookupParameters(f"Unknown user filter {value!r}.")
        return queryset.filter(actor_id=int(value))


class ReadOnlyLogEntryAdmin(NoWritesMixin, LogEntryAdmin):
    # Audit entries are evidence. Not even a superuser changes or deletes them here;
    # retention is handled outside the application, by the database's own procedures.
    list_filter = ["action", ActorFilter, "content_type", "timestamp"]
    search_fields = [*LogEntryAdmin.search_fields, "object_pk"]

    def get_actions(self, request):
        return {}


try:
    admin.site.unregister(LogEntry)
except NotRegistered:  # pragma: no cover - auditlog always registers it
    pass
admin.site.register(LogEntry, ReadOnlyLogEntryAdmin)


class AuditedUserAdmin(UserAdmin):
    """Users who appear in the audit trail are deactivated, never deleted: deleting them
    would leave their entries without an author."""

    def has_delete_permission(self, request, obj=None):
        if obj is not None and LogEntry.objects.filter(actor=obj).exists():
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a bulk delete would bypass the check above
        return actions


User = get_user_model()
try:
    admin.site.unregister(User)
except NotRegistered:  # pragma: no cover
    pass
admin.site.register(User, AuditedUserAdmin)
