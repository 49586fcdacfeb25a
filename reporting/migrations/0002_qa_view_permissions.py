"""QA reviewers read structured reports and timeline marks in admin (view only), like the
other clinical records (medvision.0001_roles)."""

from django.db import migrations

MODELS = ("structuredreport", "timelinemark")


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; they are needed now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    qa, _ = Group.objects.get_or_create(name="qa_reviewer")
    qa.permissions.add(*Permission.objects.filter(content_type__app_label="reporting",
                                                  codename__in=[f"view_{m}" for m in MODELS]))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for qa in Group.objects.filter(name="qa_reviewer"):
        qa.permissions.remove(*Permission.objects.filter(content_type__app_label="reporting",
                                                         codename__in=[f"view_{m}" for m in MODELS]))


class Migration(migrations.Migration):
    dependencies = [("reporting", "0001_initial"), ("medvision", "0002_qa_views_addenda")]
    operations = [migrations.RunPython(grant, revoke)]
