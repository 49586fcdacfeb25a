"""The structured report's coded values, each with the label people read.

One table per field, as ``(code, label)`` pairs: the codes are what is stored, exported and
sent over the API; the labels are what pages, the PDF and ``report.txt`` show (no raw code is
ever shown to a person). Locations reuse the analyzer's anatomy lists
(``analysis.engine.schemas.LOCATIONS``) so an AI finding's location maps onto a report row
without translation.

Sources: Paris classification (Endoscopy 2003;35:S3), NICE (Hewett 2012), Boston Bowel
Preparation Scale (Lai 2009), Prague C&M (Sharma 2006), Los Angeles esophagitis grades
(Lundell 1999), Forrest ulcer classes (Forrest 1974), ASA physical status (ASA 2020).
"""

from __future__ import annotations

from analysis.engine.schemas import LOCATIONS, humanize

Choices = tuple[tuple[str, str], ...]


def codes(table: Choices) -> tuple[str, ...]:
    return tuple(code for code, _ in table)


def label(table: Choices, code: str | None, default: str = "") -> str:
    for value, text in table:
        if value == code:
            return text
    return default if code in (None, "") else humanize(str(code))


INDICATION_KINDS: Choices = (
    ("screening", "Screening"),
    ("surveillance", "Surveillance"),
    ("diagnostic", "Diagnostic"),
    ("therapeutic", "Therapeutic"),
)

ASA_CLASSES: Choices = (
    ("I", "ASA I: a normal healthy patient"),
    ("II", "ASA II: mild systemic disease"),
    ("III", "ASA III: severe systemic disease"),
    ("IV", "ASA IV: severe systemic disease that is a constant threat to life"),
    ("V", "ASA V: moribund, not expected to survive without the operation"),
)

SEDATION_LEVELS: Choices = (
    ("none", "No sedation"),
    ("minimal", "Minimal sedation (anxiolysis)"),
    ("moderate", "Moderate sedation"),
    ("deep", "Deep sedation"),
    ("general", "General anaesthesia"),
)

# Colonoscopy ------------------------------------------------------------------------------

COLON_EXTENTS: Choices = (
    ("terminal_ileum", "Terminal ileum"),
    ("cecum", "Cecum"),
    ("incomplete", "Incomplete (stopped before the cecum)"),
)
# Cecal intubation (the quality indicator) = the cecum or beyond was reached.
CECUM_REACHED_EXTENTS = ("cecum", "terminal_ileum")

INCOMPLETE_REASONS: Choices = (
    ("poor_preparation", "Poor bowel preparation"),
    ("looping", "Looping or redundant colon"),
    ("obstruction", "Obstruction or stricture"),
    ("patient_discomfort", "Patient discomfort"),
    ("sedation_limit", "Sedation limit reached"),
    ("other", "Other (see text)"),
)

CECAL_LANDMARKS: Choices = (
    ("appendiceal_orifice", "Appendiceal orifice"),
    ("ileocecal_valve", "Ileocecal valve"),
)

BBPS_SEGMENTS: Choices = (
    ("right", "Right colon"),
    ("transverse", "Transverse colon"),
    ("left", "Left colon"),
)
BBPS_SCORES: Choices = (
    ("0", "0: unprepared, mucosa not seen"),
    ("1", "1: portions of mucosa seen"),
    ("2", "2: minor residue, mucosa well seen"),
    ("3", "3: entire mucosa well seen"),
)
# Adequate preparation (the quality indicator): at least 2 in every segment.
BBPS_ADEQUATE_SEGMENT_SCORE = 2

