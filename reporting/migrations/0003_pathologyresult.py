"""Pathology results entered after sign-off (reporting.models.PathologyResult); QA reviewers
may view them in admin, like the other clinical records (0002_qa_view_permissions)."""

import django.core.validators
import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


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
                                                  codename="view_pathologyresult"))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for qa in Group.objects.filter(name="qa_reviewer"):
        qa.permissions.remove(*Permission.objects.filter(content_type__app_label="reporting",
                                                         codename="view_pathologyresult"))


class Migration(migrations.Migration):

    dependencies = [
        ('procedures', '0005_recordings_numbered_and_playback'),
        ('reporting', '0002_qa_view_permissions'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='PathologyResult',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('polyp_id', models.CharField(max_length=64)),
                ('histology', models.CharField(choices=[('tubular_adenoma', 'Tubular adenoma'), ('tubulovillous_adenoma', 'Tubulovillous adenoma'), ('villous_adenoma', 'Villous adenoma'), ('adenoma_high_grade_dysplasia', 'Adenoma with high-grade dysplasia'), ('sessile_serrated', 'Sessile serrated lesion'), ('sessile_serrated_dysplasia', 'Sessile serrated lesion with dysplasia'), ('traditional_serrated_adenoma', 'Traditional serrated adenoma'), ('hyperplastic', 'Hyperplastic polyp'), ('carcinoma', 'Carcinoma'), ('other', 'Other')], max_length=32)),
                ('note', models.CharField(blank=True, default='', max_length=200, validators=[django.core.validators.RegexValidator('^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f\\t\\n\\r]+$', 'Use one line of text without control characters (no tabs, line breaks or invisible characters such as U+0013).', code='control_characters')])),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('entered_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('session', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='pathology_results', to='procedures.proceduresession')),
            ],
            options={
                'ordering': ['session', 'created_at'],
                'indexes': [models.Index(fields=['session', 'polyp_id', 'created_at'], name='pathology_latest_idx')],
                'constraints': [models.CheckConstraint(condition=models.Q(('histology', 'pending'), _negated=True), name='pathology_not_pending'), models.CheckConstraint(condition=models.Q(('polyp_id', ''), _negated=True), name='pathology_names_a_polyp')],
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
