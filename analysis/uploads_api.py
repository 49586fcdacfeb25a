"""tus 1.0 endpoints for resumable recording uploads (protocol: ``analysis.tus_protocol``,
storage: ``analysis.uploads``).

    POST    /api/v1/procedures/{id}/uploads/          creation: Upload-Length, Upload-Metadata
    OPTIONS /api/v1/procedures/{id}/uploads/          discovery: version, extensions, max size
    HEAD    /api/v1/procedures/{id}/uploads/{upload}/ the stored offset
    PATCH   /api/v1/procedures/{id}/uploads/{upload}/ append a chunk (application/offset+octet-stream)
    DELETE  /api/v1/procedures/{id}/uploads/{upload}/ termination
    GET     /api/v1/procedures/{id}/uploads/{upload}/ (ours, JSON) what became of it: checking,
                                                      the recording, or why it was refused

DRF views, so authentication (token or signed-in session with CSRF), the owner/unsigned
rules and throttling are the API's own. Every answer carries ``Tus-Resumable``; a refusal
is the status the tus spec names with a JSON ``{"error": {"code", "message"}}`` body.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from medvision.api_errors import ErrorSerializer
from procedures import access

from . import tus_protocol as tus
from . import uploads
from .models import ResumableUpload


def _tus_error(exc: tus.TusError) -> Response:
    response = Response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)
    if exc.status == 412:
        response["Tus-Version"] = tus.TUS_VERSION
    return response


def _media_type(request) -> str:
    return (request.content_type or "").split(";")[0].strip().lower()


def _discovery_headers(response: Response) -> Response:
    response["Tus-Version"] = tus.TUS_VERSION
    response["Tus-Extension"] = tus.EXTENSIONS
    response["Tus-Max-Size"] = str(settings.VIDEO_MAX_UPLOAD_BYTES)
    response["Tus-Checksum-Algorithm"] = ",".join(sorted(tus.CHECKSUM_ALGORITHMS))
    # Not a tus header: the most one PATCH may carry here (larger bodies get 413).
    response["X-Max-Chunk-Size"] = str(settings.TUS_MAX_CHUNK_BYTES)
    return response


def _offset_headers(response: Response, upload: ResumableUpload) -> Response:
    response["Upload-Offset"] = str(upload.offset)
    response["Upload-Length"] = str(upload.length)
    response["Upload-Expires"] = tus.http_date(upload.expires_at)
    response["Cache-Control"] = "no-store"
    return response


# --- the OpenAPI description (what drf-spectacular cannot see in a header-driven protocol) ---

def _header(name: str, description: str, *, required=False, schema=None, enum=None):
    return OpenApiParameter(name=name, location=OpenApiParameter.HEADER, required=required, description=description,
                            type=schema or str, enum=enum)


TUS_HEADER = _header("Tus-Resumable", "The tus version the client speaks: 1.0.0.", required=True, enum=["1.0.0"])
_ERROR = {
    409: (ErrorSerializer, "Upload-Offset is not the server's offset (HEAD first), or the upload is complete."),
    410: (ErrorSerializer, "The upload expired, was refused or its data is gone; upload the recording again."),
    412: (ErrorSerializer, "Tus-Resumable is missing or not 1.0.0 (Tus-Version says what is spoken)."),
    413: (ErrorSerializer, "Larger than the recording limit (creation), or the chunk goes past Upload-Length or over "
                           "TUS_MAX_CHUNK_BYTES."),
    460: (ErrorSerializer, "Checksum mismatch: the chunk was discarded; send it again."),
    507: (ErrorSerializer, "The server has no room for a file of this length now."),
}


def _errors(*codes):
    return {code: OpenApiResponse(_ERROR[code][0], description=_ERROR[code][1]) for code in codes}


class UploadStatusSerializer(serializers.ModelSerializer):
    recording = serializers.SerializerMethodField(help_text="The recording it became (once state is done).")

    class Meta:
        model = ResumableUpload
        fields = ["id", "state", "offset", "length", "error_code", "error_message", "expires_at", "video",
                  "recording"]
        read_only_fields = fields

    def get_recording(self, upload) -> int | None:
        return upload.video.number if upload.video_id else None


class _TusView(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "upload"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttling first
        if request.method != "OPTIONS":
            tus.check_version(request.headers.get("Tus-Resumable"))

    def handle_exception(self, exc):
        if isinstance(exc, tus.TusError):
            return _tus_error(exc)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Tus-Resumable"] = tus.TUS_VERSION
        return response

    def options(self, request, *args, **kwargs):
        return _discovery_headers(Response(status=status.HTTP_204_NO_CONTENT))


class SessionUploads(_TusView):
    """tus creation: ``POST`` with ``Upload-Length`` (bytes) and optional ``Upload-Metadata``
    (``filename``); 201 with ``Location``. The recording must fit VIDEO_MAX_UPLOAD_BYTES
    (``Tus-Max-Size``); only the session's clinician, only while it is unsigned."""

    @extend_schema(
        request=None,
        parameters=[TUS_HEADER,
                    _header("Upload-Length", "The file's size in bytes.", required=True,
                            schema={"type": "integer", "minimum": 1}),
                    _header("Upload-Metadata", "Comma-separated 'key base64value' pairs; 'filename' is kept.")],
        responses={201: OpenApiResponse(description="Created; Location names the upload, Upload-Expires when an "
                                                    "unfinished upload is deleted."),
                   **_errors(412, 413, 507)})
    def post(self, request, session_id):
        session = access.get_visible_session(request.user, session_id)
        if request.headers.get("Upload-Defer-Length"):
            raise tus.TusError(400, "defer_length", "Deferred lengths are not supported; send Upload-Length.")
        length = tus.parse_length(request.headers.get("Upload-Length"), "Upload-Length")
        metadata = tus.parse_metadata(request.headers.get("Upload-Metadata"))
        if _media_type(request) == tus.OCTET_STREAM and int(request.META.get("CONTENT_LENGTH") or 0):
            raise tus.TusError(400, "creation_with_upload",
                               "Send the file's bytes with PATCH after creating the upload (creation-with-upload "
                               "is not supported).")
        upload = uploads.upload_create(actor=request.user, session=session, length=length, metadata=metadata)
        response = Response(status=status.HTTP_201_CREATED)
        response["Location"] = reverse("api-procedure-upload", args=[session.pk, upload.pk])
        response["Upload-Expires"] = tus.http_date(upload.expires_at)
        return response


