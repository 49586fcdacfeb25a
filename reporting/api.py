"""REST API for the structured report and the timeline marks (v1).

    GET, PUT          /api/v1/procedures/{id}/report/
    GET, POST         /api/v1/procedures/{id}/marks/
    PATCH, DELETE     /api/v1/procedures/{id}/marks/{mark_id}/
    GET, POST         /api/v1/procedures/{id}/pathology/

Sessions come from ``procedures.access`` (others' are 404); writes go through
``reporting.services`` (owner only, never once signed: 403 with the reason). A body that
does not fit the documented shape is a 400 with one message per field; a well-formed body
that this session cannot take (a bronchoscopy field on a colonoscopy, Prague M shorter than
C, a recording of another procedure, a time past the end of the recording) is a 409 with
per-field messages, as the findings API answers a value outside the procedure's vocabulary.
Reads are audited (``log_access``).
"""

from __future__ import annotations

from functools import cache

from drf_spectacular.utils import extend_schema
from pydantic import ConfigDict, ValidationError, create_model
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response

from medvision.api_contract import StrictFieldsMixin, StrictQueryParamsMixin
from medvision.api_errors import ERRORS, ErrorSerializer, error_response
from medvision.audit import log_access
from medvision.notices import AI_DISCLAIMER
from medvision.text_rules import single_line_text
from procedures import access
from procedures.api_errors import as_api_errors
from procedures.models import Video
from procedures.workflow import NotAllowed

from . import pathology, schema, selectors, services, vocabulary
from .models import TimelineMark
from .withdrawal import format_duration, withdrawal_from_marks


@cache
def report_input_model():
    """Every field any procedure type's report has (the union of their values where two
    types share a name, e.g. ``extent``): the documented shape of a PUT body. Which of
    them the session's type takes is checked against the session (409)."""
    fields: dict = {}
    for model in schema.REPORT_MODELS.values():
        for name, info in model.model_fields.items():
            if name in fields and fields[name][0] != info.annotation:
                merged = info._copy() if hasattr(info, "_copy") else info
                fields[name] = (fields[name][0] | info.annotation, merged)
            else:
                fields[name] = (info.annotation, info)
    return create_model("StructuredReportInput", __config__=ConfigDict(extra="forbid"), **fields)


def _openapi_30(node):
    """pydantic writes JSON Schema 2020-12 (``{"type": "null"}`` in an anyOf, ``$defs``);
    the API's schema is OpenAPI 3.0: inline the definitions, say ``nullable`` instead."""
    if isinstance(node, list):
        return [_openapi_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _openapi_30(value) for key, value in node.items() if key not in ("title", "$defs")}
    options = node.get("anyOf")
    if options and any(option == {"type": "null"} for option in options):
        rest = [option for option in options if option != {"type": "null"}]
        node.pop("anyOf")
        if "default" in node and node["default"] is None:
            del node["default"]
        if len(rest) == 1:
            node = {**rest[0], **node}
        else:
            node["anyOf"] = rest
        node["nullable"] = True
    if node.get("const") is not None:
        node["enum"] = [node.pop("const")]
    return node


def _inline(node, definitions):
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inline(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions)
    return {key: _inline(value, definitions) for key, value in node.items()}


@cache
def report_input_schema() -> dict:
    """The PUT body's OpenAPI schema, from ``report_input_model``."""
    raw = report_input_model().model_json_schema()
    schema_30 = _openapi_30(_inline(raw, raw.get("$defs", {})))
    schema_30["description"] = ("The report's fields; every one is optional (a field left out keeps its stored "
                                "value). Which fields apply depends on the procedure type.")
    return schema_30


def _field_errors(errors: dict[str, str]) -> dict[str, list[str]]:
    return {field: [message] for field, message in errors.items()}


def _shape_errors(data) -> dict[str, list[str]] | None:
    if not isinstance(data, dict):
        return {"report": ["Send the report as a JSON object."]}
    try:
        report_input_model().model_validate(data)
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "report"
            errors.setdefault(field, [error["msg"]])
        return errors
    return None


def _conflict(errors: dict[str, str]) -> Response:
    fields = _field_errors(errors)
    message = "; ".join(f"{field}: {text[0]}" for field, text in fields.items())
    return error_response("report_conflict", message, status.HTTP_409_CONFLICT, fields=fields)


def _not_allowed(exc: NotAllowed) -> Response:
    return error_response("not_allowed", str(exc), status.HTTP_409_CONFLICT)


