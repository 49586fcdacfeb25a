"""Create the role groups and give QA reviewers view-only permissions on clinical models."""

from django.db import migrations

# QA may read every clinical record and the audit log in admin, and change none of it.
QA_VIEW_MODELS = [
    ("procedures", "proceduresession"),
    ("procedures", "video"),
    ("analysis", "frame"),
    ("analysis", "finding"),
    ("voice", "conversation"),
    ("voice", "utterance"),
    ("exports", "export"),
    ("auditlog", "logentry"),
]


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    # Permissions are normally created after all migrations; we need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None

    for name in ("clinician", "qa_reviewer", "ehr_connector"):
        Group.objects.get_or_create(name=name)
    qa = Group.objects.get(name="qa_reviewer")
    perms = Permission.objects.filter(
        content_type__app_label__in={a for a, _ in QA_VIEW_MODELS},
        codename__in=[f"view_{m}" for _, m in QA_VIEW_MODELS],
    )
    qa.permissions.set(perms)


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(
        name__in=("clinician", "qa_reviewer", "ehr_connector")
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auditlog", "__latest__"),
        ("procedures", "0001_initial"),
        ("analysis", "0001_initial"),
        ("voice", "0001_initial"),
        ("exports", "0001_initial"),
    ]
    operations = [migrations.RunPython(create_roles, drop_roles)]
