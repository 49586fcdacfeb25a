"""REST API v1 and its OpenAPI schema. Each app wires its own api module here."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularSwaggerView

from analysis import api as analysis_api
from analysis import recordings_api, uploads_api

from . import api_auth, api_errors
from .api_schema_view import SchemaView

urlpatterns = [
    path("v1/auth/token/", api_auth.ObtainTokenView.as_view(), name="api-token"),
    path("v1/", include("procedures.api_urls")),
    path("v1/procedures/<uuid:session_id>/video/", recordings_api.SessionVideos.as_view(), name="api-procedure-video"),
    path("v1/procedures/<uuid:session_id>/uploads/", uploads_api.SessionUploads.as_view(), name="api-procedure-uploads"),
    path("v1/procedures/<uuid:session_id>/uploads/<uuid:upload_id>/", uploads_api.SessionUpload.as_view(),
         name="api-procedure-upload"),
    path(
        "v1/procedures/<uuid:session_id>/findings/", analysis_api.SessionFindingList.as_view(),
        name="api-procedure-findings",
    ),
    path("v1/findings/<uuid:finding_id>/", analysis_api.FindingDetail.as_view(), name="api-finding-detail"),
    path("v1/", include("exports.api_urls")),
    path("v1/", include("reporting.api_urls")),
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"", api_errors.unknown_api_path, name="api-unknown-path"),  # last: anything else under /api/ is a JSON 404
]
