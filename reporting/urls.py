"""Portal routes of the structured report, under /procedures/<id>/ beside the session pages."""

from django.urls import path

from . import views

app_name = "reporting"

urlpatterns = [
    path("<uuid:session_id>/report/edit/", views.report_edit, name="edit"),
    path("<uuid:session_id>/report/prefill/", views.report_prefill, name="prefill"),
    path("<uuid:session_id>/report/surveillance/", views.surveillance_confirm, name="surveillance"),
    path("<uuid:session_id>/report/pathology/", views.pathology_record, name="pathology"),
]
