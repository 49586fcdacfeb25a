"""reporting.quality: the metrics' arithmetic, exclusions, periods, charts and CSV rows
(pure: no database)."""

import datetime as dt
from types import SimpleNamespace

import pytest
from django.core.exceptions import ObjectDoesNotExist

from reporting import quality as q

from .quality_data import colonoscopy_data, polyp

D = dt.date.fromisoformat


def colo(clinician="dr.a", day="2025-03-14", withdrawal_s=None, **report):
    return q.Procedure(clinician, "colonoscopy", D(day), q.colonoscopy_report(colonoscopy_data(**report)),
                       withdrawal_s)


def no_data(clinician="dr.a", day="2025-03-14", withdrawal_s=None):
    return q.Procedure(clinician, "colonoscopy", D(day), None, withdrawal_s)


# --- metrics ---------------------------------------------------------------------------------

def test_it_takes_the_median_withdrawal_time_over_colonoscopies_with_a_time():
    m = q.compute_metrics([colo(withdrawal_s=300), colo(withdrawal_s=420), colo(withdrawal_s=480), colo()])
    assert m.withdrawal_median_s == 420
    assert m.withdrawal_median_text == "7:00"
    assert m.withdrawal_n == 3
    assert m.withdrawal_target_met == q.Rate(2, 3)
    assert m.withdrawal_median_meets_target is True


def test_the_median_of_an_even_count_is_the_mean_of_the_middle_two():
    m = q.compute_metrics([colo(withdrawal_s=s) for s in (200, 340, 370, 600)])
    assert m.withdrawal_median_s == 355
    assert m.withdrawal_median_text == "5:55"
    assert m.withdrawal_median_meets_target is False
    # exactly 6:00 meets the target (>=)
    assert q.compute_metrics([colo(withdrawal_s=360)]).withdrawal_target_met == q.Rate(1, 1)


def test_it_counts_cecal_intubation_over_colonoscopies_with_an_extent_recorded():
    m = q.compute_metrics([colo(extent="cecum"), colo(extent="terminal_ileum"), colo(extent="incomplete"),
                           colo(extent=None)])
    assert m.cecal_intubation == q.Rate(2, 3)
    assert m.cecal_intubation.percent == 66.7
    assert str(m.cecal_intubation) == "66.7% (2/3)"


def test_polyp_detection_counts_reports_with_at_least_one_polyp_row():
    m = q.compute_metrics([colo(polyps=[polyp(), polyp()]), colo(polyps=[polyp("pending")]), colo(), colo()])
    assert m.polyp_detection == q.Rate(2, 4)
    assert str(m.polyp_detection) == "50% (2/4)"


def test_adr_excludes_reports_with_pending_histology_and_counts_those_without_polyps():
    m = q.compute_metrics([
        colo(polyps=[polyp("tubular_adenoma")]),
        colo(polyps=[polyp("hyperplastic"), polyp("pending")]),  # excluded: one result still missing
        colo(polyps=[polyp("hyperplastic")]),
        colo(),  # no polyps: histology trivially complete, no adenoma
    ])
    assert m.adenoma_detection == q.Rate(1, 3)
    assert m.adenoma_pending_excluded == 1
    assert m.polyp_detection == q.Rate(3, 4)


@pytest.mark.parametrize("histology", ["sessile_serrated", "traditional_serrated_adenoma", "carcinoma",
                                       "hyperplastic", "other"])
def test_it_does_not_count_serrated_lesions_or_carcinoma_as_adenomas(histology):
    assert q.compute_metrics([colo(polyps=[polyp(histology)])]).adenoma_detection == q.Rate(0, 1)


@pytest.mark.parametrize("histology", sorted(q.ADENOMA_HISTOLOGY))
def test_it_counts_every_conventional_adenoma(histology):
    assert q.compute_metrics([colo(polyps=[polyp(histology)])]).adenoma_detection == q.Rate(1, 1)


def test_adequate_preparation_needs_at_least_two_in_every_segment_and_all_three_recorded():
    m = q.compute_metrics([colo(bbps=(2, 2, 2)), colo(bbps=(3, 3, 3)), colo(bbps=(3, 1, 3)),
                           colo(bbps=(3, None, 3)), colo(bbps=(None, None, None))])
    assert m.adequate_preparation == q.Rate(2, 3)


@pytest.mark.parametrize("data", [None, {}, [], "legacy text", {"extent": "moon"}, {"unknown_key": 1},
                                  {"polyps": [{"histology": "tumour?"}]}])
def test_it_reads_absent_empty_legacy_or_invalid_data_as_no_structured_data(data):
    assert q.colonoscopy_report(data) is None


