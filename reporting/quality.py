"""Quality metrics of colonoscopy (and counts of the other procedures), per clinician and period.

Pure computation: ``procedure_from_session`` turns a signed session (as the selector
``reporting.quality_selectors.quality_session_list`` loads it) into the few facts the metrics
need; everything after that works on plain values, so the page, the CSV and the tests compute
the same numbers. Only signed reports count (the selector's job); this module never queries.

Definitions (also on the page and in the README; the page's text comes from ``DEFINITIONS``):
- Procedure date: the session's start, else its signature time, in the server's time zone.
- Cecal intubation: extent in ``CECUM_REACHED_EXTENTS`` / colonoscopies with an extent recorded.
  Every recorded extent counts, whatever stopped an incomplete one (no exclusions).
- Withdrawal time: ``withdrawal_from_marks`` on the session's marks; median over colonoscopies
  with a time, share of them >= ``WITHDRAWAL_TARGET_S``.
- Polyp detection: colonoscopies with >= 1 polyp row / colonoscopies with structured data.
- Adenoma detection: >= 1 conventional adenoma / colonoscopies whose every polyp has its
  histology, from the signed report or from the latest pathology result entered for it
  after sign-off (``reporting.pathology``); pending pathology excludes the report until it
  arrives; reports without polyps count.
- Adequate preparation: BBPS >= 2 in all three segments / colonoscopies with all three scored.
A colonoscopy without a structured report, with an empty one or with data that no longer
parses counts as "no structured data": it is a procedure (and can have a withdrawal time) but
is in no report-based denominator.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone

from . import vocabulary as v
from .pathology import apply_pathology
from .schema import ColonoscopyReport, ReportDataError, parse
from .withdrawal import format_duration, withdrawal_from_marks

GROUPINGS: v.Choices = (
    ("month", "Month"),
    ("quarter", "Quarter"),
    ("week", "Week (ISO, Monday to Sunday)"),
)
PERIOD_NOUNS = {"month": "month", "quarter": "quarter", "week": "week"}  # "by month", "per week"

# Conventional adenomas. Serrated lesions (sessile serrated, traditional serrated adenoma)
# are a separate indicator (serrated detection rate); carcinoma, hyperplastic and "other"
# are not adenomas.
ADENOMA_HISTOLOGY = frozenset({
    "tubular_adenoma", "tubulovillous_adenoma", "villous_adenoma", "adenoma_high_grade_dysplasia",
})
HISTOLOGY_PENDING = "pending"

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

TARGET_TEXT = f"≥ {format_duration(v.WITHDRAWAL_TARGET_S)}"  # m:ss, as every time on the page
# The CSV's header stays ASCII: spreadsheets guess the encoding of a file without a BOM.
CSV_TARGET_TEXT = f"at least {format_duration(v.WITHDRAWAL_TARGET_S)}"

DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("Procedures", "Signed colonoscopies whose procedure date falls in the period. The procedure date is "
     "when the session started, else when it was signed. Signed upper GI endoscopies and bronchoscopies "
     "are shown as plain counts. Unsigned sessions never count."),
    ("No structured data", "Signed colonoscopies without a structured report, with an empty one, or with "
     "report data that can no longer be read. They count as procedures (and for withdrawal time, which "
     "comes from the timeline) but are left out of every rate that needs the report."),
    ("Cecal intubation rate", "Colonoscopies whose extent is Cecum or Terminal ileum, divided by the "
     "colonoscopies with an extent recorded. Every recorded extent counts, including procedures stopped "
     "for poor preparation or obstruction (no exclusions)."),
    ("Withdrawal time", "From the 'Cecum reached' to the 'Scope out' mark on the timeline (both on the "
     f"same recording). Median over the colonoscopies that have a time (n shown); target {TARGET_TEXT}. "
     f"The share is the colonoscopies with a time of at least {format_duration(v.WITHDRAWAL_TARGET_S)}."),
    ("Polyp detection rate (PDR)", "Colonoscopies with at least one polyp in the report, divided by the "
     "colonoscopies with structured data."),
    ("Adenoma detection rate (ADR)", "Colonoscopies with at least one conventional adenoma (tubular, "
     "tubulovillous, villous, or adenoma with high-grade dysplasia), divided by the colonoscopies whose "
     "every polyp has its histology (reports without polyps included). A polyp's histology is the one in "
     "the signed report, or the latest pathology result entered for it after sign-off. A report with any "
     "polyp still 'pending pathology' is excluded until the result is entered (count shown). Serrated lesions, "
     "hyperplastic polyps and carcinoma are not counted as adenomas. All indications, not only screening."),
    ("Adequate bowel preparation", "Colonoscopies with a Boston Bowel Preparation Scale score of 2 or more "
     "in each of the right, transverse and left colon, divided by the colonoscopies with all three scores "
     "recorded."),
)


# --- periods -------------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Period:
    start: dt.date
    end: dt.date  # last day, inclusive
    key: str = field(compare=False)
    label: str = field(compare=False)


def _month_start(day: dt.date, months_ahead: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 + months_ahead
    return dt.date(index // 12, index % 12 + 1, 1)


def period_of(day: dt.date, grouping: str) -> Period:
    if grouping == "month":
        start = _month_start(day)
        return Period(start, _month_start(day, 1) - dt.timedelta(days=1), f"{start:%Y-%m}",
                      f"{_MONTHS[start.month - 1]} {start.year}")
    if grouping == "quarter":
        quarter = (day.month - 1) // 3 + 1
        start = dt.date(day.year, 3 * quarter - 2, 1)
        return Period(start, _month_start(start, 3) - dt.timedelta(days=1), f"{day.year}-Q{quarter}",
                      f"Q{quarter} {day.year}")
    if grouping == "week":
        start = day - dt.timedelta(days=day.weekday())
        iso = start.isocalendar()
        return Period(start, start + dt.timedelta(days=6), f"{iso.year}-W{iso.week:02d}",
                      f"Week {iso.week} {iso.year} ({start.day} {_MONTHS[start.month - 1]})")
    raise ValueError(f"Unknown grouping {grouping!r}; use one of {', '.join(v.codes(GROUPINGS))}.")


def periods_between(first: dt.date, last: dt.date, grouping: str) -> list[Period]:
    """Every period that overlaps ``first``..``last`` (inclusive), in order: a chart's x axis
    has the empty periods too."""
    periods, day = [], first
    while day <= last:
        period = period_of(day, grouping)
        periods.append(period)
        day = period.end + dt.timedelta(days=1)
    return periods


def default_range(today: dt.date) -> tuple[dt.date, dt.date]:
    """The last 12 months: from the first day of the month 11 months back to today (twelve
    month buckets, the current one partial)."""
    return _month_start(today, -11), today


# --- one procedure -------------------------------------------------------------------------

@dataclass(frozen=True)
class Procedure:
    """What the metrics need to know about one signed session."""

    clinician: str
    procedure_type: str
    day: dt.date  # the procedure date, local
    report: ColonoscopyReport | None = None  # None: no structured data (or not a colonoscopy)
    withdrawal_s: float | None = None


def procedure_date(session) -> dt.date:
    performed = session.started_at or session.signed_at
    return timezone.localtime(performed).date()


def colonoscopy_report(data) -> ColonoscopyReport | None:
    """The parsed report, or None when there is nothing usable (absent, empty, legacy or
    invalid data): such a session is counted as "no structured data", never an error."""
    if not data or not isinstance(data, dict):
        return None
    try:
        report = parse("colonoscopy", data)
    except (ReportDataError, TypeError, ValueError):
        return None
    return report if isinstance(report, ColonoscopyReport) else None


def procedure_from_session(session) -> Procedure:
    """``session`` as the quality selector loads it: clinician, structured_report, the
    withdrawal marks and the pathology results already fetched (no query here). The report's
    polyps carry their latest pathology result's histology."""
    kind = session.procedure_type
    if kind != "colonoscopy":
        return Procedure(session.clinician.get_username(), kind, procedure_date(session))
    try:
        data = session.structured_report.data
    except ObjectDoesNotExist:
        data = None
    withdrawal = withdrawal_from_marks(session.marks.all())
    report = colonoscopy_report(data)
    if report is not None:
        report = apply_pathology(report, session.pathology_results.all())
    return Procedure(session.clinician.get_username(), kind, procedure_date(session),
                     report, withdrawal.seconds)


