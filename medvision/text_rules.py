"""Free text that people type into clinical records: no control characters.

Titles, notes, labels and corrected descriptions end up in the printable report, the CSV
and FHIR's ``DiagnosticReport.conclusion``; FHIR strings must not hold characters below
U+0020 other than tab, line feed and carriage return, and no person means to type U+0013.
They come from a paste out of another system or from a fuzzer, and are refused on input
(with the field named) rather than stripped silently, so what is stored is what was seen.

Single-line fields (a title, a label) also refuse tab and line breaks; multi-line ones
(notes, descriptions) keep them. DEL (U+007F) and the C1 controls (U+0080-U+009F) are
refused everywhere. The patterns are ECMA-262 compatible, so the OpenAPI schema states
them as they are enforced.
"""

from django.core.validators import RegexValidator

_ALWAYS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"

multi_line_text = RegexValidator(
    rf"^[^{_ALWAYS}]+$",
    "Remove the control characters (invisible characters such as U+0013, often from a paste); "
    "letters, digits, punctuation, tabs and line breaks are fine.",
    code="control_characters",
)

single_line_text = RegexValidator(
    rf"^[^{_ALWAYS}\t\n\r]+$",
    "Use one line of text without control characters (no tabs, line breaks or invisible "
    "characters such as U+0013).",
    code="control_characters",
)
