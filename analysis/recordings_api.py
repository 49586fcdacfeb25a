"""REST API for a session's recordings (v1): list them with their processing state, upload one.

Sessions are resolved through ``procedures.access`` like every API route; accepting the file
is ``analysis.recordings``.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from medvision.api_contract import StrictQueryParamsMixin
from medvision.api_errors import ERRORS, error_response
from medvision.api_pagination import DisclaimedPagination
from medvision.audit import log_access
from procedures import access
from procedures.api_errors import as_api_errors
from procedures.models import Video

from .recordings import VideoRejected, video_upload


class VideoSerializer(serializers.ModelSerializer):
    original_name = serializers.CharField(
        read_only=True, allow_null=True,
        help_text="The uploaded file's name; null for EHR connectors (names can carry patient details).")

    class Meta:
        model = Video
        fields = [
            "id", "number", "original_name", "sha256", "container", "codec", "duration_s", "fps", "width", "height",
            "interlaced", "start_time_s", "size_bytes", "state", "playback_state", "playback_progress", "playback_error", "progress", "progress_detail", "gate_counts", "summary", "error_message",
            "created_at", "processing_started_at", "processing_finished_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if self.context.get("hide_file_names"):
            data["original_name"] = None  # as the export bundle does: a file name can name the patient
        return data


class VideoUploadRequest(serializers.Serializer):
    file = serializers.FileField(help_text="The procedure recording (any container/codec ffmpeg decodes).")


class SessionVideos(StrictQueryParamsMixin, generics.ListAPIView):
    """``GET``: the session's recordings with their processing state and progress (a page,
    like every list). ``POST`` (multipart ``file``): upload a short recording in one request
    (at most VIDEO_SINGLE_REQUEST_MAX_BYTES, 64 MB by default); 202 with its processing
    state. Larger recordings use the resumable upload (``analysis.uploads_api``)."""

    parser_classes = [MultiPartParser]
    serializer_class = VideoSerializer
    pagination_class = DisclaimedPagination
    filter_backends = []
    queryset = Video.objects.none()  # for the schema generator; rows come from access rules

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Video.objects.none()
        self.session = access.get_visible_session(self.request.user, self.kwargs["session_id"])
        return self.session.videos.order_by("created_at")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        session = getattr(self, "session", None)
        context["hide_file_names"] = session is not None and access.sees_report_only(self.request.user, session)
        return context

    @extend_schema(responses={200: VideoSerializer(many=True), **ERRORS})
    def get(self, request, *args, **kwargs):
        response = self.list(request, *args, **kwargs)
        log_access(actor=request.user, instance=self.session, what="api:videos")
        return response

    @extend_schema(request={"multipart/form-data": VideoUploadRequest}, responses={202: VideoSerializer})
    def post(self, request, session_id):
        session = access.get_visible_session(request.user, session_id)
        as_api_errors(lambda: access.ensure_editable(request.user, session))
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        limit = min(settings.VIDEO_MAX_UPLOAD_BYTES, settings.VIDEO_SINGLE_REQUEST_MAX_BYTES)
        if declared > limit + 1024 * 1024:  # multipart overhead
            return error_response(
                "too_large", f"The upload is larger than the {limit / 1024**2:.0f} MB that one request may carry. "
                "Send larger recordings with the resumable upload (tus 1.0, POST /api/v1/procedures/{id}/uploads/; "
                "the session page does this).", status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        uploaded = request.FILES.get("file")
        if uploaded is None:
            return error_response("no_file", "Send the recording as a multipart form field named 'file'.")
        try:
            video = as_api_errors(lambda: video_upload(actor=request.user, session=session, uploaded=uploaded))
        except VideoRejected as exc:
            return error_response(exc.code, exc.message)
        return Response(VideoSerializer(video).data, status=status.HTTP_202_ACCEPTED)
