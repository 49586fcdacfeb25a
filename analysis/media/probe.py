"""Decide whether an uploaded file is a usable procedure video, and describe it.

Validation is by probing the content, never by file name: a PNG renamed to ``.mp4`` is still a
still image. Two header readers share one set of rules: ffprobe's JSON when ffprobe is on PATH
(a stable, machine-readable interface), else the stderr of ``ffmpeg -i`` (the imageio-ffmpeg
wheel ships no ffprobe). With ``verify=True`` (the default) two cheap ffmpeg runs follow:

* a stream-copy pass to a null muxer, which reads every packet without decoding. It measures
  where the data really ends, so a file cut short (an interrupted upload whose index was
  written first, ``+faststart``) is caught although its header looks complete, and it gives
  the duration and average frame rate of files whose header has none (a browser
  MediaRecorder WebM, a raw H.264 stream). Cost: one read of the file, no decoding.
* a decode of the first video frame, which catches codecs this ffmpeg cannot decode.

Every ffmpeg/ffprobe run on an uploaded file gets ``-format_whitelist`` (video containers,
plus the picture and sound formats needed to explain a rejection) and ``-protocol_whitelist
file``, and the path goes in as a ``file:`` URL: a playlist (HLS ``.m3u8``, concat script)
would otherwise make ffmpeg open the other files or addresses named inside it.

Two kinds of failure: :class:`InvalidVideo` (the file is the problem; its message says what a
person can do about it) and :class:`ProbeError` (the tooling is: ffmpeg missing, timed out).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .ffmpeg_binary import ffmpeg_exe, ffprobe_exe, input_url
from .probe_parse import (
    INTERLACED_FIELD_ORDERS,
    ProbeParseError,
    RawProbe,
    RawStream,
    ffmpeg_error_summary,
    parse_ffmpeg_stderr,
    parse_ffprobe_json,
)

# Nothing a scope tower records is near these; they exist to refuse garbage before we decode.
DEFAULT_MAX_WIDTH = 4096
DEFAULT_MAX_HEIGHT = 4096
DEFAULT_MAX_DURATION_S = 4 * 3600.0  # endoscopy procedures last minutes, rarely over an hour
MIN_SIDE_PX = 16  # smaller than a codec macroblock: not a picture anyone can review
# A header fps above this is a timebase guess ("1k tbr" in MediaRecorder WebM), not a rate.
MAX_PLAUSIBLE_FPS = 240.0
# Demuxed data may end a little before the header's duration (last frame's length, audio
# priming); anything shorter than this fraction minus this slack means data is missing.
TRUNCATION_MIN_FRACTION = 0.9
TRUNCATION_SLACK_S = 1.0

# Demuxers and codecs that carry still pictures. ffmpeg "decodes" a PNG as a one-frame
# stream at 25 fps, so the stream alone does not tell a picture from a video.
_IMAGE_DEMUXER_RE = re.compile(r"(^|,)(image2|[a-z0-9]+_pipe)(,|$)")
_IMAGE_CODECS = frozenset(
    {
        "png",
        "apng",
        "mjpeg",
        "jpegls",
        "jpeg2000",
        "jpegxl",
        "bmp",
        "tiff",
        "webp",
        "gif",
        "ppm",
        "pgm",
        "pgmyuv",
        "pbm",
        "pam",
        "qoi",
        "exr",
        "dpx",
        "sgi",
        "targa",
        "pcx",
        "xbm",
    }
)

# Containers a scope recorder, a capture card or a browser writes: the only demuxers ffmpeg
# may use on an accepted video. Passed as -format_whitelist, so ffmpeg itself refuses the
# rest -- playlists and scripts (hls, concat, sdp, ...) would make it open other files or
# network addresses named inside an uploaded file.
VIDEO_DEMUXERS = frozenset(
    {
        "mov",
        "matroska",
        "avi",
        "mpegts",
        "mpeg",
        "mpegvideo",
        "mxf",
        "asf",
        "flv",
        "ogg",
        "h264",
        "hevc",
        "m4v",
        "dv",
        "nut",
        "gif",
    }
)
# Also opened while probing, only so that a picture or a sound file is rejected with a
# message that says what it is.
_EXPLAINED_DEMUXERS = frozenset(
    {
        "image2",
        "png_pipe",
        "jpeg_pipe",
        "webp_pipe",
        "bmp_pipe",
        "tiff_pipe",
        "jpegls_pipe",
        "jpegxl_pipe",
        "qoi_pipe",
        "mp3",
        "wav",
        "aac",
        "flac",
        "amr",
        "caf",
        "w64",
    }
)


def demuxer_whitelist(names: frozenset[str]) -> list[str]:
    """ffmpeg input options that limit which demuxers and protocols may touch the file."""
    return ["-format_whitelist", ",".join(sorted(names)), "-protocol_whitelist", "file"]


PROBE_TIMEOUT_S = 60.0
VERIFY_TIMEOUT_S = 600.0  # the stream-copy pass reads the whole file


class InvalidVideo(ValueError):
    """The file is not a usable video. ``str(exc)`` is meant for the person who uploaded it.

    ``code`` is a stable machine-readable reason ("empty", "still_image", "audio_only",
    "unreadable", "truncated", ...); ``detail`` carries ffmpeg's own words when there are any.
    """

    def __init__(self, message: str, *, code: str = "invalid", detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.detail = detail


class ProbeError(RuntimeError):
    """Probing could not run (ffmpeg missing, crashed or timed out): not the file's fault."""


