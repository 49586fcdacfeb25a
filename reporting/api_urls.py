"""The structured report's API routes, wired under /api/v1/ by medvision/api_urls.py."""

from django.urls import path

from . import api

urlpatterns = [
    path("procedures/<uuid:session_id>/report/", api.SessionReport.as_view(), name="api-procedure-report"),
    path("procedures/<uuid:session_id>/marks/", api.SessionMarks.as_view(), name="api-procedure-marks"),
    path("procedures/<uuid:session_id>/marks/<uuid:mark_id>/", api.SessionMark.as_view(), name="api-procedure-mark"),
    path("procedures/<uuid:session_id>/pathology/", api.SessionPathology.as_view(), name="api-procedure-pathology"),
]
