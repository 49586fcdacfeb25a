from django.urls import path

from . import api

urlpatterns = [
    path("procedures/<uuid:session_id>/export/", api.SessionBundleExport.as_view(), name="api-procedure-export"),
    path("procedures/<uuid:session_id>/fhir/", api.SessionFhirExport.as_view(), name="api-procedure-fhir"),
]
