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
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from procedures import access

from . import tus_protocol as tus
from . import uploads
from .models import ResumableUpload


def _tus_error(exc: tus.TusError) -> Response:
    response = Response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)
    if exc.status == 412:
        response["Tus-Version"] = tus.TUS_VERSION
    return response


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

    @extend_schema(request=None, responses={201: OpenApiResponse(description="Created; Location names the upload.")})
    def post(self, request, session_id):
        session = access.get_visible_session(request.user, session_id)
        if request.headers.get("Upload-Defer-Length"):
            raise tus.TusError(400, "defer_length", "Deferred lengths are not supported; send Upload-Length.")
        length = tus.parse_length(request.headers.get("Upload-Length"), "Upload-Length")
        metadata = tus.parse_metadata(request.headers.get("Upload-Metadata"))
        if int(request.META.get("CONTENT_LENGTH") or 0):
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

    @extend_schema(responses={200: OpenApiResponse(description="Upload-Offset and Upload-Length headers.")})
    def head(self, request, session_id, upload_id):
        upload = self._upload(request)
        if upload.state == "refused":
            raise tus.TusError(410, "refused", f"This upload was refused: {upload.error_message}")
        return _offset_headers(Response(status=status.HTTP_200_OK), upload)

    @extend_schema(responses={200: UploadStatusSerializer})
    def get(self, request, session_id, upload_id):
        upload = self._upload(request)
        return _offset_headers(Response(UploadStatusSerializer(upload).data), upload)

    @extend_schema(request=None, responses={204: OpenApiResponse(description="Stored; Upload-Offset is the new offset.")})
    def patch(self, request, session_id, upload_id):
        upload = self._upload(request)
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type != tus.OCTET_STREAM:
            raise tus.TusError(415, "content_type", f"Send the chunk as Content-Type: {tus.OCTET_STREAM}.")
        offset = tus.parse_length(request.headers.get("Upload-Offset"), "Upload-Offset")
        checksum = tus.parse_checksum(request.headers.get("Upload-Checksum"))
        declared = request.META.get("CONTENT_LENGTH")
        upload = uploads.upload_append(
            actor=request.user, upload=upload, offset=offset, body=request._request,
            declared_length=int(declared) if declared and str(declared).isdigit() else None, checksum=checksum)
        return _offset_headers(Response(status=status.HTTP_204_NO_CONTENT), upload)

    @extend_schema(responses={204: OpenApiResponse(description="Cancelled; the stored bytes are deleted.")})
    def delete(self, request, session_id, upload_id):
        uploads.upload_terminate(actor=request.user, upload=self._upload(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
