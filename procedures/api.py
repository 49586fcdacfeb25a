"""REST API for procedure sessions (v1). Object rules come from ``procedures.access``."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from medvision.api_contract import StrictFieldsMixin, StrictQueryParamsMixin
from medvision.api_errors import ERRORS, ErrorSerializer, error_response  # noqa: F401 - re-exported
from medvision.api_pagination import DisclaimedPagination
from medvision.audit import log_access, log_access_many
from medvision.notices import AI_DISCLAIMER

from . import access, selectors, services, workflow
from .models import ProcedureSession, Video
from .video_upload import VideoRejected, video_upload


class ProcedureSessionSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    read_only_hints = {
        "status": "Read-only: a session's status follows its workflow (start and end it in the portal, "
                  "sign it with POST /api/v1/procedures/{id}/sign/).",
        "signed_by": "Read-only: set when the session is signed.",
        "signed_at": "Read-only: set when the session is signed.",
        "clinician": "Read-only: a session belongs to the clinician who created it.",
        "mode": "Read-only once the session exists: create a new session for another mode.",
    }

    clinician = serializers.SlugRelatedField(slug_field="username", read_only=True)
    # Null until the session is signed (and present in every response, PATCH's included).
    signed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = ProcedureSession
        fields = [
            "id", "title", "procedure_type", "mode", "status", "clinician", "patient_ref",
            "encounter_ref", "started_at", "ended_at", "signed_by", "signed_at", "notes",
            "created_at", "updated_at",
        ]
        read_only_fields = [
            "id", "status", "clinician", "started_at", "ended_at", "signed_by", "signed_at",
            "created_at", "updated_at",
        ]


class ProcedureSessionUpdateSerializer(ProcedureSessionSerializer):
    class Meta(ProcedureSessionSerializer.Meta):
        read_only_fields = [*ProcedureSessionSerializer.Meta.read_only_fields, "mode"]


def _as_api_errors(call):
    try:
        return call()
    except access.SessionReadOnly as exc:
        raise PermissionDenied(str(exc)) from None
    except workflow.NotAllowed as exc:
        raise ValidationError({"detail": str(exc)}) from None
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict if hasattr(exc, "message_dict") else exc.messages) from None


class ProcedureSessionListCreate(StrictQueryParamsMixin, generics.ListCreateAPIView):
    serializer_class = ProcedureSessionSerializer
    filterset_fields = ["status", "procedure_type", "mode"]

    def get_queryset(self):
        return selectors.session_list(user=self.request.user)

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        shown = [row["id"] for row in response.data.get("results", [])]
        log_access_many(actor=request.user, instances=ProcedureSession.objects.filter(pk__in=shown),
                        what="api:session_list")
        response.data["disclaimer"] = AI_DISCLAIMER
        return response

    def perform_create(self, serializer):
        serializer.instance = _as_api_errors(
            lambda: services.session_create(actor=self.request.user, **serializer.validated_data)
        )


class ProcedureSessionDetail(StrictQueryParamsMixin, generics.RetrieveUpdateAPIView):
    http_method_names = ["get", "patch", "head", "options"]

    def get_serializer_class(self):
        return ProcedureSessionUpdateSerializer if self.request.method == "PATCH" else ProcedureSessionSerializer

    def get_object(self):
        session = access.get_visible_session(self.request.user, self.kwargs["session_id"])
        if self.request.method == "GET":
            log_access(actor=self.request.user, instance=session, what="api:session")
        return session

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        response.data["disclaimer"] = AI_DISCLAIMER
        return response

    def update(self, request, *args, **kwargs):
        # Whether this caller may change the session at all is answered before the body is
        # validated: a connector or a signed session gets the 403, not field errors.
        _as_api_errors(lambda: access.ensure_editable(request.user, self.get_object()))
        return super().update(request, *args, **kwargs)

    def perform_update(self, serializer):
        serializer.instance = _as_api_errors(
            lambda: services.session_update(
                actor=self.request.user, session=serializer.instance, **serializer.validated_data
            )
        )


class VideoSerializer(serializers.ModelSerializer):
    original_name = serializers.CharField(
        read_only=True, allow_null=True,
        help_text="The uploaded file's name; null for EHR connectors (names can carry patient details).")

    class Meta:
        model = Video
        fields = [
            "id", "original_name", "sha256", "container", "codec", "duration_s", "fps", "width", "height",
            "size_bytes", "state", "progress", "progress_detail", "gate_counts", "summary", "error_message",
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
    like every list). ``POST`` (multipart ``file``): upload a recording; 202 with its
    processing state."""

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
        _as_api_errors(lambda: access.ensure_editable(request.user, session))
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.VIDEO_MAX_UPLOAD_BYTES + 1024 * 1024:  # multipart overhead
            return error_response("too_large", f"The upload is larger than the {settings.VIDEO_MAX_UPLOAD_BYTES / 1024**3:.1f} GB limit.",
                                  status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        uploaded = request.FILES.get("file")
        if uploaded is None:
            return error_response("no_file", "Send the recording as a multipart form field named 'file'.")
        try:
            video = _as_api_errors(lambda: video_upload(actor=request.user, session=session, uploaded=uploaded))
        except VideoRejected as exc:
            return error_response(exc.code, exc.message)
        return Response(VideoSerializer(video).data, status=status.HTTP_202_ACCEPTED)


class ProcedureSessionSign(StrictQueryParamsMixin, generics.GenericAPIView):
    """Sign the report. Every AI proposal must be decided first (confirmed, edited or
    rejected); afterwards the session is read-only for everybody."""

    serializer_class = ProcedureSessionSerializer
    queryset = ProcedureSession.objects.none()  # for the schema generator; rows come from access rules

    @extend_schema(request=None, responses={200: ProcedureSessionSerializer, 409: ErrorSerializer, **ERRORS})
    def post(self, request, session_id):
        session = access.get_visible_session(request.user, session_id)
        try:
            signed = workflow.session_sign(actor=request.user, session=session)
        except access.SessionReadOnly as exc:
            raise PermissionDenied(str(exc)) from None
        except workflow.NotAllowed as exc:
            # The request is well formed; the session is not ready for it (undecided
            # proposals, a recording still processing): a conflict with its state.
            return error_response("cannot_sign", str(exc), status.HTTP_409_CONFLICT)
        data = ProcedureSessionSerializer(signed).data
        data["disclaimer"] = AI_DISCLAIMER
        return Response(data)
