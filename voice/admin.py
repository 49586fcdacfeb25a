from django.contrib import admin

from .models import Conversation, Utterance


class UtteranceInline(admin.TabularInline):
    model = Utterance
    extra = 0
    can_delete = False
    fields = ["created_at", "role", "text", "tool_name", "tool_arguments", "tool_result"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "session", "user", "model", "started_at", "ended_at"]
    list_filter = ["model", "started_at"]
    search_fields = ["session__id", "user__username", "utterances__text"]
    readonly_fields = ["id", "session", "user", "model", "started_at", "ended_at"]
    inlines = [UtteranceInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