# --- metrics -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return None if not self.denominator else self.numerator / self.denominator

    @property
    def percent(self) -> float | None:
        return None if self.value is None else round(100 * self.value, 1)

    @property
    def percent_text(self) -> str:
        return "" if self.percent is None else f"{self.percent:.1f}".removesuffix(".0") + "%"

    def __str__(self) -> str:
        if not self.denominator:
            return "no data (0)"
        return f"{self.percent_text} ({self.numerator}/{self.denominator})"


@dataclass(frozen=True)
class Metrics:
    colonoscopies: int = 0
    without_structured_data: int = 0
    upper_gi: int = 0
    bronchoscopy: int = 0
    other: int = 0
    cecal_intubation: Rate = Rate(0, 0)
    withdrawal_median_s: float | None = None
    withdrawal_target_met: Rate = Rate(0, 0)  # denominator: colonoscopies with a time
    polyp_detection: Rate = Rate(0, 0)
    adenoma_detection: Rate = Rate(0, 0)
    adenoma_pending_excluded: int = 0
    adequate_preparation: Rate = Rate(0, 0)

    @property
    def procedures(self) -> int:
        return self.colonoscopies + self.upper_gi + self.bronchoscopy + self.other

    @property
    def withdrawal_n(self) -> int:
        return self.withdrawal_target_met.denominator

    @property
    def withdrawal_median_text(self) -> str:
        return format_duration(self.withdrawal_median_s)

    @property
    def withdrawal_median_meets_target(self) -> bool | None:
        if self.withdrawal_median_s is None:
            return None
        return self.withdrawal_median_s >= v.WITHDRAWAL_TARGET_S


