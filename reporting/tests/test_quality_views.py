"""The QA quality page and its CSV: staff only, numbers as computed by hand, audited."""

import csv
import io
import re

import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from procedures.tests.factories import UserFactory

from .quality_data import colonoscopy_data, polyp, signed_session

pytestmark = pytest.mark.django_db

PAGE = reverse("quality:page")
CSV = reverse("quality:csv")
MARCH = {"date_from": "2025-03-01", "date_to": "2025-03-31", "grouping": "month"}


@pytest.fixture
def march(clinician, other_clinician):
    """dr.owner: 4 signed colonoscopies (one without a report), 1 upper GI, 1 unsigned;
    dr.other: 1 colonoscopy. Hand-computed values in the tests."""
    signed_session(clinician, day="2025-03-03", withdrawal_s=420,
                   data=colonoscopy_data(extent="cecum", bbps=(2, 2, 2), polyps=[polyp("tubular_adenoma")]))
    signed_session(clinician, day="2025-03-04", withdrawal_s=300,
                   data=colonoscopy_data(extent="incomplete", bbps=(1, 2, 2)))
    signed_session(clinician, day="2025-03-05", withdrawal_s=480,
                   data=colonoscopy_data(extent="terminal_ileum", bbps=(3, 3, 3), polyps=[polyp("pending")]))
    signed_session(clinician, day="2025-03-06")  # no structured report
    signed_session(clinician, day="2025-03-07", procedure_type="upper_gi", data={})
    signed_session(clinician, day="2025-03-08", status="review", withdrawal_s=30,
                   data=colonoscopy_data(extent="incomplete"))  # not signed: never counted
    signed_session(other_clinician, day="2025-03-10", withdrawal_s=200,
                   data=colonoscopy_data(extent="cecum", polyps=[polyp("hyperplastic")]))