def test_colonoscopies_without_structured_data_are_counted_apart_and_kept_out_of_report_rates():
    m = q.compute_metrics([colo(extent="cecum", polyps=[polyp()]), no_data(withdrawal_s=400), no_data()])
    assert m.colonoscopies == 3
    assert m.without_structured_data == 2
    assert m.cecal_intubation == q.Rate(1, 1)
    assert m.polyp_detection == q.Rate(1, 1)
    assert m.adequate_preparation == q.Rate(1, 1)
    # the withdrawal time comes from the timeline, not the report: it still counts
    assert m.withdrawal_n == 1 and m.withdrawal_median_s == 400


def test_other_procedure_types_are_plain_counts_and_no_colonoscopy_metric():
    m = q.compute_metrics([q.Procedure("dr.a", "upper_gi", D("2025-03-01")),
                           q.Procedure("dr.a", "upper_gi", D("2025-03-02")),
                           q.Procedure("dr.a", "bronchoscopy", D("2025-03-03")),
                           q.Procedure("dr.a", "other", D("2025-03-03"), withdrawal_s=500)])
    assert (m.colonoscopies, m.upper_gi, m.bronchoscopy, m.other, m.procedures) == (0, 2, 1, 1, 4)
    assert m.withdrawal_n == 0 and m.withdrawal_median_s is None
    assert m.polyp_detection.value is None
    assert str(m.polyp_detection) == "no data (0)"


# --- periods -------------------------------------------------------------------------------

def test_months_quarters_and_iso_weeks():
    month = q.period_of(D("2024-02-29"), "month")
    assert (month.start, month.end, month.key, month.label) == (D("2024-02-01"), D("2024-02-29"), "2024-02", "Feb 2024")
    quarter = q.period_of(D("2025-11-30"), "quarter")
    assert (quarter.start, quarter.end, quarter.key, quarter.label) == (D("2025-10-01"), D("2025-12-31"), "2025-Q4",
                                                                          "Q4 2025")
    # 30 Dec 2024 is a Monday in ISO week 1 of 2025
    week = q.period_of(D("2025-01-02"), "week")
    assert (week.start, week.end, week.key) == (D("2024-12-30"), D("2025-01-05"), "2025-W01")
    assert week.label == "Week 1 2025 (30 Dec)"
    with pytest.raises(ValueError, match="Unknown grouping"):
        q.period_of(D("2025-01-02"), "fortnight")


def test_periods_between_lists_every_period_that_overlaps_the_range_including_empty_ones():
    keys = [p.key for p in q.periods_between(D("2024-11-15"), D("2025-02-01"), "month")]
    assert keys == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert [p.key for p in q.periods_between(D("2025-01-01"), D("2025-12-31"), "quarter")] == [
        "2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]
    assert len(q.periods_between(D("2025-01-06"), D("2025-01-19"), "week")) == 2


def test_the_default_range_is_twelve_month_buckets_ending_today():
    first, last = q.default_range(D("2025-03-14"))
    assert (first, last) == (D("2024-04-01"), D("2025-03-14"))
    assert len(q.periods_between(first, last, "month")) == 12
    assert q.default_range(D("2025-01-31"))[0] == D("2024-02-01")


# --- the report ----------------------------------------------------------------------------

def test_it_computes_each_clinician_separately_per_period_and_overall():
    procedures = [
        colo("dr.a", "2025-01-10", withdrawal_s=400, extent="cecum"),
        colo("dr.a", "2025-01-20", withdrawal_s=300, extent="incomplete"),
        colo("dr.a", "2025-03-05", withdrawal_s=500, extent="cecum"),
        colo("dr.b", "2025-01-15", withdrawal_s=200, extent="cecum"),
        colo("dr.b", "2024-12-31", withdrawal_s=900),  # before the range: ignored
    ]
    report = q.build_quality_report(procedures, date_from=D("2025-01-01"), date_to=D("2025-03-31"))
    assert report.clinicians == ["dr.a", "dr.b"]
    cells = {(r.clinician, r.period.key): r.metrics for r in report.rows}
    assert set(cells) == {("dr.a", "2025-01"), ("dr.a", "2025-03"), ("dr.b", "2025-01")}  # Feb: nothing
    assert cells[("dr.a", "2025-01")].cecal_intubation == q.Rate(1, 2)
    assert cells[("dr.a", "2025-01")].withdrawal_median_s == 350
    assert cells[("dr.b", "2025-01")].withdrawal_median_s == 200
    totals = {r.clinician: r.metrics for r in report.clinician_totals}
    assert totals["dr.a"].colonoscopies == 3 and totals["dr.a"].withdrawal_median_s == 400
    assert totals["dr.b"].colonoscopies == 1
    assert [r.period.key for r in report.period_totals] == ["2025-01", "2025-02", "2025-03"]
    assert [r.metrics.colonoscopies for r in report.period_totals] == [3, 0, 1]
    assert report.overall.metrics.colonoscopies == 4
    assert report.overall.metrics.cecal_intubation == q.Rate(3, 4)


def test_chart_data_has_a_line_per_clinician_and_one_overall_with_gaps_where_nothing_is_computed():
    procedures = [colo("dr.a", "2025-01-10", withdrawal_s=390), colo("dr.b", "2025-03-05", withdrawal_s=300,
                                                                    polyps=[polyp()])]
    report = q.build_quality_report(procedures, date_from=D("2025-01-01"), date_to=D("2025-03-31"))
    data = q.chart_data(report)
    assert data["labels"] == ["Jan 2025", "Feb 2025", "Mar 2025"]
    charts = {c["id"]: c for c in data["charts"]}
    assert set(charts) == {c[0] for c in q.CHARTS}
    withdrawal = charts["withdrawal_median"]
    assert [s["label"] for s in withdrawal["series"]] == ["dr.a", "dr.b", q.ALL_CLINICIANS]
    assert withdrawal["series"][0]["values"] == [6.5, None, None]
    assert withdrawal["series"][2]["values"] == [6.5, None, 5.0]
    assert withdrawal["target"] == 6.0
    assert charts["polyp_detection"]["series"][1]["values"] == [None, None, 100.0]
    assert charts["colonoscopies"]["series"][0]["values"] == [1, 0, 0]  # a count is 0, never a gap


def test_chart_data_of_a_single_clinician_has_no_duplicate_overall_line():
    report = q.build_quality_report([colo("dr.a")], date_from=D("2025-03-01"), date_to=D("2025-03-31"))
    assert [s["label"] for s in q.chart_data(report)["charts"][0]["series"]] == ["dr.a"]


# --- CSV -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("cell", "expected"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"), ("-1", "'-1"), ("@sum", "'@sum"),
    ("\tx", "'\tx"), ("dr.a", "dr.a"), (12, "12"), (None, ""), ("6:00", "6:00"),
])
def test_csv_cells_that_a_spreadsheet_would_run_get_a_leading_apostrophe(cell, expected):
    assert q.csv_safe(cell) == expected


