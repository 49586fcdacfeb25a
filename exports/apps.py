from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = "Exports"

    def ready(self):
        from auditlog.registry import auditlog

        from .models import Export

        auditlog.register(Export)
