from django.apps import AppConfig


class MedvisionConfig(AppConfig):
    name = "medvision"
    verbose_name = "MedVision (roles and audit)"

    def ready(self):
        from . import audit_admin  # noqa: F401 - replaces auditlog's admin with a read-only one