def test_csv_rows_are_one_per_clinician_and_period_with_units_in_the_header():
    procedures = [colo("=evil()", "2025-01-10", withdrawal_s=372.4, extent="cecum", polyps=[polyp("pending")]),
                  colo("dr.b", "2025-02-10")]
    report = q.build_quality_report(procedures, date_from=D("2025-01-05"), date_to=D("2025-02-20"))
    header, *rows = q.csv_rows(report)
    assert header == list(q.CSV_HEADER)
    assert "Median withdrawal time (m:ss)" in header and "Cecal intubation rate (%)" in header
    assert all(h.isascii() for h in header)
    assert len(rows) == 2
    row = dict(zip(header, rows[0]))
    assert row["Clinician (username)"] == "'=evil()"
    assert (row["Period"], row["Period start (date)"], row["Period end (date)"]) == ("Jan 2025", "2025-01-05",
                                                                                    "2025-01-31")
    assert row["Median withdrawal time (m:ss)"] == "6:12"
    assert row["Median withdrawal time (s)"] == "372.4"
    assert row["Cecal intubation rate (%)"] == "100.0"
    assert row["Histology pending, excluded (n)"] == "1"
    assert row["Adenoma detection rate (%)"] == ""  # nothing to compute: empty, not 0
    assert dict(zip(header, rows[1]))["Period end (date)"] == "2025-02-20"  # clipped to the range


# --- from a session ------------------------------------------------------------------------

def _session(**overrides):
    class NoReport:
        @property
        def structured_report(self):
            raise ObjectDoesNotExist

    values = dict(procedure_type="colonoscopy", started_at=dt.datetime(2025, 3, 14, 23, 30, tzinfo=dt.timezone.utc),
                  signed_at=dt.datetime(2025, 4, 2, 9, tzinfo=dt.timezone.utc),
                  clinician=SimpleNamespace(get_username=lambda: "dr.a"),
                  marks=SimpleNamespace(all=lambda: [
                      SimpleNamespace(kind="cecum_reached", time_ms=1000, video_id=None),
                      SimpleNamespace(kind="scope_out", time_ms=401_000, video_id=None)]))
    values.update(overrides)
    session = NoReport()
    session.__dict__.update(values)
    return session


def test_a_session_is_dated_by_its_start_else_its_signature_in_local_time(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    from django.utils import timezone

    timezone.activate("Europe/Berlin")
    try:
        assert q.procedure_from_session(_session()).day == D("2025-03-15")  # 23:30 UTC is past midnight there
        assert q.procedure_from_session(_session(started_at=None)).day == D("2025-04-02")
    finally:
        timezone.deactivate()


def test_a_session_without_a_report_row_still_has_its_withdrawal_time():
    procedure = q.procedure_from_session(_session())
    assert procedure.report is None
    assert procedure.withdrawal_s == 400
