"""REST API for procedure sessions (v1). Object rules come from ``procedures.access``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from medvision.api_contract import StrictFieldsMixin, StrictQueryParamsMixin
from medvision.api_errors import ERRORS, ErrorSerializer, error_response
from medvision.audit import log_access, log_access_many
from medvision.notices import AI_DISCLAIMER

from . import access, selectors, services, workflow
from .api_errors import as_api_errors
from .models import ProcedureSession


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
        serializer.instance = as_api_errors(
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
        as_api_errors(lambda: access.ensure_editable(request.user, self.get_object()))
        return super().update(request, *args, **kwargs)

    def perform_update(self, serializer):
        serializer.instance = as_api_errors(
            lambda: services.session_update(
                actor=self.request.user, session=serializer.instance, **serializer.validated_data
            )
        )


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
