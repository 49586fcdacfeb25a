"""One test per row of the 2020 USMSTF table that reporting.surveillance implements."""

import pytest

from reporting import surveillance as s
from reporting.schema import ColonoscopyReport


def report(*polyps, extent="cecum", bbps=(2, 2, 2)):
    right, transverse, left = bbps
    return ColonoscopyReport.model_validate({
        "extent": extent, "bbps_right": right, "bbps_transverse": transverse, "bbps_left": left,
        "polyps": list(polyps),
    })


def polyp(histology="tubular_adenoma", size_mm=5, **extra):
    return {"histology": histology, "size_mm": size_mm, "location": "ascending_colon", **extra}


@pytest.mark.parametrize(
    ("polyps", "rule"),
    [
        ((), s.NORMAL),
        ((polyp("hyperplastic", 4, location="rectum"),), s.HYPERPLASTIC_SMALL),
        ((polyp("hyperplastic", 12),), s.HYPERPLASTIC_LARGE),
        ((polyp(), polyp()), s.ADENOMA_1_2),
        ((polyp(),) * 3, s.ADENOMA_3_4),
        ((polyp(),) * 4, s.ADENOMA_3_4),
        ((polyp(),) * 5, s.ADENOMA_5_10),
        ((polyp(),) * 10, s.ADENOMA_5_10),
        ((polyp(),) * 11, s.ADENOMA_OVER_10),
        ((polyp(size_mm=10),), s.ADENOMA_ADVANCED),
        ((polyp("tubulovillous_adenoma"),), s.ADENOMA_ADVANCED),
        ((polyp("villous_adenoma"),), s.ADENOMA_ADVANCED),
        ((polyp("adenoma_high_grade_dysplasia"),), s.ADENOMA_ADVANCED),
        ((polyp("sessile_serrated"),) * 2, s.SSL_1_2),
        ((polyp("sessile_serrated"),) * 3, s.SSL_3_4),
        ((polyp("sessile_serrated"),) * 6, s.SSL_5_10),
        ((polyp("sessile_serrated", 15),), s.SSL_ADVANCED),
        ((polyp("sessile_serrated_dysplasia"),), s.SSL_ADVANCED),
        ((polyp("traditional_serrated_adenoma"),), s.SSL_ADVANCED),
        ((polyp(size_mm=25, resection="emr_piecemeal"),), s.PIECEMEAL),
        ((polyp("sessile_serrated", 22, resection="emr_piecemeal"),), s.PIECEMEAL),
    ],
)
def test_it_suggests_the_table_row(polyps, rule):
    suggestion = s.suggest_interval(report(*polyps))
    assert (suggestion.months, suggestion.rule) == (rule.months, rule.text)
    assert suggestion.provisional is False


def test_the_shortest_interval_wins_across_kinds():
    # 1 small adenoma (7-10 y) + an SSL >= 10 mm (3 y) + small hyperplastic (10 y) -> 3 years.
    suggestion = s.suggest_interval(report(polyp(), polyp("sessile_serrated", 11), polyp("hyperplastic", 3)))
    assert suggestion.months == 36
    assert suggestion.rule == s.SSL_ADVANCED.text


def test_inadequate_preparation_means_repeat_within_a_year():
    suggestion = s.suggest_interval(report(bbps=(1, 3, 3)))
    assert (suggestion.months, suggestion.rule) == (12, s.INADEQUATE_PREP.text)


def test_piecemeal_is_shorter_than_inadequate_preparation():
    suggestion = s.suggest_interval(report(polyp(size_mm=30, resection="emr_piecemeal"), bbps=(0, 1, 1)))
    assert suggestion.months == 6


def test_an_incomplete_examination_gets_no_table_interval():
    suggestion = s.suggest_interval(report(extent="incomplete"))
    assert suggestion.months is None
    assert "complete the colon evaluation" in suggestion.rule


def test_no_extent_gets_no_suggestion_yet():
    assert s.suggest_interval(ColonoscopyReport()).months is None


def test_carcinoma_is_referred_not_scheduled():
    suggestion = s.suggest_interval(report(polyp("carcinoma", 30), polyp()))
    assert suggestion.months is None
    assert "cancer pathway" in suggestion.rule


class TestPendingPathology:
    def test_a_nice_2_polyp_is_treated_as_an_adenoma_provisionally(self):
        suggestion = s.suggest_interval(report(polyp("pending", 6, nice="2")))
        assert suggestion.months == s.ADENOMA_1_2.months
        assert suggestion.provisional is True
        assert suggestion.rule.endswith("(provisional until pathology)")

    def test_a_small_rectosigmoid_nice_1_polyp_counts_as_hyperplastic(self):
        suggestion = s.suggest_interval(report(polyp("pending", 4, nice="1", location="sigmoid_colon")))
        assert suggestion.months == 120
        assert suggestion.provisional is True

    def test_a_proximal_nice_1_polyp_counts_as_serrated(self):
        suggestion = s.suggest_interval(report(polyp("pending", 4, nice="1", location="cecum")))
        assert suggestion.months == s.SSL_1_2.months

    def test_nice_3_points_to_the_cancer_pathway(self):
        assert s.suggest_interval(report(polyp("pending", 18, nice="3"))).months is None

    def test_a_missing_size_is_said(self):
        suggestion = s.suggest_interval(report(polyp("pending", None, nice="2")))
        assert "size is missing" in suggestion.rule


@pytest.mark.parametrize(("months", "text"), [
    (0, "No surveillance colonoscopy"), (6, "Repeat colonoscopy in 6 months"),
    (12, "Repeat colonoscopy in 1 year"), (36, "Repeat colonoscopy in 3 years"), (None, "No interval"),
])
def test_interval_display(months, text):
    assert s.interval_display(months) == text


def test_every_rule_fits_the_stored_field():
    rules = [value for value in vars(s).values() if isinstance(value, s.Rule)]
    assert len(rules) >= 18
    assert all(len(rule.text) + len(" (provisional until pathology); a polyp size is missing") <= 200 for rule in rules)
