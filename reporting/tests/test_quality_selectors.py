"""reporting.quality_selectors: which sessions the metrics see, loaded in two queries."""

import datetime as dt

import pytest

from reporting import quality as q
from reporting.models import StructuredReport
from reporting.quality_selectors import quality_clinician_choices, quality_session_list

from .quality_data import colonoscopy_data, signed_session

D = dt.date.fromisoformat
pytestmark = pytest.mark.django_db


def listed(**filters):
    return set(quality_session_list(date_from=D("2025-03-01"), date_to=D("2025-03-31"), **filters))


def test_it_lists_only_signed_sessions_in_the_range(clinician):
    inside = signed_session(clinician, day="2025-03-01")
    last_day = signed_session(clinician, day="2025-03-31")
    signed_session(clinician, day="2025-03-10", status="review")
    signed_session(clinician, day="2025-02-28")
    signed_session(clinician, day="2025-04-01")
    assert listed() == {inside, last_day}


def test_a_never_started_session_is_dated_by_its_signature(clinician):
    unstarted = signed_session(clinician, day=None, signed_day="2025-03-20")
    signed_session(clinician, day="2025-02-20", signed_day="2025-03-20")  # performed in February
    assert listed() == {unstarted}


def test_it_filters_by_clinician_and_keeps_every_procedure_type(clinician, other_clinician):
    mine = signed_session(clinician, procedure_type="upper_gi")
    theirs = signed_session(other_clinician)
    assert listed(clinician=clinician) == {mine}
    assert listed() == {mine, theirs}


def test_it_loads_reports_marks_and_pathology_in_three_queries(clinician, other_clinician,
                                                                django_assert_num_queries):
    for who in (clinician, other_clinician):
        signed_session(who, data=colonoscopy_data(), withdrawal_s=400)
        signed_session(who, data=None, withdrawal_s=None)
    signed_session(clinician, procedure_type="bronchoscopy")
    # The sessions, their withdrawal marks, their pathology results: one query each.
    with django_assert_num_queries(3):
        procedures = [q.procedure_from_session(s) for s in quality_session_list(
            date_from=D("2025-03-01"), date_to=D("2025-03-31"))]
    assert sorted(p.withdrawal_s or 0 for p in procedures) == [0, 0, 0, 400, 400]
    assert sum(p.report is not None for p in procedures) == 2


def test_stored_data_that_no_longer_parses_is_no_structured_data_not_a_crash(clinician):
    session = signed_session(clinician, data=colonoscopy_data())
    # Written around the schema (as a legacy row or a hand edit would be).
    StructuredReport.objects.filter(session=session).update(data={"extent": "moon", "schema_version": 0})
    (loaded,) = quality_session_list(date_from=D("2025-03-01"), date_to=D("2025-03-31"))
    assert q.procedure_from_session(loaded).report is None


def test_the_clinician_choices_are_clinicians_and_owners_of_signed_sessions(clinician, qa_user, admin_user):
    from procedures.tests.factories import UserFactory

    former = UserFactory(username="dr.former")  # no longer in the clinician group
    signed_session(former)
    assert list(quality_clinician_choices()) == [former, clinician]  # by username
