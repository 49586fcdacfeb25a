from django.urls import path

from . import api

urlpatterns = [
    path("procedures/", api.ProcedureSessionListCreate.as_view(), name="api-procedure-list"),
    path("procedures/<uuid:session_id>/", api.ProcedureSessionDetail.as_view(), name="api-procedure-detail"),
    path("procedures/<uuid:session_id>/sign/", api.ProcedureSessionSign.as_view(), name="api-procedure-sign"),
]
