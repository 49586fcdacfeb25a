"""REST API for findings (v1): list a session's findings, review one.

Sessions are resolved through ``procedures.access``, so a finding is visible exactly when
its session is. On top of that, an EHR connector (who reads signed sessions only) sees only
the findings in the signed report - confirmed or edited - never the rejected proposals: the
connector's view of a session is the signed report. Clinicians (their own sessions), QA
reviewers and administrators see every finding with its review status.

The finding JSON is ``analysis.serializers.finding_event``: the same fields as the
WebSocket ``finding`` events and the exports.
"""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from medvision.api_contract import StrictFieldsMixin, StrictQueryParamsMixin
from medvision.api_errors import ERRORS, ErrorSerializer
from medvision.api_pagination import DisclaimedPagination
from medvision.audit import log_access
from medvision.notices import AI_DISCLAIMER
from medvision.text_rules import multi_line_text, single_line_text
from procedures import access

from . import selectors, services
from .engine import CATEGORIES, LOCATIONS
from .models import Finding, ReviewStatus, Risk
from .serializers import finding_event

ALL_CATEGORIES = sorted({c for values in CATEGORIES.values() for c in values})


class ProvenanceSerializer(serializers.Serializer):
    backend = serializers.CharField()
    model_id = serializers.CharField()
    model_revision = serializers.CharField()
    prompt_version = serializers.CharField()
    generation_params = serializers.DictField()
    latency_ms = serializers.IntegerField(allow_null=True)
    is_demo = serializers.BooleanField()


class FindingSerializer(serializers.Serializer):
    """Read-only; the representation is ``finding_event`` itself (one shape everywhere).
    The declared fields document it in the OpenAPI schema; a test keeps them in step."""

    id = serializers.UUIDField()
    session = serializers.UUIDField()
    frame = serializers.UUIDField(allow_null=True, help_text="The key frame (JPEG evidence), if any.")
    video = serializers.UUIDField(allow_null=True, read_only=True,
                                  help_text="The recording whose media time start_ms and end_ms are; "
                                            "null for a live session's findings.")
    recording = serializers.IntegerField(allow_null=True, read_only=True,
                                         help_text="That recording's number in the session (1, 2, ...: "
                                                   "'Recording 2'); null for live findings.")
    origin = serializers.ChoiceField(choices=["ai", "clinician"])
    start_ms = serializers.IntegerField(help_text="Media time of the first frame showing it, in ms.")
    end_ms = serializers.IntegerField(help_text="Media time of the last frame showing it, in ms.")
    category = serializers.CharField()
    label = serializers.CharField()
    location = serializers.CharField()
    risk = serializers.ChoiceField(choices=Risk.choices)
    confidence = serializers.FloatField(allow_null=True)
    size_mm = serializers.FloatField(allow_null=True)
    description = serializers.CharField()
    suggested_next_step = serializers.CharField()
    review_status = serializers.ChoiceField(choices=ReviewStatus.choices)
    reviewed_by = serializers.CharField(allow_null=True)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    clinician_note = serializers.CharField()
    is_demo = serializers.BooleanField(help_text="Output of the random-weight demo model: meaningless.")
    provenance = ProvenanceSerializer()

    def to_representation(self, instance):
        return finding_event(instance)


class FindingDetailSerializer(FindingSerializer):
    disclaimer = serializers.CharField(read_only=True)

    def to_representation(self, instance):
        return {**finding_event(instance), "disclaimer": AI_DISCLAIMER}


class FindingFilter(django_filters.FilterSet):
    risk = django_filters.ChoiceFilter(choices=Risk.choices)
    status = django_filters.ChoiceFilter(field_name="review_status", choices=ReviewStatus.choices,
                                         help_text="Review status.")
    category = django_filters.ChoiceFilter(choices=[(c, c) for c in ALL_CATEGORIES])

    class Meta:
        model = Finding
        fields = ["risk", "status", "category"]


class SessionFindingList(StrictQueryParamsMixin, generics.ListAPIView):
    """A session's findings in time order. Connectors get the signed report's findings only.
    Every successful call is recorded in the audit log (ACCESS)."""

    serializer_class = FindingSerializer
    filterset_class = FindingFilter
    pagination_class = DisclaimedPagination
    queryset = Finding.objects.none()  # for the schema generator; rows come from access rules

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Finding.objects.none()
        self.session = access.get_visible_session(self.request.user, self.kwargs["session_id"])
        return selectors.finding_list_for(user=self.request.user, session=self.session).select_related("video")

    @extend_schema(responses={200: FindingSerializer(many=True), **ERRORS})
    def get(self, request, *args, **kwargs):
        response = self.list(request, *args, **kwargs)
        log_access(
            actor=request.user, instance=self.session, what="api:findings",
            filters={k: v for k, v in request.query_params.items() if k in ("risk", "status", "category", "page")},
            count=response.data.get("count"),
        )
        return response


class VocabularyConflict(ValidationError):
    """A well-formed value that this finding's procedure type does not have (a colonoscopy
    has no 'trachea'): the request conflicts with the finding, so 409, not 400."""

    status_code = 409
    default_code = "not_in_vocabulary"


class NothingEdited(ValidationError):
    """Status 'edited' with no corrected field, on a finding that is not edited yet: what
    the request means depends on the finding's state, so 409."""

    status_code = 409
    default_code = "nothing_edited"


