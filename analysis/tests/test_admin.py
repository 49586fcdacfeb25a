"""The session's admin page lists its findings (analysis extends procedures' admin page, so
procedures itself knows nothing of findings), read-only like every clinical admin page."""

import pytest
from django.test import Client

from analysis.tests.factories import FindingFactory

pytestmark = pytest.mark.django_db


def test_a_sessions_admin_page_lists_its_findings_without_letting_anyone_edit_them(session, qa_user):
    finding = FindingFactory(session=session)
    client = Client()
    client.force_login(qa_user)
    page = client.get(f"/admin/procedures/proceduresession/{session.pk}/change/")
    assert page.status_code == 200
    inline = next(f for f in page.context["inline_admin_formsets"] if f.opts.model._meta.model_name == "finding")
    assert [form.instance.pk for form in inline.formset.forms] == [finding.pk]
    assert not inline.has_add_permission and not inline.has_change_permission and not inline.has_delete_permission
