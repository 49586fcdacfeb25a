from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "reporting"
    verbose_name = "Structured reports and quality"

    def ready(self):
        from auditlog.registry import auditlog

        from .models import StructuredReport, TimelineMark

        auditlog.register(StructuredReport)
        auditlog.register(TimelineMark)
