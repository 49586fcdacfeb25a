"""Pure parsers that turn ffprobe JSON or ``ffmpeg -i`` stderr into one neutral shape.

Kept apart from :mod:`probe` so both parsers can be unit-tested on captured text without
running anything, and so the validation rules in :mod:`probe` are written once for both.

The ``ffmpeg -i`` text is meant for people, not programs, so the parser only relies on the
parts that have been stable for a decade: the ``Input #0, FORMAT, from`` line, the
``Duration: HH:MM:SS.cc, start: S`` line, and ``Stream #0:N...: Video|Audio: CODEC ...``
lines whose comma-separated fields include ``WxH``, ``N fps`` / ``N tbr`` and ``SAR a:b``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction


@dataclass
class RawStream:
    index: int
    kind: str  # "video" | "audio" | "subtitle" | "data" | "attachment"
    codec: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None  # average frame rate when the container states one
    tbr: float | None = None  # ffmpeg's guess of the base rate (used when fps is unknown)
    sample_aspect_ratio: float | None = None
    rotation: float = 0.0  # degrees, from the display matrix
    attached_pic: bool = False  # cover art in an audio file, not a video
    pix_fmt: str | None = None  # e.g. "yuv420p", "yuvj422p", "yuv420p10le"
    # ffprobe's spelling: "progressive", "tt"/"bb" (interlaced, top/bottom field first) or
    # "tb"/"bt" (interlaced, coded in the other order); None when the stream does not say.
    field_order: str | None = None


@dataclass
class RawProbe:
    format_name: str
    duration_s: float | None
    start_time_s: float | None
    streams: list[RawStream] = field(default_factory=list)
    source: str = "ffmpeg"  # which tool produced it: "ffmpeg" or "ffprobe"

    def video_streams(self) -> list[RawStream]:
        return [s for s in self.streams if s.kind == "video" and not s.attached_pic]

    def has_audio(self) -> bool:
        return any(s.kind == "audio" for s in self.streams)


class ProbeParseError(ValueError):
    """The tool's output did not describe an input (the file could not be opened)."""


# --- ffprobe -print_format json -show_format -show_streams --------------------------------


def parse_ffprobe_json(text: str) -> RawProbe:
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ProbeParseError(f"ffprobe printed invalid JSON: {exc}") from exc
    fmt = data.get("format") or {}
    if not fmt and not data.get("streams"):
        raise ProbeParseError("ffprobe did not describe the file")
    streams = [_ffprobe_stream(i, s) for i, s in enumerate(data.get("streams") or [])]
    return RawProbe(
        format_name=str(fmt.get("format_name") or ""),
        duration_s=_float_or_none(fmt.get("duration")),
        start_time_s=_float_or_none(fmt.get("start_time")),
        streams=streams,
        source="ffprobe",
    )


def _ffprobe_stream(position: int, s: dict) -> RawStream:
    kind = str(s.get("codec_type") or "data")
    rotation = 0.0
    for side in s.get("side_data_list") or []:
        if "rotation" in side:
            rotation = float(side["rotation"])
    if not rotation and (s.get("tags") or {}).get("rotate"):
        # ffmpeg < 5 exposed rotation as a tag, clockwise; the display matrix is counter-clockwise.
        rotation = -float(s["tags"]["rotate"])
    return RawStream(
        index=int(s.get("index", position)),
        kind=kind,
        codec=str(s.get("codec_name") or "unknown"),
        width=_int_or_none(s.get("width")),
        height=_int_or_none(s.get("height")),
        fps=_rate(s.get("avg_frame_rate")),
        tbr=_rate(s.get("r_frame_rate")),
        sample_aspect_ratio=_ratio(s.get("sample_aspect_ratio"), sep=":"),
        rotation=rotation,
        attached_pic=bool((s.get("disposition") or {}).get("attached_pic")),
        pix_fmt=str(s["pix_fmt"]) if s.get("pix_fmt") else None,
        field_order=_field_order(s.get("field_order")),
    )


INTERLACED_FIELD_ORDERS = frozenset({"tt", "bb", "tb", "bt"})


def _field_order(value) -> str | None:
    value = str(value or "").strip().lower()
    return value if value in INTERLACED_FIELD_ORDERS | {"progressive"} else None


# --- ffmpeg -hide_banner -i FILE (stderr) ---------------------------------------------------

