from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "analysis"
    verbose_name = "Analysis"

    def ready(self):
        from auditlog.registry import auditlog

        from .models import Finding, Frame

        auditlog.register(Frame, exclude_fields=["raw_output"])
        auditlog.register(Finding)
