"""QA admin for structured reports, timeline marks and pathology results: read-only (the clinician edits the
report in the portal, where it is validated and audited), every page read audited, and the
report shown as a person reads it (labels, not codes; times as m:ss)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from medvision.admin_base import AuditedReadsAdmin, NoWritesAdmin

from . import forms
from .models import PathologyResult, StructuredReport, TimelineMark
from .schema import ReportDataError, parse
from .surveillance import interval_display
from .withdrawal import format_duration, withdrawal_from_marks


def _rows_html(rows: dict) -> str:
    if not rows["items"]:
        return format_html('<p class="help">None recorded.</p>')
    head = format_html_join("", "<th>{}</th>", ((f.label,) for f in rows["items"][0]["fields"]))
    body = format_html_join(
        "", "<tr><td>{}</td>{}</tr>",
        ((row["number"], format_html_join("", "<td>{}</td>", ((f.value_label or "—",) for f in row["fields"])))
         for row in rows["items"]),
    )
    return format_html('<table><thead><tr><th>#</th>{}</tr></thead><tbody>{}</tbody></table>', head, body)


@admin.register(StructuredReport)
class StructuredReportAdmin(AuditedReadsAdmin, NoWritesAdmin):
    list_display = ["session", "procedure_type", "session_status", "bbps_total", "updated_by", "updated_at"]
    list_filter = ["session__procedure_type", "session__status", "updated_at"]
    search_fields = ["session__id", "session__title", "session__patient_ref"]
    list_select_related = ["session", "updated_by"]
    fields = ["session", "updated_by", "created_at", "updated_at", "computed", "report"]
    readonly_fields = fields

    @admin.display(description="Procedure", ordering="session__procedure_type")
    def procedure_type(self, obj):
        return obj.session.get_procedure_type_display()

    @admin.display(description="Session status", ordering="session__status")
    def session_status(self, obj):
        return obj.session.get_status_display()

    @admin.display(description="BBPS total")
    def bbps_total(self, obj):
        typed = self._typed(obj)
        total = getattr(typed, "bbps_total", None)
        return "—" if total is None else total

    @staticmethod
    def _typed(obj):
        try:
            return parse(obj.session.procedure_type, obj.data)
        except ReportDataError:
            return None

    @admin.display(description="Computed")
    def computed(self, obj):
        typed = self._typed(obj)
        if typed is None:
            return "The stored data does not match the report schema."
        items = []
        if getattr(typed, "bbps_total", None) is not None:
            items.append(("BBPS total", f"{typed.bbps_total} / 9"))
        if obj.session.procedure_type == "colonoscopy":
            w = withdrawal_from_marks(obj.session.marks.all())
            items.append(("Withdrawal time", format_duration(w.seconds) if w.seconds is not None else w.problem))
            s = typed.surveillance
            if s.confirmed:
                items.append(("Surveillance (chosen)", interval_display(s.chosen_months)))
                items.append(("Suggested then", f"{interval_display(s.suggested_months)}: {s.suggested_rule}"))
                if s.note:
                    items.append(("Reason", s.note))
            else:
                items.append(("Surveillance", "not confirmed yet"))
        return format_html("<dl>{}</dl>", format_html_join("", "<dt>{}</dt><dd>{}</dd>", items))

    @admin.display(description="Report")
    def report(self, obj):
        """Every section of the form, with labels, as the clinician filled it in."""
        ptype = obj.session.procedure_type
        parts = []
        for section in forms.bind(ptype, obj.data or {}, {}):
            scalars = format_html_join("", "<dt>{}</dt><dd>{}</dd>",
                                       ((f.label, f.value_label or "—") for f in section["fields"]))
            rows = _rows_html(section["rows"]) if section.get("rows") else ""
            parts.append(format_html("<h3>{}</h3><dl>{}</dl>{}", section["title"], scalars, rows))
        return format_html_join("", "{}", ((p,) for p in parts))


@admin.register(TimelineMark)
class TimelineMarkAdmin(AuditedReadsAdmin, NoWritesAdmin):
    list_display = ["session", "kind", "time", "recording", "frame", "set_by", "updated_at"]
    list_filter = ["kind", "updated_at"]
    search_fields = ["session__id", "session__title"]
    list_select_related = ["session", "video", "set_by"]
    fields = ["session", "kind", "time", "recording", "frame", "set_by", "created_at", "updated_at"]
    readonly_fields = fields

    @admin.display(description="Time (m:ss)", ordering="time_ms")
    def time(self, obj):
        return format_duration(obj.time_ms // 1000)

    @admin.display(description="Recording")
    def recording(self, obj):
        return obj.video.display_name if obj.video_id else "Live stream"


@admin.register(PathologyResult)
class PathologyResultAdmin(AuditedReadsAdmin, NoWritesAdmin):
    """Append-only rows entered after sign-off; the latest per polyp counts."""

    list_display = ["session", "polyp_id", "histology", "entered_by", "created_at"]
    list_filter = ["histology", "created_at"]
    search_fields = ["session__id", "session__title", "polyp_id"]
    list_select_related = ["session", "entered_by"]
    fields = ["session", "polyp_id", "histology", "note", "entered_by", "created_at"]
    readonly_fields = fields
