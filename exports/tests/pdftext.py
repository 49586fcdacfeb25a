"""Text of a reportlab PDF, for assertions (no PDF library in the environment).

Inflates the FlateDecode streams and reads the strings of the text operators (``Tj``/``TJ``)
in content order: a line's fragments joined, lines separated by spaces. Enough for the
standard-font, WinAnsi-encoded text reportlab writes; not a general PDF parser.
"""

from __future__ import annotations

import base64
import re
import zlib

STREAM = re.compile(rb"^(.*?)stream\r?\n(.*?)\s*endstream", re.S)
TEXT_OBJECT = re.compile(rb"BT(.*?)ET", re.S)
STRING = re.compile(rb"\((?:\\.|[^\\()])*\)\s*Tj|T\*", re.S)
ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"(": b"(", b")": b")", b"\\": b"\\"}


def _unescape(raw: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(raw):
        c = raw[i:i + 1]
        if c != b"\\":
            out += c
            i += 1
            continue
        nxt = raw[i + 1:i + 2]
        octal = re.match(rb"[0-7]{1,3}", raw[i + 1:i + 4])
        if octal:
            out.append(int(octal.group(), 8))
            i += 1 + len(octal.group())
        else:
            out += ESCAPES.get(nxt, nxt)
            i += 2
    return bytes(out)


def streams(pdf: bytes) -> list[bytes]:
    out = []
    for chunk in pdf.split(b"endobj"):
        match = STREAM.search(chunk)
        if match is None:
            continue
        header, body = match.groups()
        if b"/Image" in header:
            continue
        try:
            if b"/ASCII85Decode" in header:
                body = body.strip().removeprefix(b"<~").removesuffix(b"~>")
                body = base64.a85decode(body)
            if b"/FlateDecode" in header:
                body = zlib.decompress(body)
        except (ValueError, zlib.error):
            continue
        out.append(body)
    return out


def pdf_text(pdf: bytes) -> str:
    lines = []
    for content in streams(pdf):
        for block in TEXT_OBJECT.findall(content):
            parts = []
            for token in STRING.finditer(block):
                if token.group() == b"T*":
                    parts.append(b" ")
                else:
                    parts.append(_unescape(token.group().rstrip(b"Tj").rstrip()[1:-1]))
            lines.append(b"".join(parts).decode("cp1252", "replace"))
    return " ".join(" ".join(lines).split())


def image_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Subtype\s*/Image", pdf))
