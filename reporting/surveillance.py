"""The surveillance interval suggested after a colonoscopy (2020 US Multi-Society Task Force).

Source: Gupta S, et al. "Recommendations for Follow-Up After Colonoscopy and Polypectomy: A
Consensus Update by the US Multi-Society Task Force on Colorectal Cancer."
Gastroenterology 2020;158:1131-1153, Table 1 (and its text on inadequate preparation and
piecemeal resection). The table gives ranges ("7-10 years"); the suggestion is the start
of the range, and the rule shown to the clinician states the whole range.

It is a suggestion: the clinician confirms or changes it (``services.surveillance_confirm``)
and only that choice enters the signed report. Each polyp is classed by its histology; until
pathology reports (histology "pending") it is classed by its NICE class and the suggestion
is marked provisional. The shortest interval any finding calls for wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import ColonoscopyReport, Polyp

RECTOSIGMOID = ("sigmoid_colon", "rectum")


@dataclass(frozen=True)
class Rule:
    months: int | None
    text: str


# Table 1 of the 2020 update, one entry per row used here.
NORMAL = Rule(120, "Normal colonoscopy: repeat in 10 years")
HYPERPLASTIC_SMALL = Rule(120, "Hyperplastic polyp(s) < 10 mm: repeat in 10 years")
HYPERPLASTIC_LARGE = Rule(36, "Hyperplastic polyp >= 10 mm: repeat in 3-5 years")
ADENOMA_1_2 = Rule(84, "1-2 tubular adenomas < 10 mm: repeat in 7-10 years")
ADENOMA_3_4 = Rule(36, "3-4 tubular adenomas < 10 mm: repeat in 3-5 years")
ADENOMA_5_10 = Rule(36, "5-10 tubular adenomas < 10 mm: repeat in 3 years")
ADENOMA_ADVANCED = Rule(36, "Adenoma >= 10 mm, tubulovillous/villous or with high-grade dysplasia: repeat in 3 years")
ADENOMA_OVER_10 = Rule(12, "More than 10 adenomas: repeat in 1 year (consider genetic testing)")
SSL_1_2 = Rule(60, "1-2 sessile serrated lesions < 10 mm: repeat in 5-10 years")
SSL_3_4 = Rule(36, "3-4 sessile serrated lesions < 10 mm: repeat in 3-5 years")
SSL_5_10 = Rule(36, "5-10 sessile serrated lesions < 10 mm: repeat in 3 years")
SSL_ADVANCED = Rule(36, "Sessile serrated lesion >= 10 mm or with dysplasia, or traditional serrated adenoma: "
                        "repeat in 3 years")
SSL_OVER_10 = Rule(12, "More than 10 serrated lesions: repeat in 1 year (consider serrated polyposis syndrome)")
PIECEMEAL = Rule(6, "Piecemeal resection of a lesion >= 20 mm: repeat in 6 months to check the site")
INADEQUATE_PREP = Rule(12, "Inadequate bowel preparation (a BBPS segment below 2): repeat within 1 year")
INCOMPLETE = Rule(None, "Incomplete examination: complete the colon evaluation; the table applies to complete "
                        "examinations")
NO_EXTENT = Rule(None, "Record the extent reached first")
CARCINOMA = Rule(None, "Carcinoma or suspected deep invasion (NICE 3): follow the cancer pathway, not the "
                       "surveillance table")

ADENOMA_HISTOLOGY = ("tubular_adenoma", "tubulovillous_adenoma", "villous_adenoma", "adenoma_high_grade_dysplasia")
ADVANCED_ADENOMA_HISTOLOGY = ("tubulovillous_adenoma", "villous_adenoma", "adenoma_high_grade_dysplasia")
SERRATED_HISTOLOGY = ("sessile_serrated", "sessile_serrated_dysplasia", "traditional_serrated_adenoma")
ADVANCED_SERRATED_HISTOLOGY = ("sessile_serrated_dysplasia", "traditional_serrated_adenoma")


@dataclass(frozen=True)
class Suggestion:
    months: int | None
    rule: str
    provisional: bool = False

    @property
    def display(self) -> str:
        return interval_display(self.months)


def interval_display(months: int | None) -> str:
    """``36`` -> "Repeat colonoscopy in 3 years"; ``0`` -> no surveillance colonoscopy."""
    if months is None:
        return "No interval"
    if months == 0:
        return "No surveillance colonoscopy"
    if months % 12 == 0:
        years = months // 12
        return f"Repeat colonoscopy in {years} year{'s' if years != 1 else ''}"
    return f"Repeat colonoscopy in {months} month{'s' if months != 1 else ''}"


def _polyp_class(polyp: Polyp) -> tuple[str, bool]:
    """(class, provisional): class is adenoma / advanced_adenoma / serrated / advanced_serrated /
    hyperplastic / carcinoma / unclassified."""
    large = polyp.size_mm is not None and polyp.size_mm >= 10
    histology = polyp.histology
    if histology == "carcinoma":
        return "carcinoma", False
    if histology in ADENOMA_HISTOLOGY:
        advanced = large or histology in ADVANCED_ADENOMA_HISTOLOGY
        return ("advanced_adenoma" if advanced else "adenoma"), False
    if histology in SERRATED_HISTOLOGY:
        advanced = large or histology in ADVANCED_SERRATED_HISTOLOGY
        return ("advanced_serrated" if advanced else "serrated"), False
    if histology == "hyperplastic":
        return ("hyperplastic_large" if large else "hyperplastic"), False
    if histology == "other":
        return "unclassified", False
    # Pending pathology: the optical diagnosis stands in, and the result is provisional.
    if polyp.nice == "3":
        return "carcinoma", True
    if polyp.nice == "1":
        # Diminutive NICE 1 lesions in the rectosigmoid are hyperplastic in practice; elsewhere a
        # NICE 1 lesion may be a sessile serrated lesion, the shorter interval.
        if not large and polyp.location in RECTOSIGMOID:
            return "hyperplastic", True
        return ("advanced_serrated" if large else "serrated"), True
    return ("advanced_adenoma" if large else "adenoma"), True


def _count_rule(count: int, advanced: bool, rules: tuple[Rule, Rule, Rule, Rule, Rule]) -> Rule | None:
    one_two, three_four, five_ten, over_ten, advanced_rule = rules
    if count == 0:
        return None
    if count > 10:
        return over_ten
    candidates = [advanced_rule] if advanced else []
    candidates.append(five_ten if count >= 5 else three_four if count >= 3 else one_two)
    return min(candidates, key=lambda rule: rule.months)


def suggest_interval(report: ColonoscopyReport) -> Suggestion:
    if report.extent is None:
        return Suggestion(NO_EXTENT.months, NO_EXTENT.text)
    if report.extent == "incomplete":
        return Suggestion(INCOMPLETE.months, INCOMPLETE.text)

    classes = [_polyp_class(polyp) for polyp in report.polyps]
    provisional = any(p for _, p in classes)
    kinds = [kind for kind, _ in classes]
    if "carcinoma" in kinds:
        return Suggestion(CARCINOMA.months, CARCINOMA.text, provisional)

    rules: list[Rule] = []
    adenomas = [k for k in kinds if k in ("adenoma", "advanced_adenoma")]
    serrated = [k for k in kinds if k in ("serrated", "advanced_serrated")]
    rule = _count_rule(len(adenomas), "advanced_adenoma" in adenomas,
                       (ADENOMA_1_2, ADENOMA_3_4, ADENOMA_5_10, ADENOMA_OVER_10, ADENOMA_ADVANCED))
    if rule:
        rules.append(rule)
    rule = _count_rule(len(serrated), "advanced_serrated" in serrated,
                       (SSL_1_2, SSL_3_4, SSL_5_10, SSL_OVER_10, SSL_ADVANCED))
    if rule:
        rules.append(rule)
    if "hyperplastic_large" in kinds:
        rules.append(HYPERPLASTIC_LARGE)
    elif "hyperplastic" in kinds:
        rules.append(HYPERPLASTIC_SMALL)
    if any(polyp.resection == "emr_piecemeal" and (polyp.size_mm or 0) >= 20 for polyp in report.polyps):
        rules.append(PIECEMEAL)
    if report.bbps_adequate is False:
        rules.append(INADEQUATE_PREP)
    if not rules:
        rules.append(NORMAL)  # no polyp, or only ones the table has no row for ("other" histology)

    chosen = min(rules, key=lambda rule: rule.months)
    text = chosen.text
    if provisional:
        text += " (provisional until pathology)"
    if any(polyp.size_mm is None for polyp in report.polyps):
        text += "; a polyp size is missing"
    return Suggestion(chosen.months, text[:200], provisional)