def compute_metrics(procedures: Iterable[Procedure]) -> Metrics:
    counts = defaultdict(int)
    no_data = cecal = cecal_n = met = pdr = pdr_n = adr = adr_n = pending = prep = prep_n = 0
    times: list[float] = []
    for p in procedures:
        counts[p.procedure_type] += 1
        if p.procedure_type != "colonoscopy":
            continue
        if p.withdrawal_s is not None:
            times.append(p.withdrawal_s)
            met += p.withdrawal_s >= v.WITHDRAWAL_TARGET_S
        report = p.report
        if report is None:
            no_data += 1
            continue
        if report.cecum_reached is not None:
            cecal_n += 1
            cecal += report.cecum_reached
        pdr_n += 1
        pdr += bool(report.polyps)
        if any(polyp.histology == HISTOLOGY_PENDING for polyp in report.polyps):
            pending += 1
        else:
            adr_n += 1
            adr += any(polyp.histology in ADENOMA_HISTOLOGY for polyp in report.polyps)
        if report.bbps_adequate is not None:
            prep_n += 1
            prep += report.bbps_adequate
    return Metrics(
        colonoscopies=counts["colonoscopy"], without_structured_data=no_data, upper_gi=counts["upper_gi"],
        bronchoscopy=counts["bronchoscopy"],
        other=sum(n for kind, n in counts.items() if kind not in ("colonoscopy", "upper_gi", "bronchoscopy")),
        cecal_intubation=Rate(cecal, cecal_n),
        withdrawal_median_s=statistics.median(times) if times else None,
        withdrawal_target_met=Rate(met, len(times)),
        polyp_detection=Rate(pdr, pdr_n), adenoma_detection=Rate(adr, adr_n), adenoma_pending_excluded=pending,
        adequate_preparation=Rate(prep, prep_n),
    )


