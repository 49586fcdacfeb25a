from django.db import migrations


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    qa, _ = Group.objects.get_or_create(name="qa_reviewer")
    qa.permissions.add(*Permission.objects.filter(content_type__app_label="procedures", codename="view_addendum"))


class Migration(migrations.Migration):
    dependencies = [("medvision", "0001_roles"), ("procedures", "0003_live_and_addenda")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
