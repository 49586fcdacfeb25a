from django.apps import AppConfig


class VoiceConfig(AppConfig):
    name = "voice"
    verbose_name = "Voice copilot"

    def ready(self):
        from auditlog.registry import auditlog

        from .models import Conversation, Utterance

        auditlog.register(Conversation)
        auditlog.register(Utterance)
