"""Sample frames from a video with ffmpeg, straight into numpy arrays.

One ffmpeg process decodes the file and runs this filter chain::

    select=<interval grid OR scene change>, metadata=print (scene score), showinfo,
    scale=W:H, setsar=1, format=rgb24

* ``select`` comes first so that the only frames that are scaled and converted to RGB are the
  ones we keep (about one per second); the other 24-59 frames per second are decoded and
  dropped in YUV. Scene detection itself looks at every frame, but it is a SIMD SAD over the
  YUV planes, cheap next to decoding.
* The interval rule is a grid, ``floor((t+eps)/I) > floor((prev_selected_t+eps)/I)``: the
  first frame at or after each multiple of I is taken. Compared with
  ``t - prev_selected_t >= I`` it does not drift when I is not a multiple of the frame
  duration (at 25 fps, ``>= 0.5`` gives 0, 0.52, 1.04, ...), and ``eps`` absorbs float error
  such as 15360 * (1/15360) < 1.0. A scene-change frame inside a bucket does not move the
  grid; if it is the first frame of a bucket it stands in for that bucket's interval frame.
* ``reason`` is "scene" when the frame's scene score (which ``select`` stores in the frame's
  ``lavfi.scene_score`` metadata, printed by the ``metadata`` filter just before showinfo)
  is above the threshold -- also when the frame happens to fall on the grid, since "a new
  view starts here" is the more useful thing to know -- else "interval".
* ``showinfo`` logs each selected frame's pts and the link's time base on stderr *before* the
  frame moves on, so the k-th RGB frame on stdout pairs with the k-th showinfo line. A reader
  thread drains stderr (a full stderr pipe would block ffmpeg) and queues the timestamps.
  The metadata line of a frame is logged by the filter before showinfo's, in the same
  filter thread, so it is attached to the next showinfo line.
  ``-fps_mode passthrough`` stops the muxer from duplicating or dropping frames, which would
  break that pairing.
* Timestamps are pts * time_base exactly (integers, not the 6-significant-digit pts_time
  text), relative to the container start as ffmpeg's CLI shifts it to 0 -- the same clock a
  player's seek bar and ``ffmpeg -ss`` use. A video stream that starts later than the
  container (audio first) keeps its offset.
* Interlaced sources (the probe saw a field order tt/bb/tb/bt) go through ``bwdif`` first,
  one frame out per frame in with its pts unchanged, so the comb of two fields never
  reaches the quality gate or the model.
* ``scale`` has an explicit output size computed from the probe, so a mid-stream resolution
  change cannot change the byte size of frames on the pipe.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Self

import ffmpeg  # ffmpeg-python: builds the command line only; we run the process ourselves
import numpy as np

from .ffmpeg_binary import ffmpeg_exe, input_url, passthrough_fps_args
from .probe import VIDEO_DEMUXERS, InvalidVideo, VideoInfo

# Slack added to t before bucketing: far below any frame duration (1 ms at 1000 fps) and far
# above double rounding error at the timestamps of a day-long recording (~1e-11 s).
GRID_EPSILON_S = 1e-4
# How long to wait for a frame's showinfo line once its pixels have arrived. The line is
# written before the pixels, so only a wedged reader thread would ever hit this.
TIMESTAMP_WAIT_S = 30.0
_STDERR_TAIL_LINES = 12
# bwdif (motion adaptive, yadif's successor) emitting one frame per frame (not one per
# field), the field order taken from each frame, every frame treated as interlaced because
# the probe said the stream is (some decoders, MJPEG's, do not flag the frames themselves).
DEINTERLACE_OPTIONS = {"mode": "send_frame", "parity": "auto", "deint": "all"}

_SHOWINFO_FRAME_RE = re.compile(
    r"^\[Parsed_showinfo_\d+ @ [^\]]*\]\s+n:\s*(?P<n>\d+)\s+pts:\s*(?P<pts>-?\d+|NOPTS)"
    r"\s+pts_time:(?P<pts_time>\S+)"
)
_SHOWINFO_TB_RE = re.compile(r"^\[Parsed_showinfo_\d+ @ [^\]]*\]\s+config in time_base: (\d+)/(\d+)")
_SHOWINFO_ANY_RE = re.compile(r"^\[Parsed_(showinfo|metadata)_\d+ @")
_SCENE_SCORE_RE = re.compile(r"^\[Parsed_metadata_\d+ @ [^\]]*\]\s+lavfi\.scene_score=(\S+)")
# The input/output description ffmpeg prints at info level: useless in an error message.
_BANNER_RE = re.compile(r"^(\s|$|Input #|Output #|Stream mapping:|Press \[q\]|frame=)")
_ERRORISH_RE = re.compile(r"error|invalid|corrupt|partial file|missing", re.IGNORECASE)


class SamplingError(InvalidVideo):
    """ffmpeg failed while decoding; the message ends with ffmpeg's last stderr lines."""

    def __init__(self, message: str, *, returncode: int | None = None, stderr_tail: str = ""):
        full = f"{message}\nffmpeg said:\n{stderr_tail}" if stderr_tail else message
        crashed = returncode is not None and returncode < 0
        super().__init__(full, code="ffmpeg_crashed" if crashed else "decode_failed", detail=stderr_tail)
        self.returncode = returncode
        self.stderr_tail = stderr_tail

    @property
    def retryable(self) -> bool:
        """ffmpeg died from a signal (crash, OOM killer): the file may be fine; try again."""
        return self.code == "ffmpeg_crashed"


