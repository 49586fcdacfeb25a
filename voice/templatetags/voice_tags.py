"""``{% load voice_tags %}`` then ``{% voice_panel session %}`` and ``{% voice_transcripts session %}``:
the voice includes with their context computed from the request's user and the session
(which the view already resolved through ``procedures.access``)."""

from django import template

from voice import selectors

register = template.Library()


@register.inclusion_tag("voice/panel.html", takes_context=True)
def voice_panel(context, session):
    return selectors.voice_panel_context(user=context["request"].user, session=session)


@register.inclusion_tag("voice/transcript.html")
def voice_transcripts(session):
    return {"conversations": selectors.conversation_list(session=session)}
