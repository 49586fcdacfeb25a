"""Where the ffmpeg (and, when installed, ffprobe) executables live.

An operator's explicit choice wins (``FFMPEG_BINARY`` / ``FFPROBE_BINARY``; the latter may be
"none"). Then a system ffmpeg on PATH: it is what operators install and patch. Otherwise we
use the static build that the ``imageio-ffmpeg`` wheel ships, so a plain ``pip install`` is
enough to run the pipeline. That wheel ships ffmpeg only, never ffprobe, which is why every
caller must work with ``ffprobe_exe() is None``.

The settings are read from Django when it is configured (validated there at start-up), else
from the environment, so benchmarks and scripts without Django pick the same binaries.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess


class FFmpegNotFound(RuntimeError):
    """Neither a system ffmpeg nor the imageio-ffmpeg wheel is available."""


def _configured(name: str) -> str:
    from django.conf import settings

    if settings.configured:
        return getattr(settings, name, "") or ""
    return os.environ.get(name, "").strip()


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Absolute path of the ffmpeg executable (cached for the life of the process)."""
    configured = _configured("FFMPEG_BINARY")
    if configured:
        return configured
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - requirements.txt pins it
        raise FFmpegNotFound(
            "ffmpeg was not found on PATH and the imageio-ffmpeg package is not installed; "
            "install one of them (pip install imageio-ffmpeg)."
        ) from exc
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:  # pragma: no cover - wheel without a binary for this platform
        raise FFmpegNotFound(f"imageio-ffmpeg has no ffmpeg binary for this platform: {exc}") from exc


@functools.lru_cache(maxsize=1)
def ffprobe_exe() -> str | None:
    """Path of ffprobe: the configured one, else one on PATH, else None (imageio-ffmpeg
    never provides it; ``FFPROBE_BINARY=none`` asks for None)."""
    configured = _configured("FFPROBE_BINARY")
    if configured == "none":
        return None
    return configured or shutil.which("ffprobe")


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> tuple[int, int]:
    """(major, minor) of ffmpeg_exe(); (0, 0) when the banner cannot be parsed (git builds).

    Needed because option names changed across releases (``-vsync`` became ``-fps_mode`` in 5.1).
    """
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-version"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        timeout=30,
    ).stdout.decode("utf-8", "replace")
    # "ffmpeg version 6.1.1-3ubuntu5", "ffmpeg version n7.1", "ffmpeg version N-11234-gabc" (git).
    match = re.search(r"ffmpeg version n?(\d+)\.(\d+)", out)
    if not match:
        return (0, 0)
    return (int(match.group(1)), int(match.group(2)))


def input_url(path) -> str:
    """The path as an explicit ``file:`` URL.

    Without the prefix ffmpeg reads ``a:b.mp4`` as protocol ``a`` and would follow a name
    such as ``concat:...`` or ``http://...``; with it, a path is only ever a local file.
    """
    return "file:" + os.fspath(path)


def passthrough_fps_args() -> list[str]:
    """Output options that stop ffmpeg from duplicating or dropping frames at the muxer.

    Git builds report (0, 0); they are recent, so they get the modern spelling.
    """
    major, minor = ffmpeg_version()
    if (major, minor) == (0, 0) or (major, minor) >= (5, 1):
        return ["-fps_mode", "passthrough"]
    return ["-vsync", "passthrough"]


def input_time_base_arg() -> str:
    """The ``-enc_time_base`` value meaning "the input stream's time base": ``-1`` up to
    ffmpeg 6, ``demux`` from 7 on (7 refuses ``-1``; 5 and 6 do not know ``demux``)."""
    version = ffmpeg_version()
    return "demux" if version[0] >= 7 or version == (0, 0) else "-1"  # (git builds: recent)