_INPUT_RE = re.compile(r"^Input #0, (?P<fmt>.+?), from ")
_DURATION_RE = re.compile(
    r"^\s+Duration: (?P<dur>N/A|\d+:\d{2}:\d{2}(?:\.\d+)?)(?:, start: (?P<start>-?\d+(?:\.\d+)?))?"
)
_STREAM_RE = re.compile(
    r"^\s+Stream #0:(?P<idx>\d+)\S*?: (?P<kind>Video|Audio|Subtitle|Data|Attachment): (?P<desc>.*)$"
)
_ROTATION_RE = re.compile(r"rotation of (?P<deg>-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_SIZE_RE = re.compile(r"^(?P<w>\d+)x(?P<h>\d+)(?:\s|$)")
_RATE_RE = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<k>k?) (?P<unit>fps|tbr)\b")
_SAR_RE = re.compile(r"\bSAR (?P<n>\d+):(?P<d>\d+)")
_PIX_FMT_RE = re.compile(r"^(?P<fmt>[a-z][a-z0-9_]*)(?:\(|$)")
# How ``ffmpeg -i`` words the field order inside the pixel format's parentheses,
# e.g. "yuv420p(tv, top first)" (libavformat/dump.c), in ffprobe's spelling.
_FFMPEG_FIELD_ORDERS = (
    ("top coded first (swapped)", "tb"),
    ("bottom coded first (swapped)", "bt"),
    ("top first", "tt"),
    ("bottom first", "bb"),
    ("progressive", "progressive"),
)
# Where the description of Input #0 ends.
_SECTION_END_RE = re.compile(r"^(Input #[1-9]|Output #|Stream mapping:|At least one output)")
# Log lines look like "[in#0 @ 0x55ab...] moov atom not found"; the prefix is noise for people.
_LOG_PREFIX_RE = re.compile(r"^\[[^\]]*@ ?0x[0-9a-f]+\]\s*")


def parse_ffmpeg_stderr(text: str) -> RawProbe:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _INPUT_RE.match(line)), None)
    if start is None:
        raise ProbeParseError(ffmpeg_error_summary(text) or "ffmpeg did not recognise the file")
    probe = RawProbe(
        format_name=_INPUT_RE.match(lines[start]).group("fmt"),
        duration_s=None,
        start_time_s=None,
    )
    current: RawStream | None = None
    for line in lines[start + 1 :]:
        if _SECTION_END_RE.match(line):
            break
        if m := _DURATION_RE.match(line):
            probe.duration_s = _hms(m.group("dur"))
            probe.start_time_s = _float_or_none(m.group("start"))
        elif m := _STREAM_RE.match(line):
            current = _ffmpeg_stream(int(m.group("idx")), m.group("kind").lower(), m.group("desc"))
            probe.streams.append(current)
        elif (m := _ROTATION_RE.search(line)) and current is not None:
            current.rotation = float(m.group("deg"))
    return probe


def _ffmpeg_stream(index: int, kind: str, desc: str) -> RawStream:
    fields = split_top_level(desc)
    codec = fields[0].split()[0] if fields and fields[0].split() else "unknown"
    stream = RawStream(index=index, kind=kind, codec=codec, attached_pic="(attached pic)" in desc)
    if kind == "video" and len(fields) > 1 and (m := _PIX_FMT_RE.match(fields[1])) and not _SIZE_RE.match(fields[1]):
        stream.pix_fmt = m.group("fmt")
        colour = fields[1][m.end():]  # "tv, bt709, top first)" or ""
        stream.field_order = next((code for words, code in _FFMPEG_FIELD_ORDERS if words in colour), None)
    for f in fields[1:]:
        f = f.strip()
        if (m := _SIZE_RE.match(f)) and stream.width is None:
            stream.width, stream.height = int(m.group("w")), int(m.group("h"))
        elif m := _RATE_RE.match(f):
            value = float(m.group("num")) * (1000 if m.group("k") else 1)
            if m.group("unit") == "fps":
                stream.fps = value
            else:
                stream.tbr = value
    if m := _SAR_RE.search(desc):
        stream.sample_aspect_ratio = _ratio(f"{m.group('n')}:{m.group('d')}", sep=":")
    return stream


def split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses: ``yuv420p(tv, bt709)`` is one field."""
    parts, depth, buf = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return [p.strip() for p in parts]


_GENERIC_ERRORS = (
    "Error opening input file",
    "Error opening input files",
    "At least one output file must be specified",
)


def ffmpeg_error_summary(text: str, limit: int = 3) -> str:
    """The distinct, specific error lines of an ffmpeg/ffprobe run, log prefixes removed."""
    seen: list[str] = []
    for raw in text.splitlines():
        line = _LOG_PREFIX_RE.sub("", raw.strip()).strip()
        if not line or line.startswith(_GENERIC_ERRORS) or line in seen:
            continue
        if line.startswith(("Input #", "Duration:", "Stream #", "Metadata:")):
            continue
        seen.append(line)
    return "; ".join(seen[-limit:])


# --- small converters ---------------------------------------------------------------------


def _hms(text: str) -> float | None:
    if text == "N/A":
        return None
    h, m, s = text.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _float_or_none(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ratio(value, *, sep: str) -> float | None:
    if not value or sep not in str(value):
        return None
    num, den = str(value).split(sep, 1)
    try:
        num_i, den_i = int(num), int(den)
    except ValueError:
        return None
    if num_i <= 0 or den_i <= 0:
        return None  # "0:1" means "unknown" in ffprobe output
    return num_i / den_i


def _rate(value) -> float | None:
    """ffprobe rates are fractions such as "30000/1001"; "0/0" means unknown."""
    if not value:
        return None
    try:
        rate = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None
    return float(rate) if rate > 0 else None
