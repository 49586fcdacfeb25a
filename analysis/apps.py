from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "analysis"
    verbose_name = "Analysis"

    def ready(self):
        from auditlog.registry import auditlog

        from .models import Finding, Frame, ResumableUpload

        auditlog.register(Frame, exclude_fields=["raw_output"])
        auditlog.register(Finding)
        # Created, completed, refused, cancelled: audited; each chunk's offset is not.
        auditlog.register(ResumableUpload, exclude_fields=["offset", "expires_at", "updated_at"])

        from django.db.models.signals import post_delete

        from medvision.file_cleanup import delete_files

        post_delete.connect(delete_files, sender=Frame, dispatch_uid="frame_file_cleanup")

        from .uploads import delete_part_file

        # However the row goes (cancelled, expired, its session deleted), its bytes go too.
        post_delete.connect(delete_part_file, sender=ResumableUpload, dispatch_uid="upload_part_cleanup")

        from procedures.workflow import session_signing

        from .signoff import refuse_undecided_proposals

        session_signing.connect(refuse_undecided_proposals, dispatch_uid="analysis_refuse_undecided_proposals")

        # Register the tasks in every process, web servers included: Celery's autodiscovery
        # only runs in a worker, and analysis.dispatch sends tasks by their registered name.
        from . import tasks  # noqa: F401
