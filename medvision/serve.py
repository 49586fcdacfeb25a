"""``python -m medvision.serve [daphne options]``: daphne, with WebSocket limits that fit
this app's messages.

Daphne drops a WebSocket whose message is larger than its own limit (1 MiB by default),
before the app can answer - so live frames between 1 MiB and ``LIVE_FRAME_MAX_BYTES``
(2 MiB) dropped the socket. This runs daphne's own command line with
``--websocket-max-message-size`` / ``--websocket-max-frame-size`` set from the settings
(``WEBSOCKET_MAX_MESSAGE_BYTES``) unless given, and ``medvision.asgi:application`` as the
application unless another is named. ``manage.py runserver`` (the embedded profile) reads
the same limit from the settings.
"""

from __future__ import annotations

import os
import sys


def daphne_arguments(argv: list[str]) -> list[str]:
    from django.conf import settings

    args = list(argv)
    size = str(settings.WEBSOCKET_MAX_MESSAGE_BYTES)
    for option in ("--websocket-max-message-size", "--websocket-max-frame-size"):
        if not any(a == option or a.startswith(option + "=") for a in args):
            args[:0] = [option, size]
    if not any(":" in a and not a.startswith("-") for a in args):
        args.append("medvision.asgi:application")
    return args


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medvision.settings")
    import django

    django.setup()
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(daphne_arguments(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