@dataclass(frozen=True, eq=False)
class SampledFrame:
    timestamp_ms: int  # media time, relative to the container start
    image: np.ndarray  # (H, W, 3) uint8 RGB, writable, C-contiguous
    reason: str  # "interval" | "scene"
    index: int = 0  # position among the sampled frames of this run
    pts_s: float = 0.0  # the same time in seconds, unrounded
    scene_score: float | None = None  # 0..1 change from the previous source frame; None if off


def output_size(info: VideoInfo, target_size: tuple[int, int] | int | None) -> tuple[int, int]:
    """(width, height) of the frames ``sample_frames`` yields.

    * ``(W, H)``: exactly that (the analyzer's input size; aspect is not preserved).
    * ``M`` (int): longest side M, display aspect kept, never upscaled.
    * ``None``: the display size (non-square pixels made square).
    """
    display_w = max(1, round(info.width * info.sample_aspect_ratio))
    display_h = info.height
    if target_size is None:
        return display_w, display_h
    if isinstance(target_size, int):
        if target_size < 1:
            raise ValueError("target_size must be >= 1")
        scale = min(1.0, target_size / max(display_w, display_h))
        return max(1, round(display_w * scale)), max(1, round(display_h * scale))
    width, height = (int(v) for v in target_size)
    if width < 1 or height < 1:
        raise ValueError("target_size must be positive")
    return width, height


def select_expression(interval_s: float, scene_threshold: float | None) -> str:
    if interval_s <= 0:
        raise ValueError("interval_s must be > 0")
    eps, step = repr(GRID_EPSILON_S), repr(float(interval_s))
    expr = f"isnan(prev_selected_t)+gt(floor((t+{eps})/{step}),floor((prev_selected_t+{eps})/{step}))"
    if scene_threshold is not None:
        if not 0 < scene_threshold < 1:
            raise ValueError("scene_threshold must be in (0, 1), or None to disable")
        expr += f"+gt(scene,{float(scene_threshold)!r})"
    return expr


def build_command(
    path: str | os.PathLike,
    *,
    info: VideoInfo,
    interval_s: float = 1.0,
    scene_threshold: float | None = 0.3,
    target_size: tuple[int, int] | int | None = None,
    threads: int = 0,
    strict: bool = False,
    max_pixels: int | None = None,
) -> list[str]:
    width, height = output_size(info, target_size)
    shrinking = width * height < info.width * info.height
    whitelist = ",".join(sorted(VIDEO_DEMUXERS))  # the same demuxers the probe accepted
    # The decoder refuses pictures above max_pixels, whatever the header claimed.
    limits = {"max_pixels": max_pixels} if max_pixels else {}
    stream = ffmpeg.input(input_url(path), threads=threads, format_whitelist=whitelist, protocol_whitelist="file",
                          **limits)["v:0"]
    if info.interlaced:
        # Before select: the deinterlacer looks at the neighbouring frames, which select
        # would drop. One frame out per frame in, same pts, so times do not change.
        stream = stream.filter("bwdif", **DEINTERLACE_OPTIONS)
    stream = stream.filter("select", select_expression(interval_s, scene_threshold))
    if scene_threshold is not None:
        stream = stream.filter("metadata", mode="print", key="lavfi.scene_score")
    stream = (
        stream.filter("showinfo")
        # area averaging is the right filter when shrinking (no aliasing); it costs nothing
        # noticeable because only the selected frames reach this point.
        .filter("scale", width, height, flags="area" if shrinking else "bicubic")
        .filter("setsar", "1")
        .filter("format", "rgb24")
        .output("pipe:", format="rawvideo", pix_fmt="rgb24")
    )
    args = ffmpeg.compile(stream, cmd=ffmpeg_exe())
    pipe_at = args.index("pipe:")
    # Global options must precede the inputs; ffmpeg >= 7 ignores trailing ones with a warning.
    # "repeat+": never fold identical lines into "Last message repeated N times", which
    # would swallow per-frame lines that the pairing of pixels and timestamps counts on.
    head = [args[0], "-hide_banner", "-nostdin", "-nostats", "-loglevel", "repeat+info"]
    if strict:
        head.append("-xerror")  # stop at the first decoding error instead of concealing it
    return head + args[1:pipe_at] + passthrough_fps_args() + args[pipe_at:]