# --- the whole report ----------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    clinician: str | None  # None: all clinicians
    period: Period | None  # None: the whole date range
    metrics: Metrics


@dataclass(frozen=True)
class QualityReport:
    grouping: str
    date_from: dt.date
    date_to: dt.date
    periods: list[Period]
    clinicians: list[str]  # usernames with at least one signed procedure in the range
    rows: list[Row]  # clinician x period, only where the clinician has a signed procedure
    period_totals: list[Row]  # all clinicians, every period of the range
    clinician_totals: list[Row]  # each clinician, the whole range
    overall: Row

    def clipped(self, period: Period) -> tuple[dt.date, dt.date]:
        """The part of ``period`` inside the date range (the first and last may be partial)."""
        return max(period.start, self.date_from), min(period.end, self.date_to)


def build_quality_report(procedures: Iterable[Procedure], *, date_from: dt.date, date_to: dt.date,
                         grouping: str = "month") -> QualityReport:
    periods = periods_between(date_from, date_to, grouping)
    by_key = {p.key: p for p in periods}
    cells: dict[tuple[str, str], list[Procedure]] = defaultdict(list)
    per_period: dict[str, list[Procedure]] = defaultdict(list)
    per_clinician: dict[str, list[Procedure]] = defaultdict(list)
    kept: list[Procedure] = []
    for p in procedures:
        if not date_from <= p.day <= date_to:
            continue  # the selector filters already; a caller passing more gets the same answer
        key = period_of(p.day, grouping).key
        cells[(p.clinician, key)].append(p)
        per_period[key].append(p)
        per_clinician[p.clinician].append(p)
        kept.append(p)
    clinicians = sorted(per_clinician, key=str.lower)
    rows = [Row(c, period, compute_metrics(cells[(c, period.key)]))
            for c in clinicians for period in periods if (c, period.key) in cells]
    return QualityReport(
        grouping=grouping, date_from=date_from, date_to=date_to, periods=periods, clinicians=clinicians,
        rows=rows,
        period_totals=[Row(None, by_key[period.key], compute_metrics(per_period.get(period.key, ())))
                       for period in periods],
        clinician_totals=[Row(c, None, compute_metrics(per_clinician[c])) for c in clinicians],
        overall=Row(None, None, compute_metrics(kept)),
    )


# --- charts --------------------------------------------------------------------------------

# (id, title, unit, value of a Metrics, n behind the value)
CHARTS = (
    ("colonoscopies", "Signed colonoscopies", "count", lambda m: m.colonoscopies, lambda m: m.colonoscopies),
    ("cecal_intubation", "Cecal intubation rate", "%", lambda m: m.cecal_intubation.percent,
     lambda m: m.cecal_intubation.denominator),
    ("withdrawal_median", "Median withdrawal time", "min",
     lambda m: None if m.withdrawal_median_s is None else round(m.withdrawal_median_s / 60, 3),
     lambda m: m.withdrawal_n),
    ("withdrawal_target_met", f"Withdrawals {TARGET_TEXT}", "%", lambda m: m.withdrawal_target_met.percent,
     lambda m: m.withdrawal_target_met.denominator),
    ("polyp_detection", "Polyp detection rate", "%", lambda m: m.polyp_detection.percent,
     lambda m: m.polyp_detection.denominator),
    ("adenoma_detection", "Adenoma detection rate", "%", lambda m: m.adenoma_detection.percent,
     lambda m: m.adenoma_detection.denominator),
    ("adequate_preparation", "Adequate bowel preparation", "%", lambda m: m.adequate_preparation.percent,
     lambda m: m.adequate_preparation.denominator),
)
ALL_CLINICIANS = "All clinicians"


