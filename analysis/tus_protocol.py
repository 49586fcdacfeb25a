"""The parts of the tus 1.0 resumable-upload protocol that are plain header parsing.

https://tus.io/protocols/resumable-upload (core, creation, termination, checksum and
expiration extensions). Nothing here touches Django, the database or the disk; the views
(``analysis.uploads_api``) and the service (``analysis.uploads``) use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from email.utils import format_datetime

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination,checksum,expiration"
OCTET_STREAM = "application/offset+octet-stream"
# The checksum extension requires sha1; the others cost nothing to offer.
CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}
MAX_METADATA_CHARS = 4096

# Status codes the protocol gives a meaning to (beyond the usual ones).
CHECKSUM_MISMATCH = 460


class TusError(Exception):
    """A refused tus request: the HTTP status the protocol asks for, a stable ``code`` and
    a ``message`` a person can act on."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def check_version(header: str | None) -> None:
    if header is None:
        raise TusError(412, "tus_version", f"Send the header Tus-Resumable: {TUS_VERSION} (this server speaks tus "
                                           f"{TUS_VERSION}).")
    if header.strip() != TUS_VERSION:
        raise TusError(412, "tus_version", f"This server speaks tus {TUS_VERSION}, not {header.strip()[:20]!r}.")


def parse_length(header: str | None, name: str) -> int:
    """A non-negative integer header (Upload-Length, Upload-Offset)."""
    if header is None:
        raise TusError(400, "missing_header", f"The request needs an {name} header.")
    text = header.strip()
    if not text.isdigit() or len(text) > 19:
        raise TusError(400, "bad_header", f"{name} must be a non-negative whole number of bytes, not {text[:30]!r}.")
    return int(text)


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata: key base64value,key2 base64value2`` (a value may be absent).
    Values that are not valid base64 or not UTF-8 text are refused, not guessed."""
    if not header:
        return {}
    if len(header) > MAX_METADATA_CHARS:
        raise TusError(400, "bad_metadata", f"Upload-Metadata is longer than {MAX_METADATA_CHARS} characters.")
    metadata: dict[str, str] = {}
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        if not parts[0] or len(parts) > 2:
            raise TusError(400, "bad_metadata", "Upload-Metadata must be 'key base64value' pairs separated by commas.")
        key = parts[0]
        if key in metadata:
            raise TusError(400, "bad_metadata", f"Upload-Metadata names {key!r} twice.")
        value = ""
        if len(parts) == 2:
            try:
                value = base64.b64decode(parts[1], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise TusError(400, "bad_metadata", f"The Upload-Metadata value of {key!r} is not base64 of UTF-8 text.") from None
        metadata[key] = value
    return metadata


def parse_checksum(header: str | None):
    """``Upload-Checksum: <algorithm> <base64 digest>`` -> (hash object, expected digest),
    or None when the header is absent."""
    if header is None:
        return None
    parts = header.strip().split(" ")
    if len(parts) != 2:
        raise TusError(400, "bad_checksum", "Upload-Checksum must be '<algorithm> <base64 digest>'.")
    algorithm, encoded = parts[0].lower(), parts[1]
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise TusError(400, "checksum_algorithm",
                       f"Checksum algorithm {algorithm[:20]!r} is not supported; use one of "
                       f"{', '.join(sorted(CHECKSUM_ALGORITHMS))}.")
    try:
        expected = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise TusError(400, "bad_checksum", "The Upload-Checksum digest is not base64.") from None
    return CHECKSUM_ALGORITHMS[algorithm](), expected


def http_date(moment) -> str:
    """RFC 9110 date, as the expiration extension's Upload-Expires header wants."""
    return format_datetime(moment, usegmt=True)
