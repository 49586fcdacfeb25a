"""The schema endpoint: JSON by default - an error such as a 401 too - and YAML when asked for
(drf-spectacular's own view puts YAML first, so its errors came back as YAML)."""

from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView
from rest_framework.renderers import JSONRenderer


class SchemaView(SpectacularAPIView):
    renderer_classes = [OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2]

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400:  # an error is the API's JSON envelope, not a schema document
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