def _run(call):
    """A service call. Data this session cannot take, or a step its state or procedure type
    does not allow, is a 409 Response (well-formed, but in conflict with the session);
    caught here, before ``as_api_errors`` would turn a refusal into a 400. A read-only
    session stays a 403."""

    def guarded():
        try:
            return call()
        except schema.ReportDataError as exc:
            return _conflict(exc.errors)
        except NotAllowed as exc:
            return _not_allowed(exc)

    return as_api_errors(guarded)


# --- report ----------------------------------------------------------------------------------


class SuggestionSerializer(serializers.Serializer):
    months = serializers.IntegerField(allow_null=True, help_text="Suggested interval in months (null: none).")
    rule = serializers.CharField(help_text="The 2020 USMSTF rule that produced it.")
    provisional = serializers.BooleanField(help_text="True until pathology reports on every polyp.")
    display = serializers.CharField()


class ComputedSerializer(serializers.Serializer):
    bbps_total = serializers.IntegerField(allow_null=True)
    bbps_adequate = serializers.BooleanField(allow_null=True)
    withdrawal_s = serializers.FloatField(allow_null=True, help_text="Cecum reached to scope out, in seconds.")
    withdrawal_display = serializers.CharField(help_text="m:ss, empty when there is no time.")
    withdrawal_problem = serializers.CharField(help_text="What to mark to get a withdrawal time.")
    surveillance_suggestion = SuggestionSerializer(allow_null=True)
    surveillance_stale = serializers.BooleanField(help_text="The suggestion changed since it was confirmed.")
    missing_for_sign = serializers.ListField(child=serializers.CharField(),
                                             help_text="What must be filled in before signing (labels).")


class ReportSerializer(serializers.Serializer):
    procedure_type = serializers.CharField()
    data = serializers.DictField(help_text="The report's fields (see StructuredReportInput).")
    computed = ComputedSerializer()
    updated_by = serializers.CharField(allow_blank=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    disclaimer = serializers.CharField()


def report_body(session) -> dict:
    view = selectors.report_view(session)
    suggestion = view["suggestion"]
    return {
        "procedure_type": view["procedure_type"],
        "data": view["data"],
        "computed": {
            "bbps_total": view["bbps_total"],
            "bbps_adequate": view["bbps_adequate"],
            "withdrawal_s": view["withdrawal_s"],
            "withdrawal_display": view["withdrawal_display"],
            "withdrawal_problem": view["withdrawal_problem"],
            "surveillance_suggestion": None if suggestion is None else {
                "months": suggestion.months, "rule": suggestion.rule, "provisional": suggestion.provisional,
                "display": suggestion.display,
            },
            "surveillance_stale": bool(view["surveillance"] and view["surveillance"]["stale"]),
            "missing_for_sign": view["missing"],
        },
        "updated_by": view["updated_by"],
        "updated_at": view["updated_at"].isoformat() if view["updated_at"] else None,
        "disclaimer": AI_DISCLAIMER,
    }


class SessionReport(StrictQueryParamsMixin, generics.GenericAPIView):
    """The session's structured report. PUT stores the fields sent (a field left out keeps
    its value; send it empty to clear it). The surveillance block takes the clinician's
    choice (chosen_months, note, confirmed); the suggestion beside it is the server's."""

    serializer_class = ReportSerializer
    queryset = TimelineMark.objects.none()  # for the schema generator; rows come from access rules

    @extend_schema(responses={200: ReportSerializer, **ERRORS})
    def get(self, request, session_id):
        session = access.get_visible_session(request.user, session_id)
        log_access(actor=request.user, instance=session, what="api:structured_report")
        return Response(report_body(session))

    @extend_schema(request={"application/json": report_input_schema()}, responses={200: ReportSerializer, 409: ErrorSerializer, **ERRORS})
    def put(self, request, session_id):
        session = access.get_visible_session(request.user, session_id)
        as_api_errors(lambda: access.ensure_editable(request.user, session))
        errors = _shape_errors(request.data)
        if errors:
            raise DRFValidationError(errors)
        result = _run(lambda: services.report_update(actor=request.user, session=session, data=dict(request.data)))
        if isinstance(result, Response):
            return result
        return Response(report_body(session))


# --- marks -----------------------------------------------------------------------------------


class MarkSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=vocabulary.MARK_KINDS)
    label = serializers.CharField()
    time_ms = serializers.IntegerField(min_value=0)
    time_display = serializers.CharField(help_text="m:ss")
    video = serializers.UUIDField(allow_null=True, help_text="The recording the time refers to; null: live stream.")
    recording = serializers.IntegerField(allow_null=True, help_text="The recording's number (Recording 1, ...).")
    frame = serializers.UUIDField(allow_null=True, help_text="The key frame at the mark (landmarks, cecum reached).")
    set_by = serializers.CharField()

    def to_representation(self, mark):
        return {
            "id": str(mark.pk), "kind": mark.kind, "label": vocabulary.label(vocabulary.MARK_KINDS, mark.kind),
            "time_ms": mark.time_ms, "time_display": format_duration(mark.time_ms / 1000),
            "video": str(mark.video_id) if mark.video_id else None,
            "recording": mark.video.number if mark.video_id else None,
            "frame": str(mark.frame_id) if mark.frame_id else None,
            "set_by": mark.set_by.get_username(),
        }