@dataclass(frozen=True)
class VideoInfo:
    format_name: str  # ffmpeg demuxer name(s), e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str  # video codec, e.g. "h264"
    duration_s: float
    fps: float  # average frames per second
    width: int  # as decoded frames come out of ffmpeg, i.e. after display rotation
    height: int
    size_bytes: int
    has_audio: bool
    start_time_s: float = 0.0  # container start; sample timestamps are relative to it
    rotation: int = 0  # display rotation in degrees, already applied to width/height
    sample_aspect_ratio: float = 1.0  # pixel width/height (PAL SD capture is 16:15 or 64:45)
    probed_with: str = "ffmpeg"  # "ffprobe" or "ffmpeg"
    pix_fmt: str = ""  # decoder output format, e.g. "yuv420p"; "" when the probe did not say
    field_order: str = ""  # "progressive", "tt", "bb", "tb", "bt", or "" when unknown
    # True when the stream says its frames are two fields (tt/bb/tb/bt): the sampler and the
    # playback copy deinterlace them. Unknown counts as progressive, as players assume.
    interlaced: bool = False

    @property
    def display_aspect(self) -> float:
        return self.width * self.sample_aspect_ratio / self.height

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def probe_video(
    path: str | os.PathLike,
    *,
    max_width: int = DEFAULT_MAX_WIDTH,
    max_height: int = DEFAULT_MAX_HEIGHT,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    verify: bool = True,
    backend: str = "auto",
    allowed_demuxers: frozenset[str] = VIDEO_DEMUXERS,
) -> VideoInfo:
    """Probe ``path`` and return its :class:`VideoInfo`, or raise :class:`InvalidVideo`.

    ``backend``: "auto" (ffprobe when on PATH, else ffmpeg), "ffprobe" or "ffmpeg".
    """
    path = Path(path)
    size = _file_size(path)
    raw = _read_header(path, backend, allowed_demuxers | _EXPLAINED_DEMUXERS)
    stream = _pick_video_stream(raw)
    _reject_still_image(raw, stream)
    _reject_foreign_format(raw, allowed_demuxers)
    # Before anything is decoded: a 16000x16000 first frame costs ~800 MB to decode.
    _checked_dimensions(stream, max_width, max_height)

    duration, fps = raw.duration_s, _header_fps(stream)
    if verify or duration is None or fps is None:
        demux = _demux_pass(path, allowed_demuxers)
        _reject_truncated(raw.duration_s, demux)
        if duration is None:
            duration = demux.end_s
        if fps is None and demux.end_s > 0:
            fps = demux.video_packets / demux.end_s
    if verify:
        _check_first_frame_decodes(path, allowed_demuxers, max_pixels=max_width * max_height)

    return _build_info(
        raw,
        stream,
        duration_s=duration,
        fps=fps,
        size_bytes=size,
        max_width=max_width,
        max_height=max_height,
        max_duration_s=max_duration_s,
    )


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in ``chunk``-byte pieces so memory stays flat."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --- steps --------------------------------------------------------------------------------


