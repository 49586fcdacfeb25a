from django.apps import AppConfig


class MedvisionConfig(AppConfig):
    name = "medvision"
    verbose_name = "MedVision (roles and audit)"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_delete

        from . import audit_admin  # noqa: F401 - replaces auditlog's admin with a read-only one
        from .audit import protect_audited_users

        pre_delete.connect(protect_audited_users, sender=get_user_model(), dispatch_uid="protect_audited_users")
