"""REST API for exports (v1): the documentation bundle (zip) and the FHIR R4 Bundle.

Anyone who may read the session may export it (owner, QA reviewer, administrator, and an
EHR connector once the session is signed); each download is an Export record plus audit
entries. An unsigned session exports as "preliminary", a signed one as "final".
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from medvision.api_contract import StrictQueryParamsMixin
from medvision.api_errors import ErrorSerializer
from procedures import access

from . import services
from .views import download


class DocumentNegotiation(BaseContentNegotiation):
    """The document's media type is fixed by the endpoint; errors are JSON. Whatever the
    client's ``Accept`` says (``application/zip``, ``application/fhir+json``, ``*/*``), it
    gets the document, or a JSON error it can read - never a 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


JSON_ERRORS = {(code, "application/json"): ErrorSerializer for code in (401, 404)}


class _DocumentView(StrictQueryParamsMixin, APIView):
    renderer_classes = [JSONRenderer]
    content_negotiation_class = DocumentNegotiation

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "private, no-store"
        return response


class SessionBundleExport(_DocumentView):
    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="Zip: metadata.json, summary.json, findings.csv, findings.json, report.txt, "
                            "frames/*.jpg, transcript.json/.txt (when there was a voice conversation), manifest.json.",
            ),
            **JSON_ERRORS,
        },
    )
    def get(self, request, session_id):
        """Documentation bundle of the session (final when signed, else preliminary)."""
        session = access.get_visible_session(request.user, session_id)
        return download(services.bundle_export(actor=request.user, session=session))


class SessionFhirExport(_DocumentView):
    @extend_schema(
        responses={
            (200, "application/fhir+json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="FHIR R4 (R4B models) Bundle of type collection: DiagnosticReport, Procedure, one "
                            "Observation per confirmed or edited finding, Media (inline JPEG) per key frame.",
            ),
            **JSON_ERRORS,
        },
    )
    def get(self, request, session_id):
        """FHIR Bundle of the session's report (final when signed, else preliminary)."""
        session = access.get_visible_session(request.user, session_id)
        result = services.fhir_export(actor=request.user, session=session)
        response = download(result)
        # Inline: an EHR reads it as a document, not a file to save.
        response["Content-Disposition"] = f'inline; filename="{result.filename}"'
        return response
