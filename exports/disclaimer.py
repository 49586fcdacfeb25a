"""The words every exported document carries about what AI output is and is not."""

from __future__ import annotations

from medvision.notices import DEMO_NOTICE, HAI_DEF_NOTICE, NOT_FOR_CLINICAL_USE

PRELIMINARY = "PRELIMINARY: this session is not signed; findings may still change and include undecided AI proposals."
FINAL = "FINAL: signed report; it lists only the findings the clinician confirmed or corrected."


def disclaimer(*, is_final: bool, contains_demo_output: bool) -> dict:
    """The disclaimer block of an export, as data (metadata.json, FHIR, reports)."""
    lines = [NOT_FOR_CLINICAL_USE, FINAL if is_final else PRELIMINARY]
    if contains_demo_output:
        lines.append(DEMO_NOTICE)
    lines.append(HAI_DEF_NOTICE)
    return {
        "text": " ".join(lines),
        "not_for_clinical_use": True,
        "document_status": "final" if is_final else "preliminary",
        "demo": contains_demo_output,
        "demo_notice": DEMO_NOTICE if contains_demo_output else None,
        "hai_def_notice": HAI_DEF_NOTICE,
    }
