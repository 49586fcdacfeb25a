"""``{% load reporting_tags %}``: what the timeline-marks panel shows when the page opens
(the script keeps it current after that). Pages that include the panel
(``reporting/_marks_panel.html``) need pass nothing but ``session`` and the recording."""

from __future__ import annotations

from django import template

from reporting import vocabulary
from reporting.withdrawal import format_duration, withdrawal_from_marks

register = template.Library()

# Keyboard keys of the mark buttons: Shift + the letter, because the review page's and the
# live page's own keys already use the lower-case letters (c confirms a finding).
MARK_KEYS = {"cecum_reached": "C", "scope_out": "O", "appendiceal_orifice": "A", "ileocecal_valve": "I"}


@register.simple_tag
def marks_state(session) -> dict:
    from reporting.selectors import marks_for_session

    marks = list(marks_for_session(session))
    by_kind = {mark.kind: mark for mark in marks}
    withdrawal = withdrawal_from_marks(marks)
    return {
        "kinds": [{"kind": code, "label": text, "key": MARK_KEYS.get(code, ""), "mark": by_kind.get(code),
                   "time": format_duration(by_kind[code].time_ms // 1000) if code in by_kind else ""}
                  for code, text in vocabulary.MARK_KINDS],
        "withdrawal": format_duration(withdrawal.seconds),
        "problem": withdrawal.problem,
        "target_s": vocabulary.WITHDRAWAL_TARGET_S,
    }