def sample_frames(
    path: str | os.PathLike,
    *,
    info: VideoInfo,
    interval_s: float = 1.0,
    scene_threshold: float | None = 0.3,
    target_size: tuple[int, int] | int | None = None,
    threads: int = 0,
    strict: bool = False,
    max_pixels: int | None = None,
) -> FrameStream:
    """Iterate over the sampled frames of ``path`` (see the module docstring for the rules).

    Use it as a context manager (or call ``close()``) so ffmpeg is killed as soon as the
    consumer stops early; dropping the last reference does the same in CPython.

    ``threads``: ffmpeg decoder threads, 0 = ffmpeg's choice (one per core).
    ``strict``: fail on the first decoding error; by default ffmpeg conceals damaged
    packets and carries on, and the damage is listed in ``FrameStream.warnings``.
    """
    cmd = build_command(
        path,
        info=info,
        interval_s=interval_s,
        scene_threshold=scene_threshold,
        target_size=target_size,
        threads=threads,
        strict=strict,
        max_pixels=max_pixels,
    )
    width, height = output_size(info, target_size)
    return FrameStream(cmd, width=width, height=height, scene_threshold=scene_threshold)


def capped_per_minute(frames, per_minute: int, counter: dict):
    """The frames, with scene-change frames beyond ``per_minute`` in any minute of media
    time dropped (a clip cut to trigger a scene change every frame must not send 600 frames
    of a 10 s video to the model). Interval frames are always kept. ``counter["capped"]``
    counts what was dropped."""
    from collections import deque

    recent: deque[int] = deque()
    for frame in frames:
        while recent and frame.timestamp_ms - recent[0] >= 60_000:
            recent.popleft()
        if frame.reason == "scene" and len(recent) >= per_minute:
            counter["capped"] = counter.get("capped", 0) + 1
            continue
        recent.append(frame.timestamp_ms)
        yield frame


