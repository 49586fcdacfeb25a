"""The one shape of a refusal that a person or a device must act on: a stable ``code``
for programs and a ``message`` for people. Live frames, voice messages and recording
uploads raise subclasses; the socket or API layer turns them into its own error event."""

from __future__ import annotations


class RefusedInput(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