def _file_size(path: Path) -> int:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InvalidVideo(f"The file {path.name!r} does not exist.", code="not_found") from None
    if not path.is_file():
        raise InvalidVideo(f"{path.name!r} is not a regular file.", code="not_found")
    if st.st_size == 0:
        raise InvalidVideo(
            "The file is empty (0 bytes). The upload or export probably failed; upload the recording again.",
            code="empty",
        )
    return st.st_size


def _read_header(path: Path, backend: str, demuxers: frozenset[str]) -> RawProbe:
    if backend not in ("auto", "ffprobe", "ffmpeg"):
        raise ValueError(f"backend must be 'auto', 'ffprobe' or 'ffmpeg', not {backend!r}")
    use_ffprobe = backend == "ffprobe" or (backend == "auto" and ffprobe_exe() is not None)
    if use_ffprobe:
        exe = ffprobe_exe()
        if exe is None:
            raise ProbeError("backend='ffprobe' was requested but ffprobe is not on PATH")
        # warning level: keeps "misdetection possible", which tells noise from a truncated MP4
        cmd = [
            exe,
            "-v",
            "warning",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            *demuxer_whitelist(demuxers),
            input_url(path),
        ]
        proc = _run(cmd, PROBE_TIMEOUT_S)
        if proc.returncode != 0:
            raise _unreadable(ffmpeg_error_summary(proc.stderr))
        try:
            return parse_ffprobe_json(proc.stdout)
        except ProbeParseError as exc:
            raise _unreadable(str(exc)) from None
    # "ffmpeg -i FILE" with no output prints the input description and exits 1 by design.
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", *demuxer_whitelist(demuxers), "-i", input_url(path)]
    proc = _run(cmd, PROBE_TIMEOUT_S)
    try:
        return parse_ffmpeg_stderr(proc.stderr)
    except ProbeParseError as exc:
        raise _unreadable(str(exc)) from None


def _unreadable(detail: str) -> InvalidVideo:
    # ffmpeg guesses mov/mp4 from the ".mp4" name alone for random bytes ("detected only with
    # low score ... misdetection possible"): then a missing moov says nothing about truncation.
    guessed = "misdetection possible" in detail
    if "not on whitelist" in detail:
        return InvalidVideo(
            "This kind of file is not accepted as a procedure recording (ffmpeg recognised it as a "
            "format outside the accepted video containers, e.g. a playlist). Upload the video file "
            "itself (for example MP4, MOV, MKV, WebM, AVI or MPEG-TS).",
            code="unsupported_format",
            detail=detail,
        )
    if "moov atom not found" in detail and not guessed:
        return InvalidVideo(
            "The file is an MP4/MOV without its index (the 'moov atom'), which is written last: "
            "the recording or the upload was cut short, or the recorder was not stopped properly. "
            "Export the recording again and upload the complete file.",
            code="truncated",
            detail=detail,
        )
    return InvalidVideo(
        "The file could not be read as a video: it is damaged, incomplete, or not a video "
        f"file at all (ffmpeg: {detail or 'no details'}). Upload the original recording "
        "(for example MP4, MOV, MKV or MPEG-TS).",
        code="unreadable",
        detail=detail,
    )


def _reject_foreign_format(raw: RawProbe, allowed: frozenset[str]) -> None:
    if set(raw.format_name.split(",")) & allowed:
        return
    raise InvalidVideo(
        f"Files of type {raw.format_name!r} are not accepted as procedure recordings. "
        "Upload the video file itself (for example MP4, MOV, MKV, WebM, AVI or MPEG-TS).",
        code="unsupported_format",
    )