class FrameStream(Iterator[SampledFrame]):
    """An iterator of :class:`SampledFrame` that owns one ffmpeg process."""

    def __init__(self, cmd: list[str], *, width: int, height: int, scene_threshold: float | None) -> None:
        self.cmd = cmd
        self.width, self.height = width, height
        self.frame_bytes = width * height * 3
        self._scene_threshold = scene_threshold
        self._count = 0
        self._last_ms: int | None = None
        self._closed = False
        self._stamps: queue.Queue = queue.Queue()
        self._tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        self.warnings: list[str] = []  # distinct error-like ffmpeg lines (concealed damage)
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,  # raw pipe: readinto() fills our numpy buffers with no extra copy
        )
        _grow_pipe(self._proc.stdout)
        # The thread gets the pipe and the containers, not self: a running thread keeps its
        # target alive, and a reference to self would stop __del__ from ever killing ffmpeg.
        self._reader = threading.Thread(
            target=_read_stderr,
            args=(self._proc.stderr, self._stamps, self._tail, self.warnings),
            name=f"ffmpeg-stderr-{self._proc.pid}",
            daemon=True,
        )
        self._reader.start()

    # -- public ----------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    @property
    def frames_read(self) -> int:
        return self._count

    def stderr_tail(self) -> str:
        return "\n".join(self._tail)

    def __iter__(self) -> FrameStream:
        return self

    def __next__(self) -> SampledFrame:
        if self._closed:
            raise StopIteration
        try:
            return self._next_frame()
        except BaseException:  # StopIteration included: the end and every failure release ffmpeg
            self.close()
            raise

    def kill(self) -> None:
        """Stop ffmpeg now, from any thread (a watchdog): the reader then sees the pipe end."""
        if self._proc.poll() is None:
            self._proc.kill()

    def close(self) -> None:
        """Kill ffmpeg if it still runs, reap it, and release the pipes. Idempotent."""
        if self._closed:
            return
        self._closed = True
        proc = self._proc
        if proc.poll() is None:
            proc.kill()
        proc.wait()  # reaps the child: no zombie
        # stderr reaches EOF once ffmpeg is gone, so the reader finishes on its own.
        self._reader.join(timeout=5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        # At interpreter shutdown the subprocess module may already be torn down; there is
        # nothing useful to report from a finalizer then.
        with contextlib.suppress(Exception):
            self.close()

    # -- internals -------------------------------------------------------------------------

    def _next_frame(self) -> SampledFrame:
        image = np.empty((self.height, self.width, 3), dtype=np.uint8)
        got = _read_exactly(self._proc.stdout, memoryview(image).cast("B"))
        if got == 0:
            self._finish()
            raise StopIteration
        if got < self.frame_bytes:
            self._proc.wait()
            self._reader.join(timeout=5)
            raise SamplingError(
                f"ffmpeg stopped in the middle of frame {self._count} ({got} of {self.frame_bytes} bytes)",
                returncode=self._proc.returncode,
                stderr_tail=self.stderr_tail(),
            )
        try:
            stamp = self._stamps.get(timeout=TIMESTAMP_WAIT_S)
        except queue.Empty:
            stamp = None
        if stamp is None:
            raise SamplingError(
                f"no timestamp was logged for frame {self._count}",
                returncode=self._proc.poll(),
                stderr_tail=self.stderr_tail(),
            )
        seconds, scene_score = stamp
        is_scene = self._scene_threshold is not None and scene_score is not None and scene_score > self._scene_threshold
        frame = SampledFrame(
            timestamp_ms=round(seconds * 1000),
            image=image,
            reason="scene" if is_scene else "interval",
            index=self._count,
            pts_s=float(seconds),
            scene_score=scene_score,
        )
        self._count += 1
        self._last_ms = frame.timestamp_ms
        return frame

    def _finish(self) -> None:
        returncode = self._proc.wait()
        self._reader.join(timeout=5)
        if returncode != 0:
            where = f", the last at {self._last_ms / 1000:.2f} s" if self._last_ms is not None else ""
            raise SamplingError(
                f"ffmpeg failed (exit status {returncode}) after {self._count} frames{where}",
                returncode=returncode,
                stderr_tail=self.stderr_tail(),
            )
        if self._count == 0:
            raise SamplingError(
                "ffmpeg decoded no frames from this video",
                returncode=returncode,
                stderr_tail=self.stderr_tail(),
            )


def _read_stderr(pipe, stamps: queue.Queue, tail: collections.deque, warnings: list[str]) -> None:
    """Reader thread: queue (seconds, scene score) per showinfo frame line, keep the rest."""
    time_base: tuple[int, int] | None = None
    scene: float | None = None
    try:
        for raw in pipe:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if m := _SHOWINFO_FRAME_RE.match(line):
                seconds = _seconds(m.group("pts"), m.group("pts_time"), time_base)
                stamps.put(None if seconds is None else (seconds, scene))
                scene = None
            elif m := _SCENE_SCORE_RE.match(line):
                scene = _float(m.group(1))
            elif m := _SHOWINFO_TB_RE.match(line):
                time_base = (int(m.group(1)), int(m.group(2)))
            elif not _SHOWINFO_ANY_RE.match(line) and not _BANNER_RE.match(line):
                tail.append(line)
                if _ERRORISH_RE.search(line) and line not in warnings and len(warnings) < 50:
                    warnings.append(line)
    except (OSError, ValueError):  # pipe closed under us during close()
        pass
    finally:
        stamps.put(None)


def _seconds(pts: str, pts_time: str, time_base: tuple[int, int] | None) -> Fraction | None:
    """Exact presentation time: integer pts times the link's time base."""
    if pts == "NOPTS":
        return None
    if time_base is None:  # very old showinfo: no "config in time_base" line
        value = _float(pts_time)
        return None if value is None else Fraction(value)
    num, den = time_base
    return Fraction(int(pts) * num, den)


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _read_exactly(pipe, view: memoryview) -> int:
    """Fill ``view`` from ``pipe``; returns bytes read (< len(view) only at end of stream)."""
    filled, total = 0, len(view)
    while filled < total:
        n = pipe.readinto(view[filled:])
        if not n:
            break
        filled += n
    return filled


def _grow_pipe(pipe) -> None:
    """Ask Linux for a 1 MiB pipe (default 64 KiB): fewer wake-ups per 2.4 MB 720p frame."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError, ValueError):
        pass  # not Linux, or above /proc/sys/fs/pipe-max-size: the default works, slower


__all__ = ["FrameStream", "SampledFrame", "SamplingError", "output_size", "sample_frames"]
