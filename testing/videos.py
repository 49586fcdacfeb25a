"""Small generated videos (and non-videos) for tests and benchmarks.

Everything is made by ffmpeg's lavfi sources or from numpy arrays piped into ffmpeg, so no
media files are checked in and every expectation (frame times, cut times, colours) is known
exactly. Encoding uses libx264 ``ultrafast`` for speed; the benchmark video uses ``veryfast``
(CABAC, deblocking, B-frames), which is closer to what a recorder writes.

Frame-index videos carry their own clock: frame N shows N in Gray code as a row of
black/white cells, so a test can read back which source frame it got and compare the
sampler's timestamp with the time that frame was given when it was encoded.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.media.ffmpeg_binary import ffmpeg_exe

PathLike = str | os.PathLike


class VideoGenerationError(RuntimeError):
    pass


def run_ffmpeg(args: Sequence[str], *, stdin: bytes | None = None, timeout_s: float = 300) -> None:
    """Run ffmpeg with ``args`` (without the executable); raise with its stderr on failure."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(
        cmd,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        check=False,
        capture_output=True,
        timeout=timeout_s,
    )
    if proc.returncode != 0:
        raise VideoGenerationError(
            f"ffmpeg failed ({proc.returncode}): {' '.join(cmd)}\n" + proc.stderr.decode("utf-8", "replace")[-2000:]
        )


_X264_FAST = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


def make_test_video(
    path: PathLike,
    *,
    seconds: float = 3.0,
    size: tuple[int, int] = (320, 240),
    fps: int = 25,
    pattern: str = "testsrc2",
    with_audio: bool = False,
    faststart: bool = False,
) -> Path:
    """A lavfi pattern (``testsrc2``, ``testsrc`` -- it draws a timer --, ``smptebars``...)."""
    w, h = size
    args = ["-f", "lavfi", "-i", f"{pattern}=size={w}x{h}:rate={fps}:duration={seconds}"]
    if with_audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    args += _X264_FAST
    if with_audio:
        args += ["-c:a", "aac", "-shortest"]
    if faststart:
        args += ["-movflags", "+faststart"]  # index first, as web-ready exports have it
    args.append(str(path))
    run_ffmpeg(args)
    return Path(path)


@dataclass(frozen=True)
class Segment:
    """``source`` is a lavfi colour name (``red``, ``0x102030``) or pattern (``testsrc2``)."""

    source: str
    seconds: float


_PATTERNS = {"testsrc", "testsrc2", "smptebars", "smptehdbars", "pal75bars", "rgbtestsrc", "yuvtestsrc"}


def _lavfi_source(source: str, w: int, h: int, fps: int, seconds: float) -> str:
    if source in _PATTERNS:
        return f"{source}=size={w}x{h}:rate={fps}:duration={seconds}"
    return f"color=c={source}:size={w}x{h}:rate={fps}:duration={seconds}"


def make_scene_change_video(
    path: PathLike,
    *,
    segments: Sequence[Segment | tuple[str, float]] = (
        ("testsrc2", 2.0),
        ("smptebars", 2.0),
        ("blue", 2.0),
    ),
    size: tuple[int, int] = (320, 240),
    fps: int = 25,
) -> Path:
    """Hard cuts between sources at the cumulative segment boundaries (see ``cut_times``)."""
    segs = [s if isinstance(s, Segment) else Segment(*s) for s in segments]
    w, h = size
    graph = ";".join(
        f"{_lavfi_source(s.source, w, h, fps, s.seconds)},format=yuv420p,setsar=1[s{i}]" for i, s in enumerate(segs)
    )
    graph += ";" + "".join(f"[s{i}]" for i in range(len(segs))) + f"concat=n={len(segs)}:v=1:a=0[v]"
    run_ffmpeg(["-filter_complex", graph, "-map", "[v]", *_X264_FAST, str(path)])
    return Path(path)


def cut_times(segments: Sequence[Segment | tuple[str, float]], *, fps: int = 25) -> list[float]:
    """Time (s) of the first frame of every segment after the first.

    A lavfi source of duration d emits the frames with pts < d, i.e. ceil(d * fps) of them,
    so a cut lands on the frame grid at or after the nominal boundary.
    """
    out, frames = [], 0
    for seg in list(segments)[:-1]:
        seconds = seg.seconds if isinstance(seg, Segment) else seg[1]
        frames += math.ceil(seconds * fps - 1e-9)
        out.append(frames / fps)
    return out


# --- frame-index videos: the picture says which frame it is --------------------------------

INDEX_BITS = 10  # up to 1023 frames
_CELL = 16  # pixels per cell side at the generated size