def _pick_video_stream(raw: RawProbe) -> RawStream:
    videos = raw.video_streams()
    if videos:
        return videos[0]
    if raw.has_audio():
        raise InvalidVideo(
            "The file contains audio but no video (an audio recording, or a video whose "
            "picture track was lost on export). Upload the video recording of the procedure.",
            code="audio_only",
        )
    raise InvalidVideo(
        f"The file has no video stream (ffmpeg sees format {raw.format_name!r}). "
        "Upload the video recording of the procedure.",
        code="not_a_video",
    )


def _reject_still_image(raw: RawProbe, stream: RawStream) -> None:
    image_demuxer = bool(_IMAGE_DEMUXER_RE.search(raw.format_name))
    image_codec_without_time = stream.codec in _IMAGE_CODECS and not raw.duration_s
    if image_demuxer or image_codec_without_time:
        raise InvalidVideo(
            f"This is a still image ({stream.codec.upper()}), not a video. Upload the "
            "procedure recording itself; single pictures cannot be analysed as a timeline.",
            code="still_image",
        )


def _header_fps(stream: RawStream) -> float | None:
    for candidate in (stream.fps, stream.tbr):
        if candidate and 0 < candidate <= MAX_PLAUSIBLE_FPS:
            return candidate
    return None


def _build_info(
    raw: RawProbe,
    stream: RawStream,
    *,
    duration_s: float | None,
    fps: float | None,
    size_bytes: int,
    max_width: int,
    max_height: int,
    max_duration_s: float,
) -> VideoInfo:
    """The checks that do not need ffmpeg; kept pure so each rule has a direct test."""
    if not duration_s or duration_s <= 0:
        raise InvalidVideo(
            "The video has no duration (0 s): it holds no playable frames. "
            "Upload a recording that plays in a video player.",
            code="zero_duration",
        )
    if duration_s > max_duration_s:
        raise InvalidVideo(
            f"The video lasts {_hms(duration_s)}; at most {_hms(max_duration_s)} is accepted. "
            "Split the recording or trim it to the procedure.",
            code="too_long",
        )
    if not fps or fps <= 0:
        raise InvalidVideo(
            "The video reports no usable frame rate, so its frames cannot be placed in time. "
            "Re-export it with a constant frame rate (e.g. 25 or 30 fps).",
            code="bad_frame_rate",
        )
    width, height, rotation = _checked_dimensions(stream, max_width, max_height)
    return VideoInfo(
        format_name=raw.format_name,
        codec=stream.codec,
        duration_s=float(duration_s),
        fps=float(fps),
        width=width,
        height=height,
        size_bytes=size_bytes,
        has_audio=raw.has_audio(),
        start_time_s=float(raw.start_time_s or 0.0),
        rotation=rotation,
        sample_aspect_ratio=float(stream.sample_aspect_ratio or 1.0),
        probed_with=raw.source,
        pix_fmt=stream.pix_fmt or "",
        field_order=stream.field_order or "",
        interlaced=(stream.field_order or "") in INTERLACED_FIELD_ORDERS,
    )


@dataclass(frozen=True)
class DemuxResult:
    end_s: float  # where the demuxed data ends, relative to the container start
    video_packets: int
    errors: str  # ffmpeg's error lines, empty when clean


_OUT_TIME_RE = re.compile(r"^out_time=(-?)(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$", re.MULTILINE)
_FRAME_RE = re.compile(r"^frame=(\d+)$", re.MULTILINE)


def _checked_dimensions(stream: RawStream, max_width: int, max_height: int) -> tuple[int, int, int]:
    """(width, height, rotation) as displayed, or InvalidVideo when out of bounds."""
    width, height = stream.width or 0, stream.height or 0
    rotation = round(stream.rotation) % 360
    if rotation in (90, 270):
        width, height = height, width
    if min(width, height) < MIN_SIDE_PX or width > max_width or height > max_height:
        raise InvalidVideo(
            f"The video is {width}x{height} pixels; accepted sizes are "
            f"{MIN_SIDE_PX}x{MIN_SIDE_PX} to {max_width}x{max_height}. "
            "Re-export it at a normal resolution (for example 1920x1080).",
            code="bad_dimensions",
        )
    return width, height, rotation


