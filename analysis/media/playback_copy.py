"""A browser-playable H.264 MP4 copy of a recording that browsers cannot play as recorded.

Tower recorders write MPEG-2 in MPEG-TS, MJPEG or MPEG-4 Part 2 in AVI, MJPEG in MOV, HEVC
in MP4, often interlaced: none of it plays in a ``<video>`` element. The copy is made once,
in the background; the original stays the evidence and the findings' times refer to it.

Same time base as the sampler: ffmpeg's reader shifts the recording's container start to 0
(an MPEG-TS clock that starts at 1.4 s), frame pts go through unchanged (``-fps_mode
passthrough``, encoder time base = the input stream's), so the picture at time t in the copy
is the picture :mod:`analysis.media.sampler` timestamps t in the original. The audio, when
there is one, is kept (AAC): it pins the copy's start where the original's was when a video
stream starts after its audio.

Django-free: the caller (``analysis.playback``) passes the settings and a progress callback.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .ffmpeg_binary import ffmpeg_exe, input_time_base_arg, input_url, passthrough_fps_args
from .probe import VIDEO_DEMUXERS, VideoInfo, demuxer_whitelist
from .sampler import DEINTERLACE_OPTIONS

DEFAULT_MAX_HEIGHT = 720
DEFAULT_TIMEOUT_S = 3600.0
DEFAULT_PRESET = "veryfast"
DEFAULT_CRF = 23
_STDERR_TAIL_LINES = 8

# What <video> plays everywhere (Chrome, Firefox, Safari, Edge): H.264 8-bit 4:2:0
# progressive in MP4/MOV, VP8/VP9/AV1 in WebM (ffmpeg names the webm demuxer "matroska").
_MP4_DEMUXER = "mov"
_WEBM_DEMUXER = "matroska"
_H264_PIX_FMTS = frozenset({"yuv420p", "yuvj420p"})
_WEBM_CODECS = frozenset({"vp8", "vp9", "av1"})


class CopyFailed(RuntimeError):
    """ffmpeg could not make the copy; ``str(exc)`` is a short reason for the page."""


def copy_reason(info: VideoInfo) -> str | None:
    """Why ``info``'s recording needs a playable copy, or None when browsers play it as is."""
    demuxers = set(info.format_name.split(","))
    if info.interlaced:
        return f"it is interlaced ({info.field_order})"
    if info.codec == "h264" and _MP4_DEMUXER in demuxers:
        if info.pix_fmt and info.pix_fmt not in _H264_PIX_FMTS:
            return f"its H.264 uses {info.pix_fmt}, which browsers do not decode"
        return None
    if info.codec in _WEBM_CODECS and _WEBM_DEMUXER in demuxers:
        return None
    container = info.format_name.split(",")[0]
    return f"browsers do not play {info.codec} in {container}"


def copy_size(info: VideoInfo, max_height: int = DEFAULT_MAX_HEIGHT) -> tuple[int, int]:
    """(width, height) of the copy: square pixels, display aspect kept, at most ``max_height``
    lines, never upscaled, both even (4:2:0 needs it)."""
    display_w = info.width * info.sample_aspect_ratio
    height = min(info.height, max_height)
    width = display_w * height / info.height
    even = lambda v: max(2, int(round(v)) // 2 * 2)  # noqa: E731
    return even(width), even(height)


def build_command(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    info: VideoInfo,
    max_height: int = DEFAULT_MAX_HEIGHT,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
    threads: int = 0,
) -> list[str]:
    width, height = copy_size(info, max_height)
    filters = []
    if info.interlaced:
        filters.append("bwdif=" + ":".join(f"{k}={v}" for k, v in DEINTERLACE_OPTIONS.items()))
    shrinking = width * height < info.width * info.height
    # out_range=tv: MJPEG recorders write full-range pictures; browsers expect limited range
    # (newer ffmpeg would otherwise keep full range and tag the copy yuvj420p).
    filters += [f"scale={width}:{height}:flags={'area' if shrinking else 'bicubic'}:out_range=tv", "setsar=1",
                "format=yuv420p"]
    return [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-v", "error", "-y",
        *demuxer_whitelist(VIDEO_DEMUXERS), "-threads", str(threads), "-i", input_url(src),
        "-map", "0:v:0", "-map", "0:a:0?", "-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn",
        "-vf", ",".join(filters),
        "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
        "-profile:v", "high", "-threads", str(threads),
        # the input stream's time base and every frame's own pts: nothing is retimed
        "-enc_time_base:v", input_time_base_arg(), *passthrough_fps_args(),
        "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        "-movflags", "+faststart", "-f", "mp4",
        "-progress", "pipe:1",
        input_url(dst),
    ]


_OUT_TIME_RE = re.compile(r"^out_time=(-?)(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")


def parse_out_time(line: str) -> float | None:
    """Seconds from a ``-progress`` line ``out_time=HH:MM:SS.micro``; None for other lines
    (and for ``out_time=N/A``, which ffmpeg prints before the first frame)."""
    m = _OUT_TIME_RE.match(line.strip())
    if not m:
        return None
    sign, h, mins, s = m.groups()
    seconds = int(h) * 3600 + int(mins) * 60 + float(s)
    return -seconds if sign else seconds


@dataclass(frozen=True)
class CopyResult:
    path: Path
    width: int
    height: int
    elapsed_s: float


def make_copy(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    info: VideoInfo,
    max_height: int = DEFAULT_MAX_HEIGHT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    on_progress: Callable[[float], None] | None = None,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
    threads: int = 0,
) -> CopyResult:
    """Write the copy of ``src`` to ``dst``, calling ``on_progress(0..1)`` as ffmpeg reports
    media time. Raises :class:`CopyFailed`; ``dst`` may then hold a partial file (the caller
    removes it)."""
    cmd = build_command(src, dst, info=info, max_height=max_height, preset=preset, crf=crf, threads=threads)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise CopyFailed(f"ffmpeg could not be started ({exc})") from exc
    tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
    reader = threading.Thread(target=_drain, args=(proc.stderr, tail), daemon=True, name=f"ffmpeg-copy-{proc.pid}")
    reader.start()
    timed_out = threading.Event()
    timer = threading.Timer(timeout_s, lambda: (timed_out.set(), proc.kill()))
    timer.daemon = True
    timer.start()
    try:
        for raw in proc.stdout:
            seconds = parse_out_time(raw.decode("utf-8", "replace"))
            if seconds is not None and on_progress is not None and info.duration_s > 0:
                on_progress(max(0.0, min(1.0, seconds / info.duration_s)))
        returncode = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    if timed_out.is_set():
        raise CopyFailed(f"making the copy took longer than {timeout_s:.0f} s and was stopped")
    if returncode != 0:
        said = "; ".join(tail) or "no details"
        how = f"was killed by signal {-returncode}" if returncode < 0 else f"failed (exit status {returncode})"
        raise CopyFailed(f"ffmpeg {how}: {said}"[:500])
    out = Path(dst)
    if not out.is_file() or out.stat().st_size == 0:
        raise CopyFailed("ffmpeg finished but wrote no copy")
    width, height = copy_size(info, max_height)
    return CopyResult(path=out, width=width, height=height, elapsed_s=time.monotonic() - started)


def _drain(pipe, tail: collections.deque) -> None:
    try:
        for raw in pipe:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                tail.append(line)
    except (OSError, ValueError):
        pass


__all__ = ["CopyFailed", "CopyResult", "build_command", "copy_reason", "copy_size", "make_copy", "parse_out_time"]
