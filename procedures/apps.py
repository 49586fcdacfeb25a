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

        from django.db.models.signals import post_delete

        from medvision.file_cleanup import delete_files

        post_delete.connect(delete_files, sender=Video, dispatch_uid="video_file_cleanup")