class MarkListSerializer(serializers.Serializer):
    results = MarkSerializer(many=True)
    withdrawal_s = serializers.FloatField(allow_null=True)
    withdrawal_problem = serializers.CharField()
    disclaimer = serializers.CharField()


class MarkCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    kind = serializers.ChoiceField(choices=vocabulary.MARK_KINDS)
    time_ms = serializers.IntegerField(min_value=0, max_value=10 * 24 * 3600 * 1000)
    video = serializers.UUIDField(required=False, allow_null=True,
                                  help_text="A recording of this procedure; leave out or null for the live stream.")


class MarkUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    time_ms = serializers.IntegerField(min_value=0, max_value=10 * 24 * 3600 * 1000)
    video = serializers.UUIDField(required=False, allow_null=True,
                                  help_text="Leave out to keep the mark's recording; null for the live stream.")


def _video_of(session, video_id):
    if video_id is None:
        return None
    video = Video.objects.filter(session=session, pk=video_id).first()
    if video is None:
        raise schema.ReportDataError({"video": "No such recording in this procedure."})
    return video


def _set_mark(request, session, *, kind, time_ms, video_id) -> Response | TimelineMark:
    try:
        video = _video_of(session, video_id)
    except schema.ReportDataError as exc:
        return _conflict(exc.errors)
    return _run(lambda: services.mark_set(actor=request.user, session=session, kind=kind, time_ms=time_ms,
                                          video=video))


def _marks_body(session) -> dict:
    marks = list(selectors.marks_for_session(session))
    withdrawal = withdrawal_from_marks(marks)
    return {"results": MarkSerializer(marks, many=True).data, "withdrawal_s": withdrawal.seconds,
            "withdrawal_problem": withdrawal.problem, "disclaimer": AI_DISCLAIMER}