def check_against_finding(finding: Finding, data: dict) -> None:
    """The rules that depend on the finding, checked after validation (DRF turns errors
    raised inside a serializer into 400s)."""
    check_vocabulary(finding, data)
    corrections = [k for k in data if k in services.CORRECTABLE_FIELDS]
    if data.get("status") == ReviewStatus.EDITED and not corrections and finding.review_status != ReviewStatus.EDITED:
        raise NothingEdited({"status": [(
            "Status 'edited' needs the corrected fields (category, label, location, risk, size_mm, "
            "description or suggested_next_step)."
        )]})


def check_vocabulary(finding: Finding, data: dict) -> None:
    """Raised after validation (DRF turns errors raised inside a serializer into 400s)."""
    procedure_type = finding.session.procedure_type
    for name, allowed in (("category", CATEGORIES), ("location", LOCATIONS)):
        choices = allowed.get(procedure_type)
        if name in data and choices is not None and data[name] not in choices:
            raise VocabularyConflict({name: [
                f"{data[name]!r} is not a {name} for {procedure_type}; use one of: {', '.join(choices)}."
            ]})


class FindingReviewSerializer(StrictFieldsMixin, serializers.Serializer):
    min_fields = 1  # an empty review changes nothing
    status = serializers.ChoiceField(
        choices=[ReviewStatus.CONFIRMED, ReviewStatus.REJECTED, ReviewStatus.EDITED], required=False,
        help_text="confirmed, rejected, or edited (edited comes with corrected fields).",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000, help_text="Clinician's note.",
                                 validators=[multi_line_text])
    category = serializers.CharField(required=False, max_length=40,
                                     help_text="One of the analyzer's categories for this session's procedure type.")
    label = serializers.CharField(required=False, allow_blank=True, max_length=120, validators=[single_line_text])
    location = serializers.CharField(required=False, max_length=40,
                                     help_text="One of the analyzer's locations for this session's procedure type.")
    risk = serializers.ChoiceField(choices=Risk.choices, required=False)
    size_mm = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=500)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000,
                                        validators=[multi_line_text])
    suggested_next_step = serializers.CharField(required=False, allow_blank=True, max_length=1000,
                                                validators=[multi_line_text])

    # Stated in the schema as enforced below: confirmed or rejected come without corrections.
    schema_rules = {"not": {
        "required": ["status"],
        "properties": {"status": {"enum": [ReviewStatus.CONFIRMED.value, ReviewStatus.REJECTED.value]}},
        "anyOf": [{"required": [name]} for name in services.CORRECTABLE_FIELDS],
    }}

    def validate(self, data):
        if not data:
            raise ValidationError("Nothing to change: send status, note or corrected fields.")
        corrections = {k: v for k, v in data.items() if k in services.CORRECTABLE_FIELDS}
        if corrections and data.get("status") in (ReviewStatus.CONFIRMED, ReviewStatus.REJECTED):
            raise ValidationError({"status": [
                "Corrected fields make the finding 'edited': send status 'edited' (or leave status out)."
            ]})
        return data


class FindingDetail(StrictQueryParamsMixin, generics.GenericAPIView):
    """``GET``: one finding. ``PATCH``: review it - confirm, reject, or correct fields (it
    becomes "edited"; the model's original proposal is kept), and/or set the note.
    Someone else's finding is 404; a signed session is 403 with the reason."""

    serializer_class = FindingDetailSerializer
    queryset = Finding.objects.none()  # for the schema generator; rows come from access rules

    @extend_schema(responses={200: FindingDetailSerializer, **ERRORS})
    def get(self, request, finding_id):
        finding = selectors.finding_get_for(user=request.user, finding_id=finding_id)
        log_access(actor=request.user, instance=finding.session, what="api:finding", finding=str(finding.pk))
        return Response(FindingDetailSerializer(finding).data)

    @extend_schema(
        request=FindingReviewSerializer,
        responses={200: FindingDetailSerializer, 409: ErrorSerializer, **ERRORS},  # 409: not_in_vocabulary, nothing_edited
        examples=[
            OpenApiExample("Confirm", value={"status": "confirmed"}, request_only=True),
            OpenApiExample("Reject with a note", value={"status": "rejected", "note": "Bubble, not a lesion."},
                           request_only=True),
            OpenApiExample("Correct", value={"location": "rectum", "size_mm": 4}, request_only=True),
        ],
    )
    def patch(self, request, finding_id):
        finding = selectors.finding_get_for(user=request.user, finding_id=finding_id)
        reason = access.edit_refusal(request.user, finding.session)
        if reason:
            raise PermissionDenied(reason)
        review = FindingReviewSerializer(data=request.data)
        review.is_valid(raise_exception=True)
        data = dict(review.validated_data)
        check_against_finding(finding, data)
        status = data.pop("status", None)
        note = data.pop("note", None)
        try:
            finding = services.finding_review(
                actor=request.user, finding=finding, status=status, note=note, corrections=data,
            )
        except access.SessionReadOnly as exc:  # signed between our check and the row lock
            raise PermissionDenied(str(exc)) from None
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict if hasattr(exc, "message_dict") else exc.messages) from None
        except ValueError as exc:
            raise ValidationError({"status": [str(exc)]}) from None
        finding = Finding.objects.select_related("reviewed_by", "video").get(pk=finding.pk)
        return Response(FindingDetailSerializer(finding).data)
