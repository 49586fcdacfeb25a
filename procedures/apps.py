from django.apps import AppConfig


class ProceduresConfig(AppConfig):
    name = "procedures"
    verbose_name = "Procedures"

    def ready(self):
        from auditlog.registry import auditlog

        from .models import Addendum, ProcedureSession, Video

        auditlog.register(ProcedureSession)
        auditlog.register(Addendum)
        auditlog.register(Video, exclude_fields=["progress", "progress_detail"])
