"""Portal routes for exports, under /procedures/<id>/ beside the session pages."""

from django.urls import path

from . import views

app_name = "exports"

urlpatterns = [
    path("<uuid:session_id>/report/", views.session_report, name="report"),
    path("<uuid:session_id>/report.pdf", views.session_report_pdf, name="report-pdf"),
    path("<uuid:session_id>/export.zip", views.session_bundle, name="bundle"),
]
