from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "reporting"
    verbose_name = "Structured reports and quality"

    def ready(self):
        from auditlog.registry import auditlog

        from .models import PathologyResult, StructuredReport, TimelineMark

        auditlog.register(StructuredReport)
        auditlog.register(TimelineMark)
        auditlog.register(PathologyResult)

        from procedures.workflow import session_signing

        from .validation import refuse_incomplete_report

        # A session is signed only with a complete structured report (reporting.validation).
        session_signing.connect(refuse_incomplete_report, dispatch_uid="reporting_refuse_incomplete_report")