def index_frame(n: int, *, size: tuple[int, int] = (INDEX_BITS * _CELL, 2 * _CELL)) -> np.ndarray:
    """Gray (H, W) uint8 picture of frame ``n``: Gray-coded bits as black/white cells.

    Gray code flips one cell per frame, so consecutive frames barely differ and never look
    like a scene change.
    """
    w, h = size
    gray = n ^ (n >> 1)
    img = np.zeros((h, w), dtype=np.uint8)
    cell_w = w // INDEX_BITS
    for bit in range(INDEX_BITS):
        if gray >> bit & 1:
            img[:, bit * cell_w : (bit + 1) * cell_w] = 255
    return img


def read_frame_index(image: np.ndarray) -> int:
    """Inverse of :func:`index_frame` for a decoded (and possibly rescaled) RGB/gray frame."""
    luma = image.mean(axis=2) if image.ndim == 3 else image.astype(float)
    h, w = luma.shape
    gray = 0
    for bit in range(INDEX_BITS):
        x0, x1 = (w * bit) // INDEX_BITS, (w * (bit + 1)) // INDEX_BITS
        # the middle of each cell: chroma subsampling and scaling smear the edges
        cell = luma[h // 4 : 3 * h // 4, x0 + (x1 - x0) // 4 : x1 - (x1 - x0) // 4]
        if cell.mean() > 128:
            gray |= 1 << bit
    n, shift = gray, gray >> 1
    while shift:
        n ^= shift
        shift >>= 1
    return n


def make_frame_index_video(
    path: PathLike,
    *,
    segments: Sequence[tuple[int, int]] = ((75, 40),),
    start_ms: int = 0,
    audio_from_zero: bool = False,
    container_args: Sequence[str] = (),
) -> list[int]:
    """Encode frames whose picture is their index, with exactly known presentation times.

    ``segments``: (frame count, frame duration in ms) runs, e.g. ``[(25, 40), (10, 100)]`` is
    one second at 25 fps then one second at 10 fps -- a variable frame rate.
    ``start_ms``: pts of the first video frame. With ``audio_from_zero`` an audio track starts
    at 0, so the container starts at 0 and the video really begins ``start_ms`` later; without
    it ffmpeg's reader shifts the container start, and so the first frame, to 0.
    Returns every frame's pts in ms (index = frame number). Times are integers in a 1/1000
    time base end to end, so there is no rounding anywhere.
    """
    times: list[int] = []
    t = start_ms
    for count, dur in segments:
        for _ in range(count):
            times.append(t)
            t += dur
    if len(times) >= 1 << INDEX_BITS:
        raise ValueError(f"at most {(1 << INDEX_BITS) - 1} frames")
    h, w = index_frame(0).shape
    frames = np.stack([index_frame(n) for n in range(len(times))])
    # setpts in ticks of the 1/1000 time base: a piecewise-linear function of N.
    expr, first, offset = "", 0, start_ms
    pieces = []
    for count, dur in segments:
        pieces.append((first + count, f"{offset}+(N-{first})*{dur}"))
        first += count
        offset += count * dur
    expr = pieces[-1][1]
    for limit, piece in reversed(pieces[:-1]):
        expr = f"if(lt(N\\,{limit})\\,{piece}\\,{expr})"
    args = ["-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{w}x{h}", "-r", "25", "-i", "pipe:0"]
    total_s = (t + 1000) / 1000
    if audio_from_zero:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={total_s}"]
    args += ["-filter_complex", f"[0:v]settb=1/1000,setpts={expr}[v]", "-map", "[v]"]
    if audio_from_zero:
        args += ["-map", "1:a", "-c:a", "aac"]
    args += [*_X264_FAST, "-fps_mode", "passthrough", "-enc_time_base:v", "1/1000", *container_args]
    if str(path).endswith((".mp4", ".mov")):
        args += ["-video_track_timescale", "1000"]
    run_ffmpeg([*args, str(path)], stdin=frames.tobytes())
    return times


def make_streamed_webm(path: PathLike, *, seconds: float = 2.0, size: tuple[int, int] = (160, 120)) -> Path:
    """VP8 WebM written to a pipe, as a browser's MediaRecorder writes it: the muxer cannot
    seek back, so the header has no duration."""
    w, h = size
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={w}x{h}:rate=25:duration={seconds}",
        "-c:v",
        "libvpx",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-f",
        "webm",
        "pipe:1",
    ]
    proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise VideoGenerationError(proc.stderr.decode("utf-8", "replace")[-2000:])
    Path(path).write_bytes(proc.stdout)
    return Path(path)


