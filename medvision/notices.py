"""The notice served with AI output: API responses, WebSocket greetings, pages.

One wording, here: the not-for-clinical-use rule and the Health AI Developer Foundations
terms that MedGemma's licence asks to be shown wherever its output is served.
"""

AI_DISCLAIMER = (
    "NOT FOR CLINICAL USE. AI findings are proposals from a vision-language model "
    "(MedGemma under the Health AI Developer Foundations terms, or the random-weight demo "
    "model); only findings a clinician confirmed are part of a signed report."
)
