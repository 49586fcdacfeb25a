from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # exits non-zero on drift
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_roles_exist_and_qa_can_only_view():
    names = set(Group.objects.values_list("name", flat=True))
    assert {"clinician", "qa_reviewer", "ehr_connector"} <= names
    qa_perms = Permission.objects.filter(group__name="qa_reviewer")
    codenames = set(qa_perms.values_list("codename", flat=True))
    assert {"view_proceduresession", "view_finding", "view_frame", "view_logentry", "view_video", "view_addendum"} <= codenames
    assert all(c.startswith("view_") for c in codenames), codenames
