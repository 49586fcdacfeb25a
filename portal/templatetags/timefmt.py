"""``{% load timefmt %}``: times and codes as people read them.

Media times are stored in ms and durations in seconds; pages show both as m:ss (h:mm:ss
past an hour), the clock a clinician reads on the player, never "12345 ms". Coded values
(``sigmoid_colon``) are shown by their label."""

from __future__ import annotations

from django import template

from medvision.timefmt import format_duration

register = template.Library()


@register.filter
def mmss(value) -> str:
    """Milliseconds -> ``m:ss`` (``""`` for no value)."""
    try:
        ms = float(value)
    except (TypeError, ValueError):
        return ""
    # Truncated, not rounded: 1.9 s into a recording is still 0:01 on the player's clock.
    return format_duration(int(ms // 1000))


@register.filter
def secs_mmss(value) -> str:
    """Seconds -> ``m:ss`` (``""`` for no value)."""
    try:
        return format_duration(float(value))
    except (TypeError, ValueError):
        return ""


@register.filter
def code_label(value) -> str:
    """An analyzer code (``sigmoid_colon``) -> its label (``Sigmoid colon``)."""
    from analysis.engine.schemas import humanize

    return humanize(str(value)) if value not in (None, "") else ""
