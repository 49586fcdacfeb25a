"""The words every exported document carries about what AI output is and is not."""

from __future__ import annotations

from analysis.serializers import DISCLAIMER_DEMO

NOT_FOR_CLINICAL_USE = (
    "NOT FOR CLINICAL USE. Findings marked as AI proposals come from a vision-language model and are "
    "decision support for a clinician to confirm, never diagnoses. Only findings a clinician confirmed "
    "or corrected are part of a signed (final) report."
)

# The Health AI Developer Foundations terms ask for this notice wherever MedGemma output is
# handed on (https://developers.google.com/health-ai-developer-foundations/terms).
HAI_DEF_NOTICE = (
    "MedGemma is provided under and subject to the Health AI Developer Foundations Terms of Use "
    "found at https://developers.google.com/health-ai-developer-foundations/terms."
)

PRELIMINARY = "PRELIMINARY: this session is not signed; findings may still change and include undecided AI proposals."
FINAL = "FINAL: signed report; it lists only the findings the clinician confirmed or corrected."


def disclaimer(*, is_final: bool, contains_demo_output: bool) -> dict:
    """The disclaimer block of an export, as data (metadata.json, FHIR, reports)."""
    lines = [NOT_FOR_CLINICAL_USE, FINAL if is_final else PRELIMINARY]
    if contains_demo_output:
        lines.append(DISCLAIMER_DEMO)
    lines.append(HAI_DEF_NOTICE)
    return {
        "text": " ".join(lines),
        "not_for_clinical_use": True,
        "document_status": "final" if is_final else "preliminary",
        "demo": contains_demo_output,
        "demo_notice": DISCLAIMER_DEMO if contains_demo_output else None,
        "hai_def_notice": HAI_DEF_NOTICE,
    }