def _quiet_ffmpeg_reading(path: Path, demuxers: frozenset[str]) -> list[str]:
    """ffmpeg reading ``path`` through the demuxer whitelist, saying nothing but errors;
    the caller adds what to do with it, ending in a null output with progress on stdout."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-v", "error",
            *demuxer_whitelist(demuxers), "-i", input_url(path)]


_NULL_OUTPUT_WITH_PROGRESS = ["-f", "null", "-", "-progress", "pipe:1"]


def _demux_pass(path: Path, demuxers: frozenset[str]) -> DemuxResult:
    cmd = [*_quiet_ffmpeg_reading(path, demuxers), "-map", "0:v", "-map", "0:a?", "-c", "copy",
           *_NULL_OUTPUT_WITH_PROGRESS]
    proc = _run(cmd, VERIFY_TIMEOUT_S)
    if proc.returncode != 0:
        raise _unreadable(ffmpeg_error_summary(proc.stderr))
    times = _OUT_TIME_RE.findall(proc.stdout)
    frames = _FRAME_RE.findall(proc.stdout)
    end_s = 0.0
    if times:
        sign, h, m, s = times[-1]
        end_s = (int(h) * 3600 + int(m) * 60 + float(s)) * (-1 if sign else 1)
    return DemuxResult(
        end_s=max(end_s, 0.0), video_packets=int(frames[-1]) if frames else 0, errors=ffmpeg_error_summary(proc.stderr)
    )


def _reject_truncated(declared_s: float | None, demux: DemuxResult) -> None:
    # mov/mp4 says "partial file" when the index points past the end of the data.
    partial = "partial file" in demux.errors
    short = declared_s is not None and demux.end_s < (declared_s * TRUNCATION_MIN_FRACTION - TRUNCATION_SLACK_S)
    if partial or short:
        declared = f"{declared_s:.1f} s" if declared_s is not None else "longer"
        raise InvalidVideo(
            f"The video is truncated: its data ends at {demux.end_s:.1f} s but its header says "
            f"{declared}. The upload or copy was probably interrupted; upload the complete file.",
            code="truncated",
            detail=demux.errors,
        )
    if demux.video_packets == 0:
        raise InvalidVideo(
            "The video stream holds no frames. Upload a recording that plays in a video player.",
            code="zero_duration",
            detail=demux.errors,
        )


def _check_first_frame_decodes(path: Path, demuxers: frozenset[str], *, max_pixels: int | None = None) -> None:
    reading = _quiet_ffmpeg_reading(path, demuxers)
    if max_pixels:
        # The header may understate the size: the decoder itself refuses larger pictures.
        reading[reading.index("-i"):reading.index("-i")] = ["-max_pixels", str(max_pixels)]
    cmd = [*reading, "-map", "0:v:0", "-frames:v", "1", *_NULL_OUTPUT_WITH_PROGRESS]
    proc = _run(cmd, PROBE_TIMEOUT_S)
    frames = _FRAME_RE.findall(proc.stdout)
    if proc.returncode != 0 or not frames or int(frames[-1]) < 1:
        detail = ffmpeg_error_summary(proc.stderr)
        raise InvalidVideo(
            "The video's frames cannot be decoded (unsupported or damaged codec data"
            f"{': ' + detail if detail else ''}). Re-export it as H.264 MP4 and upload it again.",
            code="undecodable",
            detail=detail,
        )


def _run(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ProbeError(f"{Path(cmd[0]).name} took longer than {timeout_s:.0f} s") from exc
    except OSError as exc:
        raise ProbeError(f"could not run {cmd[0]}: {exc}") from exc
    if proc.returncode < 0:  # killed by a signal: a crash or the OOM killer, not a verdict
        raise ProbeError(f"{Path(cmd[0]).name} was killed by signal {-proc.returncode} while probing")
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def _hms(seconds: float) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


__all__ = [
    "InvalidVideo",
    "ProbeError",
    "VideoInfo",
    "probe_video",
    "sha256_file",
]