PARIS_CLASSES: Choices = (
    ("0-Ip", "0-Ip (pedunculated)"),
    ("0-Isp", "0-Isp (subpedunculated)"),
    ("0-Is", "0-Is (sessile)"),
    ("0-IIa", "0-IIa (slightly elevated)"),
    ("0-IIb", "0-IIb (flat)"),
    ("0-IIc", "0-IIc (slightly depressed)"),
    ("0-III", "0-III (excavated)"),
)
NICE_CLASSES: Choices = (
    ("1", "NICE 1 (hyperplastic / sessile serrated)"),
    ("2", "NICE 2 (adenoma)"),
    ("3", "NICE 3 (deep submucosal invasive cancer)"),
)
RESECTION_METHODS: Choices = (
    ("cold_snare", "Cold snare"),
    ("hot_snare", "Hot snare"),
    ("cold_forceps", "Cold forceps"),
    ("hot_forceps", "Hot forceps"),
    ("emr_en_bloc", "EMR, en bloc"),
    ("emr_piecemeal", "EMR, piecemeal"),
    ("esd", "ESD"),
    ("not_resected", "Not resected"),
)
# Histology arrives days later (pathology); until then a polyp's is "pending".
POLYP_HISTOLOGY: Choices = (
    ("pending", "Pending pathology"),
    ("tubular_adenoma", "Tubular adenoma"),
    ("tubulovillous_adenoma", "Tubulovillous adenoma"),
    ("villous_adenoma", "Villous adenoma"),
    ("adenoma_high_grade_dysplasia", "Adenoma with high-grade dysplasia"),
    ("sessile_serrated", "Sessile serrated lesion"),
    ("sessile_serrated_dysplasia", "Sessile serrated lesion with dysplasia"),
    ("traditional_serrated_adenoma", "Traditional serrated adenoma"),
    ("hyperplastic", "Hyperplastic polyp"),
    ("carcinoma", "Carcinoma"),
    ("other", "Other"),
)

COMPLICATIONS: Choices = (
    ("none", "None"),
    ("bleeding", "Bleeding"),
    ("perforation", "Perforation"),
    ("cardiopulmonary", "Cardiopulmonary event"),
    ("other", "Other (see text)"),
)

# Upper GI ---------------------------------------------------------------------------------

UPPER_GI_EXTENTS: Choices = (
    ("esophagus", "Esophagus"),
    ("stomach", "Stomach"),
    ("duodenum_d2", "Duodenum (D2)"),
)
LA_GRADES: Choices = (
    ("none", "No esophagitis"),
    ("A", "LA grade A"),
    ("B", "LA grade B"),
    ("C", "LA grade C"),
    ("D", "LA grade D"),
)
FORREST_CLASSES: Choices = (
    ("Ia", "Forrest Ia (spurting bleeding)"),
    ("Ib", "Forrest Ib (oozing bleeding)"),
    ("IIa", "Forrest IIa (non-bleeding visible vessel)"),
    ("IIb", "Forrest IIb (adherent clot)"),
    ("IIc", "Forrest IIc (flat pigmented spot)"),
    ("III", "Forrest III (clean base)"),
)

# Bronchoscopy -----------------------------------------------------------------------------

BRONCHO_SAMPLE_KINDS: Choices = (
    ("bal", "Bronchoalveolar lavage (BAL)"),
    ("biopsy", "Endobronchial biopsy"),
    ("transbronchial_biopsy", "Transbronchial biopsy"),
    ("brushing", "Brushing"),
    ("washing", "Bronchial washing"),
)

# Timeline marks ---------------------------------------------------------------------------

MARK_KINDS: Choices = (
    ("cecum_reached", "Cecum reached"),
    ("scope_out", "Scope out"),
    ("appendiceal_orifice", "Appendiceal orifice"),
    ("ileocecal_valve", "Ileocecal valve"),
)
# Withdrawal time (the quality indicator) runs from the first to the second.
WITHDRAWAL_START_MARK = "cecum_reached"
WITHDRAWAL_END_MARK = "scope_out"
WITHDRAWAL_TARGET_S = 6 * 60


def location_choices(procedure_type: str) -> Choices:
    return tuple((code, humanize(code)) for code in LOCATIONS.get(procedure_type, LOCATIONS["other"]))
