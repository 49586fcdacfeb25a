"""Key frames: the picture at a marked moment, kept as the landmark's photo documentation.

``key_frame_at(session=, video=, time_ms=)`` returns a stored ``Frame``:

* Recording: the frame of that video stored at exactly ``time_ms`` (sampled or extracted
  before: (video, timestamp) is unique), else a still extracted now from the *original*
  recording (never the playback copy: it is the evidence, and its pictures are what the
  findings' times refer to). The new Frame is not sent to the model (analysis_state
  "skipped"): a clinician chose it as a document, not as something to analyse.
* Live stream (``video`` None): the session's latest live frame with an image at or before
  ``time_ms``, else the first one after it; ``None`` when the session has none.

Which picture a time means: the one a paused player shows at that time, i.e. the last
frame whose presentation time is <= ``time_ms``. Times are on the sampler's clock: relative
to the container start (``Video.start_time_s``), which is also the clock of ffmpeg's ``-ss``
(ffmpeg adds the container start to the seek position itself), so a stream that starts at
1.4 s (MPEG-TS) or a video that starts after its audio needs no correction here. Interlaced
recordings are deinterlaced exactly as the sampler does it.

A time past the end of the recording, or a video of another session, is a ``ValueError``
whose message can be shown to the clinician as it is.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from PIL import Image

from .media.ffmpeg_binary import ffmpeg_exe, input_url
from .media.jpeg import encode_jpeg
from .media.probe import VIDEO_DEMUXERS, demuxer_whitelist
from .media.sampler import DEINTERLACE_OPTIONS
from .models import AnalysisState, Frame, FrameSource

# How far before the marked time decoding starts. Seeking lands on the key frame before the
# seek point and decodes forward from there, so the window only has to hold the frame shown
# at the mark: 2 s covers any frame rate a recorder writes (VFR captures drop to ~1 fps).
LOOKBACK_MS = 2000
# A still is one short decode, but a recording whose index does not allow seeking (some
# MPEG-TS captures) is decoded from its start; an hour of SD video takes well under this.
FFMPEG_TIMEOUT_S = 300
# A key frame is photo documentation for the report and its PDF: full HD keeps every detail a
# scope tower outputs, without storing 4K stills.
KEY_FRAME_MAX_SIDE = 1920
JPEG_QUALITY = 90  # as the sampler stores evidence frames
# A player's clock can read a few ms past the declared duration at the very end.
END_SLACK_MS = 50


class KeyFrameError(ValueError):
    """The picture could not be extracted; the message says why, for a person."""


def key_frame_at(*, session, video, time_ms: int) -> Frame | None:
    """The key frame of ``session`` at ``time_ms`` of ``video`` (None: the live stream).
    See the module docstring for the rules."""
    time_ms = int(time_ms)
    if time_ms < 0:
        raise ValueError("The time cannot be before the start of the procedure.")
    if video is None:
        return _live_frame(session, time_ms)
    if video.session_id != session.pk:
        raise ValueError(f"{video.display_name} does not belong to this procedure.")
    existing = Frame.objects.filter(video=video, timestamp_ms=time_ms).first()
    if existing is not None:
        return existing
    if video.duration_s is not None and time_ms > video.duration_s * 1000 + END_SLACK_MS:
        from medvision.timefmt import format_duration

        raise ValueError(
            f"{format_duration(time_ms / 1000)} is after the end of {video.display_name} "
            f"({format_duration(video.duration_s)} long)."
        )
    if not video.file:
        raise ValueError(f"{video.display_name} has no stored file to take a picture from.")
    image = extract_still(Path(video.file.path), time_ms=time_ms, interlaced=video.interlaced)
    jpeg = encode_jpeg(image, quality=JPEG_QUALITY, max_side=KEY_FRAME_MAX_SIDE)
    height, width = _jpeg_size(jpeg)
    return _store(session=session, video=video, time_ms=time_ms, jpeg=jpeg, width=width, height=height)


def _live_frame(session, time_ms: int) -> Frame | None:
    frames = (Frame.objects.filter(session=session, source=FrameSource.LIVE, video__isnull=True)
              .exclude(image="").exclude(image__isnull=True))
    before = frames.filter(timestamp_ms__lte=time_ms).order_by("-timestamp_ms", "-created_at").first()
    if before is not None:
        return before
    # Marked before the first frame arrived (the stream starts a moment after the camera).
    return frames.filter(timestamp_ms__gt=time_ms).order_by("timestamp_ms", "created_at").first()


def _store(*, session, video, time_ms: int, jpeg: bytes, width: int, height: int) -> Frame:
    frame = Frame(
        session=session, video=video, source=FrameSource.VIDEO, timestamp_ms=time_ms,
        sha256=hashlib.sha256(jpeg).hexdigest(), width=width, height=height,
        analysis_state=AnalysisState.SKIPPED,
    )
    frame.image.save(f"{frame.pk}.jpg", ContentFile(jpeg), save=False)
    try:
        with transaction.atomic():
            frame.save()
    except IntegrityError:
        # Two clicks at the same moment (or the sampler storing that very time): keep theirs.
        frame.image.delete(save=False)
        return Frame.objects.get(video=video, timestamp_ms=time_ms)
    return frame


def _jpeg_size(jpeg: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(jpeg)) as img:
        return img.height, img.width


# --- ffmpeg ----------------------------------------------------------------------------------


def extract_still(path: Path, *, time_ms: int, interlaced: bool = False):
    """The (H, W, 3) uint8 RGB picture shown at ``time_ms`` (display size, square pixels).

    First a seek to ``LOOKBACK_MS`` before the time, keeping the last frame up to it. When
    that yields nothing -- a file whose index does not let ffmpeg seek, or a time before the
    first video frame -- the file is decoded from its start: the last frame up to the time,
    else the first frame after it (a video stream that starts after its audio).
    """
    start_ms = max(0, time_ms - LOOKBACK_MS)
    # The trim end is "the first timestamp dropped", relative to the seek point; half a
    # millisecond past the mark keeps a frame presented exactly at it.
    end_s = f"{(time_ms - start_ms + 0.5) / 1000:.4f}"
    attempts = [
        (["-ss", f"{start_ms / 1000:.3f}"], [f"trim=end={end_s}"], []),
        ([], [f"trim=end={(time_ms + 0.5) / 1000:.4f}"], []),
        ([], [f"select=gte(t\\,{time_ms / 1000:.3f})"], ["-frames:v", "1"]),
    ]
    if start_ms == 0:
        attempts.pop(0)  # the seek would start at 0 anyway: same as the second attempt
    errors = []
    for seek, selection, limit in attempts:
        image, error = _run_still(path, seek=seek, selection=selection, limit=limit, interlaced=interlaced)
        if image is not None:
            return image
        if error:
            errors.append(error)
    detail = f" (ffmpeg said: {errors[-1]})" if errors else ""
    raise KeyFrameError(f"No picture could be taken from the recording at that time{detail}.")


def _run_still(path: Path, *, seek: list[str], selection: list[str], limit: list[str], interlaced: bool):
    filters = []
    if interlaced:
        # Before trim/select, as in the sampler: bwdif looks at the neighbouring frames.
        filters.append("bwdif=" + ":".join(f"{k}={v}" for k, v in DEINTERLACE_OPTIONS.items()))
    filters += selection
    filters += ["scale=iw*sar:ih", "setsar=1"]  # non-square PAL/NTSC pixels made square
    with tempfile.TemporaryDirectory(prefix="keyframe-") as folder:
        out = Path(folder) / "still.ppm"
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-v", "error", "-y",
            *demuxer_whitelist(VIDEO_DEMUXERS), *seek, "-i", input_url(path),
            "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", ",".join(filters), *limit,
            # PPM: trivial to encode, so each frame of the window costs nothing; "-update 1"
            # overwrites the one file, which ends up holding the last frame kept.
            "-c:v", "ppm", "-pix_fmt", "rgb24", "-update", "1", "-f", "image2", input_url(out),
        ]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=FFMPEG_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired:
            return None, f"it took longer than {FFMPEG_TIMEOUT_S} s"
        said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        if not out.is_file() or out.stat().st_size == 0:
            return None, (said[-1][:200] if proc.returncode != 0 and said else "")
        with Image.open(out) as img:
            return np.asarray(img.convert("RGB")).copy(), ""
