from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The clinicians' web pages (session list, detail, live room, review, sign-off).

    Pages sit on top: they call the services of ``procedures`` and ``analysis`` and render
    templates (the project's ``templates/procedures/``); no other app imports them."""

    name = "portal"
    verbose_name = "Portal"
