from django.contrib import admin
from django.db.models import Count

from medvision.admin_base import AuditedReadsAdmin, NoWritesAdmin, ReadOnlyInline

from .models import Conversation, Utterance


class UtteranceInline(ReadOnlyInline):
    model = Utterance
    show_change_link = False  # utterances have no page of their own
    fields = [
        "created_at",
        "role",
        "text",
        "interrupted_at_ms",
        "tool_name",
        "tool_arguments",
        "tool_result",
        "upstream_item_id",
    ]
    readonly_fields = fields
    ordering = ["created_at"]


@admin.register(Conversation)
class ConversationAdmin(AuditedReadsAdmin, NoWritesAdmin):
    """Read-only for everyone: a transcript is a record (QA reads it, nobody edits it)."""

    list_display = ["id", "session", "user", "model", "started_at", "ended_at", "reconnects", "utterance_count"]
    list_filter = ["model", "started_at"]
    list_select_related = ["session", "user"]
    search_fields = ["id", "session__id", "user__username", "utterances__text", "utterances__tool_name"]
    readonly_fields = ["id", "session", "user", "model", "started_at", "ended_at", "reconnects"]
    date_hierarchy = "started_at"
    inlines = [UtteranceInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_utterances=Count("utterances"))

    @admin.display(description="Entries", ordering="n_utterances")
    def utterance_count(self, obj):
        return obj.n_utterances
