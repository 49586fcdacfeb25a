"""Reading a key frame's stored JPEG for a document (the bundle, the PDF, FHIR)."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def read_frame(frame) -> bytes | None:
    try:
        with frame.image.open("rb") as fh:
            return fh.read()
    except (FileNotFoundError, OSError, ValueError):
        # A missing file must not stop the export: the document names what is missing.
        logger.warning("Frame %s has no readable image; left out of the export.", frame.pk)
        return None