# --- things that are not (complete) videos ------------------------------------------------


def make_audio_only(path: PathLike, *, seconds: float = 1.0) -> Path:
    """AAC audio in an MP4 container: a valid media file with no picture."""
    run_ffmpeg(["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", "-f", "mp4", str(path)])
    return Path(path)


def make_still_image(path: PathLike, *, image_format: str = "PNG", size: tuple[int, int] = (64, 48)) -> Path:
    """A picture written under whatever name ``path`` has (e.g. ``photo.mp4``)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=image_format)
    return Path(path)


def make_truncated_copy(src: PathLike, dst: PathLike, *, fraction: float = 0.5) -> Path:
    """The first ``fraction`` of ``src``'s bytes: what an interrupted upload leaves."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)


def make_random_bytes(path: PathLike, *, size: int = 64 * 1024, seed: int = 0) -> Path:
    Path(path).write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return Path(path)


def make_empty_file(path: PathLike) -> Path:
    Path(path).write_bytes(b"")
    return Path(path)


# --- the benchmark recording --------------------------------------------------------------


@dataclass(frozen=True)
class BenchSection:
    name: str
    start_s: float
    end_s: float
    expect: str  # what the gate should make of it: "ok", "blurry", "too_dark", "blown_out", "duplicate"


def benchmark_sections(seconds: float = 60.0) -> list[BenchSection]:
    """The storyboard of :func:`make_benchmark_video`, scaled to ``seconds``."""
    plan = [
        ("moving pattern", 0.25, "ok"),
        ("cut: bars (static)", 0.10, "duplicate"),
        ("moving pattern, defocused", 0.15, "blurry"),
        ("moving pattern, underexposed", 0.10, "too_dark"),
        ("moving pattern, overexposed", 0.10, "blown_out"),
        ("cut: rotating pattern", 0.30, "ok"),
    ]
    # Cuts sit half a second off the 1 s sampling grid, so the scene detector, not the
    # interval, has to find them.
    bounds = [0.0]
    for _, share, _ in plan[:-1]:
        bounds.append(bounds[-1] + share * seconds)
    bounds = [0.0] + [b + 0.5 for b in bounds[1:]] + [float(seconds)]
    return [
        BenchSection(name, round(bounds[i], 3), round(bounds[i + 1], 3), expect)
        for i, (name, _, expect) in enumerate(plan)
    ]


def make_benchmark_video(
    path: PathLike,
    *,
    seconds: float = 60.0,
    size: tuple[int, int] = (1280, 720),
    fps: int = 30,
) -> Path:
    """A recording-like H.264 file with motion, cuts, and sections the quality gate removes."""
    w, h = size
    sections = benchmark_sections(seconds)
    src = lambda name, d: f"{name}=size={w}x{h}:rate={fps}:duration={d:.3f}"
    chains = []
    for i, sec in enumerate(sections):
        d = sec.end_s - sec.start_s
        if sec.name.startswith("cut: bars"):
            chain = src("smptehdbars", d)
        elif "defocused" in sec.name:
            chain = src("testsrc2", d) + ",gblur=sigma=12"
        elif "underexposed" in sec.name:
            chain = src("testsrc2", d) + ",format=rgb24,lutrgb=r=val*0.07:g=val*0.07:b=val*0.07"
        elif "overexposed" in sec.name:
            chain = src("testsrc2", d) + ",format=rgb24,lutrgb=r=250+val/50:g=250+val/50:b=250+val/50"
        elif "rotating" in sec.name:
            chain = src("testsrc2", d) + ",rotate=a=0.35*t:fillcolor=0x204060"
        else:
            chain = src("testsrc2", d) + ",hue=h=30*t"
        chains.append(f"{chain},format=yuv420p,setsar=1[s{i}]")
    graph = ";".join(chains) + ";" + "".join(f"[s{i}]" for i in range(len(sections)))
    graph += f"concat=n={len(sections)}:v=1:a=0[v]"
    tmp = Path(str(path) + ".part.mp4")
    run_ffmpeg(
        [
            "-filter_complex",
            graph,
            "-map",
            "[v]",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            str(tmp),
        ],
        timeout_s=1200,
    )
    shutil.move(tmp, path)  # never leave a half-written file under the cached name
    return Path(path)


# --- what endoscopy tower recorders write --------------------------------------------------

