"""Pathology results applied to a signed colonoscopy report (pure: no queries).

Histology arrives days after the procedure, when the report is signed and read-only. The
results are kept beside it (``models.PathologyResult``, append-only); wherever a report's
histology matters (the report page, the exports, the surveillance suggestion, the adenoma
detection rate) the latest result per polyp stands in for the report's own value. The
signed report itself is never changed.
"""

from __future__ import annotations

from collections.abc import Iterable

from analysis.engine.schemas import humanize

from . import vocabulary as v
from .schema import ColonoscopyReport, Polyp

PENDING = "pending"
RESULT_HISTOLOGY: v.Choices = tuple((code, text) for code, text in v.POLYP_HISTOLOGY if code != PENDING)


def latest_by_polyp(results: Iterable) -> dict:
    """polyp id -> its latest result (by ``created_at``; a correction is a newer row)."""
    latest: dict = {}
    for result in sorted(results, key=lambda r: r.created_at):
        latest[result.polyp_id] = result
    return latest


def apply_pathology(report: ColonoscopyReport, results: Iterable) -> ColonoscopyReport:
    """A copy of ``report`` whose polyps carry their latest pathology result's histology.
    Results naming no polyp of the report are ignored (they cannot be entered: the service
    checks the id)."""
    latest = latest_by_polyp(results)
    if not latest:
        return report
    polyps = [polyp.model_copy(update={"histology": latest[polyp.id].histology})
              if polyp.id and polyp.id in latest else polyp for polyp in report.polyps]
    return report.model_copy(update={"polyps": polyps})


def all_have_histology(report: ColonoscopyReport) -> bool:
    return all(polyp.histology != PENDING for polyp in report.polyps)


def polyp_number(report: ColonoscopyReport, polyp_id: str) -> int | None:
    for number, polyp in enumerate(report.polyps, start=1):
        if polyp.id == polyp_id:
            return number
    return None


def polyp_description(polyp: Polyp) -> str:
    """"Sigmoid colon, 6 mm" (labels; the parts that are recorded)."""
    parts = []
    if polyp.location:
        parts.append(v.label(v.location_choices("colonoscopy"), polyp.location) or humanize(polyp.location))
    if polyp.size_mm is not None:
        parts.append(f"{polyp.size_mm:g} mm")
    return ", ".join(parts)


def polyp_title(report: ColonoscopyReport, polyp_id: str) -> str:
    """"Polyp 2 (Sigmoid colon, 6 mm)", as the report numbers its rows."""
    number = polyp_number(report, polyp_id)
    if number is None:
        return "A polyp no longer in the report"
    described = polyp_description(report.polyps[number - 1])
    return f"Polyp {number}" + (f" ({described})" if described else "")
