"""Voice copilot conversations: what was said, by whom, and which tools ran."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey("procedures.ProcedureSession", on_delete=models.CASCADE, related_name="conversations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    model = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Upstream Realtime sessions end (time limit, network); the relay reconnects and goes on
    # with the same Conversation. How many times that happened.
    reconnects = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["started_at"]
        indexes = [models.Index(fields=["session", "started_at"], name="conversation_session_time")]

    def __str__(self) -> str:
        return f"Conversation {self.id} on session {self.session_id}"


class UtteranceRole(models.TextChoices):
    USER = "user", "Clinician"
    ASSISTANT = "assistant", "Assistant"
    TOOL = "tool", "Tool call"
    SYSTEM = "system", "System"


class Utterance(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="utterances")
    role = models.CharField(max_length=10, choices=UtteranceRole.choices)
    text = models.TextField(blank=True)
    upstream_item_id = models.CharField(max_length=100, blank=True)
    tool_name = models.CharField(max_length=64, blank=True)
    tool_arguments = models.JSONField(null=True, blank=True)
    tool_result = models.JSONField(null=True, blank=True)
    # Assistant speech the clinician interrupted (barge-in): how much of it was played, in ms.
    # The model's own context is truncated to the same point, so ``text`` may say more than
    # was heard.
    interrupted_at_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="utterance_conversation_time")]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.text[:60]}"