def chart_data(report: QualityReport) -> dict:
    """The charts as JSON-ready data: per metric, one line per clinician (and one for all
    clinicians when there are several), a value per period (null: nothing to compute)."""
    cell = {(row.clinician, row.period.key): row.metrics for row in report.rows}
    empty = Metrics()
    series_sources = [(c, [cell.get((c, p.key), empty) for p in report.periods]) for c in report.clinicians]
    if len(report.clinicians) != 1:
        series_sources.append((ALL_CLINICIANS, [row.metrics for row in report.period_totals]))
    charts = []
    for chart_id, title, unit, value, n in CHARTS:
        series = [{"label": name, "overall": name == ALL_CLINICIANS,
                   "values": [value(m) if (n(m) or chart_id == "colonoscopies") else None for m in metrics],
                   "n": [n(m) for m in metrics]}
                  for name, metrics in series_sources]
        chart = {"id": chart_id, "title": title, "unit": unit, "series": series}
        if chart_id == "withdrawal_median":
            chart["target"] = v.WITHDRAWAL_TARGET_S / 60
            chart["target_label"] = f"Target {TARGET_TEXT}"
        charts.append(chart)
    return {"labels": [p.label for p in report.periods], "charts": charts}


# --- CSV -----------------------------------------------------------------------------------

CSV_HEADER = (
    "Clinician (username)", "Period", "Period start (date)", "Period end (date)",
    "Signed colonoscopies (n)", "Colonoscopies without structured data (n)",
    "Signed upper GI endoscopies (n)", "Signed bronchoscopies (n)", "Other signed procedures (n)",
    "Cecum reached (n)", "Extent recorded (n)", "Cecal intubation rate (%)",
    "Withdrawal times (n)", "Median withdrawal time (m:ss)", "Median withdrawal time (s)",
    f"Withdrawals {CSV_TARGET_TEXT} (n)", f"Withdrawals {CSV_TARGET_TEXT} (%)",
    "With a polyp (n)", "With structured data (n)", "Polyp detection rate (%)",
    "With an adenoma (n)", "Histology complete (n)", "Histology pending, excluded (n)", "Adenoma detection rate (%)",
    "Adequate preparation (n)", "BBPS recorded in all segments (n)", "Adequate preparation rate (%)",
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str:
    """A cell as text that no spreadsheet runs as a formula (OWASP CSV injection: a
    leading apostrophe keeps it text)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _pct(rate: Rate) -> str:
    return "" if rate.percent is None else f"{rate.percent:.1f}"


def csv_rows(report: QualityReport) -> list[list[str]]:
    """Header plus one row per clinician x period (only where they have signed procedures)."""
    out = [list(CSV_HEADER)]
    for row in report.rows:
        m = row.metrics
        start, end = report.clipped(row.period)
        out.append([csv_safe(cell) for cell in (
            row.clinician, row.period.label, start.isoformat(), end.isoformat(),
            m.colonoscopies, m.without_structured_data, m.upper_gi, m.bronchoscopy, m.other,
            m.cecal_intubation.numerator, m.cecal_intubation.denominator, _pct(m.cecal_intubation),
            m.withdrawal_n, m.withdrawal_median_text,
            "" if m.withdrawal_median_s is None else f"{m.withdrawal_median_s:.1f}",
            m.withdrawal_target_met.numerator, _pct(m.withdrawal_target_met),
            m.polyp_detection.numerator, m.polyp_detection.denominator, _pct(m.polyp_detection),
            m.adenoma_detection.numerator, m.adenoma_detection.denominator, m.adenoma_pending_excluded,
            _pct(m.adenoma_detection),
            m.adequate_preparation.numerator, m.adequate_preparation.denominator, _pct(m.adequate_preparation),
        )])
    return out
