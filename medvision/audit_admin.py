"""The audit log in admin: readable by QA, changeable and deletable by nobody."""

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.sites import NotRegistered
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

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


# What an ACCESS entry's ``additional_data["what"]`` (medvision.audit.log_access) means.
OPENED = {
    "session": "Session page", "session_list": "Sessions list", "live page": "Live page",
    "frame_image": "Key frame image", "video_file": "Recording (video file)", "ws:voice": "Voice copilot",
    "api:session": "API: session", "api:session_list": "API: sessions list", "api:findings": "API: findings",
    "api:finding": "API: finding", "api:videos": "API: recordings",
    "voice:session_summary": "Voice copilot: session summary", "voice:list_findings": "Voice copilot: findings",
    "voice:describe_finding": "Voice copilot: one finding",
    "voice:look_again": "Voice copilot: looked again at a frame",
}
DETAIL_NAMES = {"frame": "frame", "video": "recording", "served": "served", "object": "object", "kind": "kind"}


def opened_label(what) -> str:
    """``additional_data["what"]`` as a person reads it (an unknown one: its words)."""
    what = str(what or "")
    if what in OPENED:
        return OPENED[what]
    prefix, _, rest = what.partition(":")
    if rest and prefix in ("admin", "export"):
        rest = rest.replace("_list", " list").replace("_", " ")
        return f"{prefix.capitalize()}: {rest}"
    return what.replace("_", " ").capitalize() or "(not recorded)"


class ReadOnlyLogEntryAdmin(NoWritesMixin, LogEntryAdmin):
    # Audit entries are evidence. Not even a superuser changes or deletes them here;
    # retention is handled outside the application, by the database's own procedures.
    list_filter = ["action", ActorFilter, "content_type", "timestamp"]
    search_fields = [*LogEntryAdmin.search_fields, "object_pk"]
    # auditlog shows nothing under "Changes" for an ACCESS entry: for reads of clinical data
    # the question QA asks is what was opened, so that is what the column says for them.
    list_display = ["created", "resource_url", "action", "msg_short", "user_url", "cid_url"]
    readonly_fields = [*LogEntryAdmin.readonly_fields, "opened"]
    fieldsets = [
        (None, {"fields": ["created", "user_url", "resource_url", "cid"]}),
        ("Changes", {"fields": ["action", "msg"]}),
        ("What was opened", {"fields": ["opened"]}),
    ]

    @staticmethod
    def _is_access(obj) -> bool:
        return obj.action == LogEntry.Action.ACCESS

    @admin.display(description="Resource")
    def resource_url(self, obj):
        if not self._is_access(obj):
            return super().resource_url(obj)
        # The object read, named and linked (title and id: a title alone is not unique).
        name = f"{obj.content_type.name.capitalize()}: {obj.object_repr}" if obj.content_type_id else obj.object_repr
        try:
            link = reverse(f"admin:{obj.content_type.app_label}_{obj.content_type.model}_change", args=[obj.object_pk])
        except NoReverseMatch:
            return format_html("{} <small>({})</small>", name, obj.object_pk)
        return format_html('<a href="{}">{}</a> <small>({})</small>', link, name, obj.object_pk)

    def _details(self, obj) -> list[tuple[str, str]]:
        data = obj.additional_data if isinstance(obj.additional_data, dict) else {}
        return [(DETAIL_NAMES.get(k, str(k).replace("_", " ")), str(v)) for k, v in data.items() if k != "what"]

    @admin.display(description="Changes / opened")
    def msg_short(self, obj):
        if not self._is_access(obj):
            return super().msg_short(obj)
        data = obj.additional_data if isinstance(obj.additional_data, dict) else {}
        details = "; ".join(f"{k} {v}" for k, v in self._details(obj))
        return format_html("Opened: {}{}", opened_label(data.get("what")), f" ({details})" if details else "")

    @admin.display(description="Opened")
    def opened(self, obj):
        if not self._is_access(obj):
            return "—"
        data = obj.additional_data if isinstance(obj.additional_data, dict) else {}
        rows = [("what", opened_label(data.get("what")))] + self._details(obj)
        return format_html('<table class="audit-opened">{}</table>',
                           format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))

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