def row_html(html: str, clinician: str, period: str) -> str:
    match = re.search(rf'<tr data-clinician="{re.escape(clinician)}" data-period="{period}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {clinician} {period}"
    return " ".join(match.group(1).split())


def csv_of(response) -> list[dict]:
    reader = csv.DictReader(io.StringIO(response.content.decode("utf-8")))
    return list(reader)


# --- who may see it --------------------------------------------------------------------------

@pytest.mark.parametrize("url", [PAGE, CSV])
def test_it_sends_anonymous_visitors_to_log_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.parametrize("url", [PAGE, CSV])
def test_it_refuses_clinicians_because_it_compares_clinicians(client, clinician, march, url):
    client.force_login(clinician)
    response = client.get(url, MARCH)
    assert response.status_code == 403
    assert b"dr.other" not in response.content
    assert not LogEntry.objects.filter(additional_data__what__startswith="quality_metrics").exists()


def test_it_refuses_a_connector_account(client, connector):
    client.force_login(connector)
    assert client.get(PAGE).status_code == 403


def test_the_navigation_links_it_for_staff_only(client, clinician, qa_user):
    client.force_login(clinician)
    assert PAGE.encode() not in client.get(reverse("procedures:list")).content
    client.force_login(qa_user)
    assert f'href="{PAGE}"'.encode() in client.get(reverse("procedures:list")).content


# --- the page --------------------------------------------------------------------------------

def test_staff_see_the_hand_computed_numbers(client, qa_user, march):
    client.force_login(qa_user)
    response = client.get(PAGE, MARCH)
    assert response.status_code == 200
    html = response.content.decode()

    totals = {row.clinician: row.metrics for row in response.context["report"].clinician_totals}
    assert set(totals) == {"dr.owner", "dr.other"}
    m = totals["dr.owner"]
    assert (m.colonoscopies, m.without_structured_data, m.upper_gi) == (4, 1, 1)
    assert (m.cecal_intubation.numerator, m.cecal_intubation.denominator) == (2, 3)
    assert (m.withdrawal_median_s, m.withdrawal_n) == (420, 3)
    assert (m.withdrawal_target_met.numerator, m.withdrawal_target_met.denominator) == (2, 3)
    assert (m.polyp_detection.numerator, m.polyp_detection.denominator) == (2, 3)
    assert (m.adenoma_detection.numerator, m.adenoma_detection.denominator, m.adenoma_pending_excluded) == (1, 2, 1)
    assert (m.adequate_preparation.numerator, m.adequate_preparation.denominator) == (2, 3)

    row = row_html(html, "dr.owner", "2025-03")
    assert "Mar 2025" in row
    assert "1 without structured data" in row
    assert "<strong>66.7%</strong> <small class=\"n\">2/3</small>" in row  # cecal intubation
    assert "<strong>7:00</strong> <small class=\"n\">n=3</small>" in row and "meets target" in row
    assert "<strong>50%</strong> <small class=\"n\">1/2</small>" in row  # ADR
    assert "1 excluded, histology pending" in row

    other = row_html(html, "dr.other", "2025-03")
    assert "<strong>3:20</strong>" in other and "below target" in other
    assert "<strong>0%</strong> <small class=\"n\">0/1</small>" in other  # ADR: hyperplastic only

    overall = response.context["report"].overall.metrics
    assert overall.colonoscopies == 5 and overall.withdrawal_median_s == 360


def test_the_page_states_its_definitions_and_embeds_chart_data_without_inline_script(client, qa_user, march):
    client.force_login(qa_user)
    html = client.get(PAGE, MARCH).content.decode()
    for term in ("Cecal intubation rate", "Adenoma detection rate (ADR)", "Adequate bowel preparation",
                 "pending pathology", "Unsigned sessions never count"):
        assert term in html
    assert html.count('<canvas data-metric="') == 7
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    inline = [attrs for attrs, body in scripts if body.strip() and 'type="application/json"' not in attrs]
    assert inline == []
    assert 'id="quality-chart-data" type="application/json"' in html
    assert "/static/vendor/chartjs/chart.umd.min.js" in html


def test_names_are_escaped_in_the_table_and_the_chart_data(client, qa_user):
    signed_session(UserFactory(username="<b>x</b>", role="clinician"), day="2025-03-03", data=colonoscopy_data())
    client.force_login(qa_user)
    html = client.get(PAGE, MARCH).content.decode()
    assert "<b>x</b>" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "\\u003Cb\\u003Ex\\u003C/b\\u003E" in html


def test_one_clinician_filter_shows_only_theirs(client, qa_user, march):
    client.force_login(qa_user)
    response = client.get(PAGE, {**MARCH, "clinician": "dr.other"})
    report = response.context["report"]
    assert report.clinicians == ["dr.other"]
    assert b'data-clinician="dr.owner"' not in response.content


def test_the_default_range_is_the_last_twelve_months(client, qa_user):
    client.force_login(qa_user)
    report = client.get(PAGE).context["report"]
    assert len(report.periods) == 12 and report.grouping == "month"


@pytest.mark.parametrize("query", [{"date_from": "2025-04-01", "date_to": "2025-03-01"},
                                   {"date_from": "2010-01-01", "date_to": "2025-03-01"},
                                   {"grouping": "fortnight"}, {"date_from": "yesterday"}, {"clinician": "nobody"}])
def test_it_refuses_unusable_filters_with_a_reason(client, qa_user, query):
    client.force_login(qa_user)
    response = client.get(PAGE, query)
    assert response.status_code == 400
    assert response.context["report"] is None
    assert b'class="error' in response.content
    assert client.get(CSV, query).status_code == 400
    assert not LogEntry.objects.filter(additional_data__what__startswith="quality_metrics").exists()


def test_a_page_view_is_one_audit_entry_with_the_filters(client, qa_user, clinician, march):
    client.force_login(qa_user)
    client.get(PAGE, MARCH)
    (entry,) = LogEntry.objects.filter(action=LogEntry.Action.ACCESS, additional_data__what="quality_metrics")
    assert entry.actor == qa_user
    assert entry.additional_data == {"what": "quality_metrics", "grouping": "month", "from": "2025-03-01",
                                     "to": "2025-03-31", "clinician": "all", "sessions_counted": 6}
    client.get(PAGE, {**MARCH, "clinician": "dr.owner"})
    latest = LogEntry.objects.filter(additional_data__what="quality_metrics").latest("timestamp")
    assert latest.object_pk == str(clinician.pk)  # the one clinician the figures are about
    assert latest.additional_data["clinician"] == "dr.owner"


# --- the CSV ---------------------------------------------------------------------------------

def test_the_csv_has_a_row_per_clinician_and_period_with_the_same_numbers(client, admin_user, march):
    client.force_login(admin_user)
    response = client.get(CSV, {**MARCH, "grouping": "week"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="quality-metrics_2025-03-01_2025-03-31_week.csv"')
    rows = csv_of(response)
    # dr.owner: ISO weeks 10 (3-9 Mar) and nothing else; dr.other: week 11 (10-16 Mar)
    assert [(r["Clinician (username)"], r["Period start (date)"]) for r in rows] == [
        ("dr.other", "2025-03-10"), ("dr.owner", "2025-03-03")]
    owner = rows[1]
    assert owner["Signed colonoscopies (n)"] == "4"
    assert owner["Colonoscopies without structured data (n)"] == "1"
    assert owner["Signed upper GI endoscopies (n)"] == "1"
    assert (owner["Cecum reached (n)"], owner["Extent recorded (n)"], owner["Cecal intubation rate (%)"]) == (
        "2", "3", "66.7")
    assert (owner["Median withdrawal time (m:ss)"], owner["Median withdrawal time (s)"]) == ("7:00", "420.0")
    assert owner["Withdrawals at least 6:00 (%)"] == "66.7"
    assert (owner["With an adenoma (n)"], owner["Histology complete (n)"], owner["Adenoma detection rate (%)"]) == (
        "1", "2", "50.0")
    assert owner["Adequate preparation rate (%)"] == "66.7"
    assert b"MRN-" not in response.content  # no patient data


def test_the_csv_guards_against_formula_injection(client, qa_user):
    for name in ("@SUM(A1)", "+cmd", "-2+3", "=HYPERLINK(1)"):
        signed_session(UserFactory(username=name, role="clinician"), day="2025-03-03", data=colonoscopy_data())
    client.force_login(qa_user)
    names = {r["Clinician (username)"] for r in csv_of(client.get(CSV, MARCH))}
    assert names == {"'@SUM(A1)", "'+cmd", "'-2+3", "'=HYPERLINK(1)"}


def test_a_csv_download_is_audited_with_its_filters(client, qa_user, march):
    client.force_login(qa_user)
    client.get(CSV, MARCH)
    (entry,) = LogEntry.objects.filter(action=LogEntry.Action.ACCESS, additional_data__what="quality_metrics_csv")
    assert entry.actor == qa_user
    assert entry.additional_data["from"] == "2025-03-01" and entry.additional_data["sessions_counted"] == 6
