from django import template

register = template.Library()


@register.filter
def ms_to_clock(value) -> str:
    """Media time in ms as h:mm:ss.mmm (or m:ss.mmm under an hour)."""
    try:
        ms = int(value)
    except (TypeError, ValueError):
        return ""
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{seconds:02d}.{millis:03d}"
    return f"{minutes}:{seconds:02d}.{millis:03d}"


@register.filter
def make_list_words(value: str) -> list[str]:
    return value.split()
