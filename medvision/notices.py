"""The notices served with AI output: API responses, WebSocket greetings, pages, exports.

One wording each, here, and every app imports them: the not-for-clinical-use rule, the
Health AI Developer Foundations terms that MedGemma's licence asks to be shown wherever its
output is served or handed on, and the demo model's flag.
"""

NOT_FOR_CLINICAL_USE = (
    "NOT FOR CLINICAL USE. Findings marked as AI proposals come from a vision-language model and are "
    "decision support for a clinician to confirm, never diagnoses. Only findings a clinician confirmed "
    "or corrected are part of a signed (final) report."
)

# https://developers.google.com/health-ai-developer-foundations/terms
HAI_DEF_NOTICE = (
    "MedGemma is provided under and subject to the Health AI Developer Foundations Terms of Use "
    "found at https://developers.google.com/health-ai-developer-foundations/terms."
)

DEMO_NOTICE = "DEMO MODEL: random weights, meaningless output, not a medical model."

# What API responses and WebSocket greetings carry (a finding's own is_demo says whether the
# demo model made it).
AI_DISCLAIMER = f"{NOT_FOR_CLINICAL_USE} {HAI_DEF_NOTICE}"