class SessionUpload(_TusView):
    """One resumable upload: ``HEAD`` its offset, ``PATCH`` a chunk at that offset,
    ``DELETE`` to cancel it, ``GET`` (JSON) what became of it."""

    def _upload(self, request):
        return uploads.upload_get(actor=request.user, session_id=self.kwargs["session_id"],
                                  upload_id=self.kwargs["upload_id"])

    @extend_schema(parameters=[TUS_HEADER],
                   responses={200: OpenApiResponse(description="Upload-Offset and Upload-Length headers."),
                              **_errors(410, 412)})
    def head(self, request, session_id, upload_id):
        upload = self._upload(request)
        if upload.state == "refused":
            raise tus.TusError(410, "refused", f"This upload was refused: {upload.error_message}")
        return _offset_headers(Response(status=status.HTTP_200_OK), upload)

    @extend_schema(parameters=[TUS_HEADER], responses={200: UploadStatusSerializer, **_errors(410, 412)})
    def get(self, request, session_id, upload_id):
        upload = self._upload(request)
        return _offset_headers(Response(UploadStatusSerializer(upload).data), upload)

    @extend_schema(
        request={tus.OCTET_STREAM: OpenApiTypes.BINARY},
        parameters=[TUS_HEADER,
                    _header("Upload-Offset", "The server's current offset (from HEAD or the last PATCH).",
                            required=True, schema={"type": "integer", "minimum": 0}),
                    _header("Upload-Checksum", "'<algorithm> <base64 digest>' of this chunk (sha1, sha256 or md5).")],
        responses={204: OpenApiResponse(description="Stored; Upload-Offset is the new offset."),
                   **_errors(409, 410, 412, 413, 460)})
    def patch(self, request, session_id, upload_id):
        upload = self._upload(request)
        if _media_type(request) != tus.OCTET_STREAM:
            raise tus.TusError(415, "content_type", f"Send the chunk as Content-Type: {tus.OCTET_STREAM}.")
        offset = tus.parse_length(request.headers.get("Upload-Offset"), "Upload-Offset")
        checksum = tus.parse_checksum(request.headers.get("Upload-Checksum"))
        declared = request.META.get("CONTENT_LENGTH")
        upload = uploads.upload_append(
            actor=request.user, upload=upload, offset=offset, body=request._request,
            declared_length=int(declared) if declared and str(declared).isdigit() else None, checksum=checksum)
        return _offset_headers(Response(status=status.HTTP_204_NO_CONTENT), upload)

    @extend_schema(parameters=[TUS_HEADER],
                   responses={204: OpenApiResponse(description="Cancelled; the stored bytes are deleted."),
                              **_errors(409, 410, 412)})
    def delete(self, request, session_id, upload_id):
        uploads.upload_terminate(actor=request.user, upload=self._upload(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