# name -> (file suffix, ffmpeg output options). Fast settings; the formats are the point.
RECORDER_FORMATS: dict[str, tuple[str, list[str]]] = {
    "mpeg2_ts": (".ts", ["-c:v", "mpeg2video", "-q:v", "4", "-pix_fmt", "yuv420p", "-f", "mpegts"]),
    "mjpeg_avi": (".avi", ["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p", "-f", "avi"]),
    "mpeg4_avi": (".avi", ["-c:v", "mpeg4", "-q:v", "5", "-pix_fmt", "yuv420p", "-f", "avi"]),
    "mjpeg_mov": (".mov", ["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p", "-f", "mov"]),
    "h264_mov": (".mov", [*_X264_FAST, "-f", "mov"]),
    "h264_mp4": (".mp4", [*_X264_FAST, "-movflags", "+faststart", "-f", "mp4"]),
    "hevc_mp4": (".mp4", ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
                          "-pix_fmt", "yuv420p", "-tag:v", "hvc1", "-f", "mp4"]),
}
# Interlaced encodes, top field first, with the field order written into the stream.
_INTERLACED_OPTIONS = {
    "mpeg2_ts": ["-flags", "+ilme+ildct", "-field_order", "tt"],  # (-top is gone in ffmpeg 8)
    "h264_mp4": ["-x264-params", "interlaced=1:tff=1", "-field_order", "tt"],
}


def make_recorder_video(
    path_stem: PathLike,
    recorder_format: str,
    *,
    segments: Sequence[Segment | tuple[str, float]] = (("red", 1.5), ("blue", 1.5)),
    size: tuple[int, int] = (176, 144),
    fps: int = 25,
    interlaced: bool = False,
    combed: bool = False,
    with_audio: bool = False,
) -> Path:
    """A clip in one of :data:`RECORDER_FORMATS` with hard cuts at ``cut_times(segments)``.

    ``interlaced``: encoded as interlaced (only the formats in ``_INTERLACED_OPTIONS``).
    ``combed``: the picture is replaced by lines whose fields differ in every frame and swap
    every frame, which shows as combing unless the reader deinterlaces (a motion-adaptive
    deinterlacer keeps the lines of a still picture, so they must move).
    Returns ``path_stem`` with the format's suffix.
    """
    suffix, options = RECORDER_FORMATS[recorder_format]
    path = Path(str(path_stem) + suffix)
    segs = [s if isinstance(s, Segment) else Segment(*s) for s in segments]
    w, h = size
    graph = ";".join(
        f"{_lavfi_source(s.source, w, h, fps, s.seconds)},format=yuv420p,setsar=1[s{i}]" for i, s in enumerate(segs)
    )
    graph += ";" + "".join(f"[s{i}]" for i in range(len(segs))) + f"concat=n={len(segs)}:v=1:a=0"
    if combed:
        # the fields swap colours every frame (even lines white, odd black, then the other way
        # round): moving picture, so a motion-adaptive deinterlacer must not weave it
        graph += ",geq=lum='if(mod(Y+N\\,2)\\,16\\,235)':cb=128:cr=128"
    if interlaced:
        graph += ",setfield=tff"  # top field first (newer ffmpeg takes it from the frames)
    graph += "[v]"
    args = ["-filter_complex", graph]
    if with_audio:
        total = sum(s.seconds for s in segs)
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={total}"]
    args += ["-map", "[v]"]
    if with_audio:
        args += ["-map", "0:a", "-c:a", "aac" if suffix != ".avi" else "mp3"]
    if interlaced:
        if recorder_format not in _INTERLACED_OPTIONS:
            raise ValueError(f"no interlaced variant of {recorder_format}")
        args += _INTERLACED_OPTIONS[recorder_format]
        if _ffmpeg_major() < 7:
            args += ["-top", "1"]  # older ffmpeg: the encoder's own switch (gone in ffmpeg 8)
    run_ffmpeg([*args, *options, str(path)])
    return path


def _ffmpeg_major() -> int:
    from analysis.media.ffmpeg_binary import ffmpeg_version

    major, minor = ffmpeg_version()
    return 99 if (major, minor) == (0, 0) else major  # git builds are recent


def moov_before_mdat(path: PathLike) -> bool:
    """Whether an MP4's index (moov) precedes its media data (mdat): ``+faststart``."""
    order = []
    with open(path, "rb") as fh:
        while len(order) < 16:
            header = fh.read(8)
            if len(header) < 8:
                break
            size, kind = int.from_bytes(header[:4], "big"), header[4:].decode("latin-1")
            if size == 1:
                size = int.from_bytes(fh.read(8), "big") - 8
            elif size == 0:
                order.append(kind)
                break
            order.append(kind)
            fh.seek(size - 8, os.SEEK_CUR)
    return "moov" in order and "mdat" in order and order.index("moov") < order.index("mdat")
