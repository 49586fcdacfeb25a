"""The audit log in admin says, for ACCESS entries, what was opened and of which session."""

import pytest
from auditlog.models import LogEntry
from django.test import Client
from django.urls import reverse

from medvision.audit import log_access
from medvision.audit_admin import opened_label

pytestmark = pytest.mark.django_db


def qa_client(qa_user) -> Client:
    client = Client()
    client.force_login(qa_user)
    return client


def test_the_list_says_what_an_access_entry_opened_and_links_the_session(session, clinician, qa_user):
    log_access(actor=clinician, instance=session, what="frame_image", frame="f-123")
    url = reverse("admin:auditlog_logentry_changelist")
    page = qa_client(qa_user).get(url, {"action__exact": str(LogEntry.Action.ACCESS)}).content.decode()
    assert "Opened: Key frame image (frame f-123)" in page
    assert f"({session.pk})" in page and session.title in page
    assert reverse("admin:procedures_proceduresession_change", args=[session.pk]) in page


def test_the_detail_page_shows_what_was_opened(session, clinician, qa_user):
    entry = log_access(actor=clinician, instance=session, what="video_file", video="v-9", served="playback_copy")
    page = qa_client(qa_user).get(reverse("admin:auditlog_logentry_change", args=[entry.pk])).content.decode()
    assert "What was opened" in page
    assert "<tr><th>what</th><td>Recording (video file)</td></tr>" in page
    assert "<tr><th>recording</th><td>v-9</td></tr>" in page and "<td>playback_copy</td>" in page


def test_a_change_entry_keeps_auditlogs_changes_column(session):
    from django.contrib import admin

    entry = LogEntry.objects.get_for_object(session).filter(action=LogEntry.Action.CREATE).first()
    assert entry is not None
    model_admin = admin.site._registry[LogEntry]
    assert str(model_admin.msg_short(entry)).startswith(f"{len(entry.changes_dict)} change")  # auditlog's words
    assert model_admin.opened(entry) == "—"


def test_unknown_and_prefixed_kinds_read_as_words():
    assert opened_label("admin:finding_list") == "Admin: finding list"
    assert opened_label("export:fhir") == "Export: fhir"
    assert opened_label("session") == "Session page"
    assert opened_label(None) == "(not recorded)"