class SessionMarks(StrictQueryParamsMixin, generics.GenericAPIView):
    """The timeline marks (cecum reached, scope out, cecal landmarks). POST sets a mark, or
    moves the session's mark of that kind (one per kind): 201 when new, 200 when moved."""

    serializer_class = MarkSerializer
    queryset = TimelineMark.objects.none()

    @extend_schema(responses={200: MarkListSerializer, **ERRORS})
    def get(self, request, session_id):
        session = access.get_visible_session(request.user, session_id)
        log_access(actor=request.user, instance=session, what="api:timeline_marks")
        return Response(_marks_body(session))

    @extend_schema(request=MarkCreateSerializer, responses={200: MarkSerializer, 201: MarkSerializer,
                                                            409: ErrorSerializer, **ERRORS})
    def post(self, request, session_id):
        session = access.get_visible_session(request.user, session_id)
        as_api_errors(lambda: access.ensure_editable(request.user, session))
        body = MarkCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        existed = TimelineMark.objects.filter(session=session, kind=body.validated_data["kind"]).exists()
        result = _set_mark(request, session, kind=body.validated_data["kind"],
                           time_ms=body.validated_data["time_ms"], video_id=body.validated_data.get("video"))
        if isinstance(result, Response):
            return result
        return Response(MarkSerializer(result).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


class SessionMark(StrictQueryParamsMixin, generics.GenericAPIView):
    """One mark: PATCH moves it (time, and the recording it refers to), DELETE removes it."""

    serializer_class = MarkSerializer
    queryset = TimelineMark.objects.none()
    http_method_names = ["patch", "delete", "options"]

    def _mark(self, session, mark_id) -> TimelineMark:
        mark = TimelineMark.objects.filter(session=session, pk=mark_id).select_related("video").first()
        if mark is None:
            from rest_framework.exceptions import NotFound

            raise NotFound()
        return mark

    @extend_schema(request=MarkUpdateSerializer, responses={200: MarkSerializer, 409: ErrorSerializer, **ERRORS})
    def patch(self, request, session_id, mark_id):
        session = access.get_visible_session(request.user, session_id)
        as_api_errors(lambda: access.ensure_editable(request.user, session))
        mark = self._mark(session, mark_id)
        body = MarkUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        video_id = body.validated_data["video"] if "video" in body.validated_data else mark.video_id
        result = _set_mark(request, session, kind=mark.kind, time_ms=body.validated_data["time_ms"], video_id=video_id)
        if isinstance(result, Response):
            return result
        return Response(MarkSerializer(result).data)

    @extend_schema(request=None, responses={204: None, **ERRORS})
    def delete(self, request, session_id, mark_id):
        session = access.get_visible_session(request.user, session_id)
        as_api_errors(lambda: access.ensure_editable(request.user, session))
        mark = self._mark(session, mark_id)
        result = _run(lambda: services.mark_delete(actor=request.user, session=session, mark_id=mark.pk))
        if isinstance(result, Response):
            return result
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- pathology after sign-off ------------------------------------------------------------------


class PathologyResultSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    polyp_id = serializers.CharField(help_text="The polyp row's id in the report's data.polyps.")
    polyp = serializers.CharField(help_text="The polyp as the report numbers it, e.g. 'Polyp 2 (Sigmoid colon, 6 mm)'.")
    histology = serializers.ChoiceField(choices=pathology.RESULT_HISTOLOGY)
    histology_label = serializers.CharField()
    note = serializers.CharField(allow_blank=True)
    entered_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    current = serializers.BooleanField(help_text="The latest result for its polyp (the one that counts).")


class SuggestionWithPathologySerializer(SuggestionSerializer):
    provisional = serializers.BooleanField(help_text="True while a polyp has no histology (neither in the signed "
                                                     "report nor from a pathology result).")


class PathologyListSerializer(serializers.Serializer):
    results = PathologyResultSerializer(many=True)
    surveillance_with_pathology = SuggestionWithPathologySerializer(
        allow_null=True, help_text="The 2020 USMSTF suggestion with the latest result per polyp applied (null: not "
                                   "a colonoscopy). The signed interval is not changed.")
    disclaimer = serializers.CharField()


class PathologyCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    # No trimming: an id is matched exactly, and the schema's pattern says what it may hold.
    polyp_id = serializers.RegexField(r"^[A-Za-z0-9_-]+$", max_length=64, trim_whitespace=False,
                                      help_text="The id of a polyp row of the signed report (data.polyps[].id).")
    histology = serializers.ChoiceField(choices=pathology.RESULT_HISTOLOGY,
                                        help_text="The histology the pathology report gives (never pending).")
    note = serializers.CharField(required=False, allow_blank=True, max_length=200, validators=[single_line_text],
                                 help_text="Optional, one line (e.g. the pathology report's number).")


def _result_item(item: dict) -> dict:
    return {**item, "created_at": item["created_at"].isoformat()}


def _pathology_body(session) -> dict:
    if session.procedure_type != "colonoscopy":
        return {"results": [], "surveillance_with_pathology": None, "disclaimer": AI_DISCLAIMER}
    view = selectors.pathology_view(session)
    suggestion = view["suggestion"]
    return {
        "results": [_result_item(item) for item in view["results"]],
        "surveillance_with_pathology": {"months": suggestion.months, "rule": suggestion.rule,
                                        "provisional": suggestion.provisional, "display": suggestion.display},
        "disclaimer": AI_DISCLAIMER,
    }


class SessionPathology(StrictQueryParamsMixin, generics.GenericAPIView):
    """Pathology results of a signed colonoscopy's polyps, entered after sign-off. The signed
    report is not changed: each result is kept beside it (the latest per polyp counts) and
    added as an addendum. POST: only the owning clinician (403 for others who may read the
    session), only once signed, only for a colonoscopy and a polyp row of its report (409)."""

    serializer_class = PathologyResultSerializer
    queryset = TimelineMark.objects.none()  # for the schema generator; rows come from access rules

    @extend_schema(responses={200: PathologyListSerializer, **ERRORS})
    def get(self, request, session_id):
        session = access.get_visible_session(request.user, session_id)
        log_access(actor=request.user, instance=session, what="api:pathology_results")
        return Response(_pathology_body(session))

    @extend_schema(request=PathologyCreateSerializer,
                   responses={201: PathologyResultSerializer, 409: ErrorSerializer, **ERRORS})
    def post(self, request, session_id):
        session = access.get_visible_session(request.user, session_id)
        if not access.is_owner(request.user, session):
            # Before the body: QA and connectors may read the session, never write to it.
            raise PermissionDenied("Only the clinician who owns this session can enter pathology results.")
        body = PathologyCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        result = _run(lambda: services.pathology_record(actor=request.user, session=session,
                                                        polyp_id=data["polyp_id"], histology=data["histology"],
                                                        note=data.get("note", "")))
        if isinstance(result, Response):
            return result
        item = next(i for i in selectors.pathology_view(session)["results"] if i["id"] == str(result.pk))
        return Response(_result_item(item), status=status.HTTP_201_CREATED)
