"""What tower recorders write (MPEG-2 TS, AVI MJPEG / MPEG-4 Part 2, MOV, H.264 and HEVC MP4,
interlaced): probed, sampled with the right times, and copied into a browser-playable MP4
that keeps the original's time base.

Every clip is red for 1.5 s then blue (25 fps, 176x144): the first blue frame is frame 38,
at 1.52 s, and the clip holds 76 frames (3.04 s).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analysis.media import playback_copy
from analysis.media.ffmpeg_binary import ffprobe_exe
from analysis.media.playback_copy import CopyFailed, copy_reason, copy_size, make_copy, parse_out_time
from analysis.media.probe import VideoInfo, probe_video
from analysis.media.sampler import build_command, sample_frames
from testing import videos as tv

FPS = 25
FRAME_S = 1 / FPS
SEGMENTS = (("red", 1.5), ("blue", 1.5))
CUT_S = tv.cut_times(SEGMENTS, fps=FPS)[0]  # 1.52
DURATION_S = 76 / FPS
# The ffprobe reader where an ffprobe is configured (the services profile's CI runs with ffmpeg alone).
BACKENDS = [pytest.param("ffprobe", marks=pytest.mark.skipif(ffprobe_exe() is None, reason="no ffprobe (PATH / "
                                                                                          "FFPROBE_BINARY)")),
            "ffmpeg"]

NEEDS_COPY = ["mpeg2_ts", "mjpeg_avi", "mpeg4_avi", "mjpeg_mov", "hevc_mp4"]
PLAYABLE = ["h264_mp4", "h264_mov"]


@pytest.fixture(scope="session")
def recorder_clips(media_dir):
    """Made on first use, once per test session."""
    made: dict[tuple, object] = {}

    def clip(fmt: str, **kwargs):
        key = (fmt, tuple(sorted(kwargs.items())))
        if key not in made:
            stem = media_dir / ("rec_" + fmt + "".join(f"_{k}" for k, v in sorted(kwargs.items()) if v))
            made[key] = tv.make_recorder_video(stem, fmt, segments=SEGMENTS, fps=FPS, **kwargs)
        return made[key]

    return clip


def _frames(path, info=None, **kwargs):
    info = info or probe_video(path)
    kwargs = {"interval_s": 0.5, "scene_threshold": 0.3, **kwargs}
    with sample_frames(path, info=info, **kwargs) as stream:
        return list(stream)


def _is_blue(image: np.ndarray) -> bool:
    mean = image.reshape(-1, 3).mean(axis=0)
    return mean[2] > 150 and mean[0] < 80


def _first_blue_s(frames) -> float:
    return next(f.pts_s for f in frames if _is_blue(f.image))


def _combing(image: np.ndarray) -> float:
    """Mean luma step between neighbouring lines: high when the two fields differ."""
    luma = image.astype(float).mean(axis=2)
    return float(np.abs(np.diff(luma, axis=0)).mean())


# --- probe and sampler ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", NEEDS_COPY + PLAYABLE)
def test_each_recorder_format_is_sampled_at_the_right_times(recorder_clips, fmt):
    path = recorder_clips(fmt)
    info = probe_video(path)
    assert info.duration_s == pytest.approx(DURATION_S, abs=FRAME_S)
    assert info.fps == pytest.approx(FPS)
    assert not info.interlaced
    frames = _frames(path, info)
    assert frames[0].timestamp_ms == 0 and not _is_blue(frames[0].image)
    assert abs(_first_blue_s(frames) - CUT_S) < FRAME_S
    assert frames[-1].pts_s <= DURATION_S


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_mpegts_clock_starting_at_1_4_s_is_recorded_and_sampled_from_0(recorder_clips, backend):
    info = probe_video(recorder_clips("mpeg2_ts"), backend=backend)
    assert info.start_time_s == pytest.approx(1.44, abs=0.05)
    frames = _frames(recorder_clips("mpeg2_ts"), info)
    assert frames[0].timestamp_ms == 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fmt", ["mpeg2_ts", "h264_mp4"])
def test_an_interlaced_recording_is_detected(recorder_clips, fmt, backend):
    info = probe_video(recorder_clips(fmt, interlaced=True), backend=backend)
    assert info.interlaced and info.field_order == "tt"
    progressive = probe_video(recorder_clips(fmt), backend=backend)
    assert not progressive.interlaced


def test_an_interlaced_recording_is_deinterlaced_one_frame_per_frame(recorder_clips):
    path = recorder_clips("mpeg2_ts", interlaced=True, combed=True)
    info = probe_video(path)
    assert "bwdif=" in " ".join(build_command(path, info=info))
    every = _frames(path, info, interval_s=FRAME_S, scene_threshold=None)
    # one frame per frame, at the frame times: not one per field
    assert [f.timestamp_ms for f in every] == [round(n * 1000 / FPS) for n in range(76)]
    combed = _frames(path, dataclasses.replace(info, interlaced=False), interval_s=0.5, scene_threshold=None)
    deinterlaced = [f for f in every if f.timestamp_ms % 500 == 0 or f.timestamp_ms % 500 == 20][: len(combed)]
    assert min(_combing(f.image) for f in combed) > 100  # white and black lines alternate
    assert max(_combing(f.image) for f in deinterlaced) < 10


def test_the_scene_change_of_an_interlaced_mpegts_lands_on_its_frame(recorder_clips):
    path = recorder_clips("mpeg2_ts", interlaced=True)
    frames = _frames(path)
    assert frames[0].timestamp_ms == 0
    assert abs(_first_blue_s(frames) - CUT_S) < FRAME_S
    assert probe_video(path).duration_s == pytest.approx(DURATION_S, abs=FRAME_S)


# --- which recordings need a copy ----------------------------------------------------------


@pytest.mark.parametrize("fmt", NEEDS_COPY)
def test_formats_browsers_cannot_play_need_a_copy(recorder_clips, fmt):
    assert copy_reason(probe_video(recorder_clips(fmt))) is not None


@pytest.mark.parametrize("fmt", PLAYABLE)
def test_progressive_h264_in_mp4_or_mov_needs_no_copy(recorder_clips, fmt):
    assert copy_reason(probe_video(recorder_clips(fmt))) is None


def test_interlaced_h264_needs_a_copy(recorder_clips):
    assert "interlaced" in copy_reason(probe_video(recorder_clips("h264_mp4", interlaced=True)))


def test_vp8_webm_needs_no_copy_but_h264_outside_mp4_does(media_dir):
    webm = tv.make_streamed_webm(media_dir / "browser.webm", seconds=1.0)
    assert copy_reason(probe_video(webm)) is None
    info = dataclasses.replace(probe_video(webm), codec="h264")  # H.264 in Matroska
    assert copy_reason(info) is not None
    high10 = VideoInfo("mov,mp4,m4a,3gp,3g2,mj2", "h264", 1.0, 25.0, 64, 48, 1, False, pix_fmt="yuv420p10le")
    assert "yuv420p10le" in copy_reason(high10)


def _info(width, height, sar=1.0):
    return VideoInfo("mpegts", "mpeg2video", 1.0, 25.0, width, height, 1, False, sample_aspect_ratio=sar)


@pytest.mark.parametrize(("size", "sar", "expected"), [
    ((1920, 1080), 1.0, (1280, 720)),
    ((720, 576), 16 / 15, (768, 576)),  # PAL SD 4:3: square pixels, not upscaled
    ((1440, 1080), 4 / 3, (1280, 720)),  # HDV anamorphic
    ((175, 143), 1.0, (174, 142)),  # even
    ((3840, 2160), 1.0, (1280, 720)),
])
def test_the_copy_is_at_most_720_lines_with_the_display_aspect_and_even_sides(size, sar, expected):
    assert copy_size(_info(*size, sar)) == expected


def test_a_lower_cap_is_honoured():
    assert copy_size(_info(1920, 1080), max_height=480) == (852, 480)


def test_progress_lines_are_read():
    assert parse_out_time("out_time=00:01:02.500000\n") == pytest.approx(62.5)
    assert parse_out_time("out_time=N/A") is None
    assert parse_out_time("frame=12") is None


# --- the copy ------------------------------------------------------------------------------


def _check_copy(original, copy, *, interlaced=False):
    src, out = probe_video(original), probe_video(copy)
    assert out.codec == "h264" and out.pix_fmt == "yuv420p" and "mov" in out.format_name.split(",")
    assert not out.interlaced and copy_reason(out) is None
    assert tv.moov_before_mdat(copy)
    assert out.height <= 720 and out.width % 2 == 0 and out.height % 2 == 0
    assert out.start_time_s == pytest.approx(0, abs=1e-3)
    assert out.duration_s == pytest.approx(src.duration_s, abs=FRAME_S)
    original_frames, copy_frames = _frames(original, src), _frames(copy, out)
    assert copy_frames[0].timestamp_ms == original_frames[0].timestamp_ms == 0
    assert abs(_first_blue_s(copy_frames) - _first_blue_s(original_frames)) < FRAME_S
    assert abs(_first_blue_s(copy_frames) - CUT_S) < FRAME_S


@pytest.mark.parametrize("fmt", NEEDS_COPY)
def test_the_copy_is_a_faststart_h264_mp4_with_the_same_times(recorder_clips, tmp_path, fmt):
    original = recorder_clips(fmt)
    seen: list[float] = []
    result = make_copy(original, tmp_path / "copy.mp4", info=probe_video(original), on_progress=seen.append)
    _check_copy(original, result.path)
    assert seen and seen == sorted(seen) and seen[-1] > 0.9


def test_an_interlaced_mpegts_copy_is_deinterlaced_and_keeps_its_times(recorder_clips, tmp_path):
    original = recorder_clips("mpeg2_ts", interlaced=True, combed=True)
    info = probe_video(original)
    assert "bwdif=" in " ".join(playback_copy.build_command(original, "x.mp4", info=info))
    copy = make_copy(original, tmp_path / "copy.mp4", info=info).path
    out = probe_video(copy)
    assert not out.interlaced and out.duration_s == pytest.approx(info.duration_s, abs=FRAME_S)
    frames = _frames(copy, out, interval_s=FRAME_S, scene_threshold=None)
    assert len(frames) == 76
    assert max(_combing(f.image) for f in frames[1:-1]) < 10
    plain = recorder_clips("mpeg2_ts", interlaced=True)
    _check_copy(plain, make_copy(plain, tmp_path / "plain.mp4", info=probe_video(plain)).path)


def test_a_large_recording_is_copied_at_720_lines(media_dir, tmp_path):
    original = tv.make_recorder_video(media_dir / "rec_big", "mjpeg_avi", segments=(("red", 0.2), ("blue", 0.2)),
                                      size=(1440, 1080))
    copy = make_copy(original, tmp_path / "copy.mp4", info=probe_video(original)).path
    out = probe_video(copy)
    assert (out.width, out.height) == (960, 720)


def test_a_video_that_starts_after_its_audio_keeps_its_offset_in_the_copy(tmp_path):
    original = tmp_path / "late.mkv"  # H.264 in Matroska: needs a copy
    tv.make_frame_index_video(original, segments=((50, 40),), start_ms=1500, audio_from_zero=True)
    info = probe_video(original)
    assert copy_reason(info) is not None
    copy = make_copy(original, tmp_path / "copy.mp4", info=info).path
    first_original = _frames(original, info, scene_threshold=None)[0]
    first_copy = _frames(copy, scene_threshold=None)[0]
    assert abs(first_original.pts_s - 1.5) < FRAME_S  # (Matroska's AAC priming: ~1.523 s)
    assert abs(first_copy.pts_s - first_original.pts_s) < FRAME_S
    assert tv.read_frame_index(first_copy.image) == tv.read_frame_index(first_original.image) == 0


def test_a_copy_that_cannot_be_made_says_why(media_dir, recorder_clips, tmp_path):
    original = recorder_clips("mpeg4_avi")
    broken = tv.make_truncated_copy(original, tmp_path / "cut.avi", fraction=0.0005)
    with pytest.raises(CopyFailed, match="ffmpeg"):
        make_copy(broken, tmp_path / "copy.mp4", info=probe_video(original))


def test_a_copy_that_takes_too_long_is_stopped(recorder_clips, tmp_path):
    original = recorder_clips("hevc_mp4")
    with pytest.raises(CopyFailed, match="longer than"):
        make_copy(original, tmp_path / "copy.mp4", info=probe_video(original), timeout_s=0.001)


# --- field order as the two probe readers see it ---------------------------------------------

_STDERR = (
    "Input #0, mpegts, from 'file:x.ts':\n"
    "  Duration: 00:00:03.04, start: 1.440000, bitrate: 74 kb/s\n"
    "  Stream #0:0[0x100]: Video: mpeg2video (Main) ([2][0][0][0] / 0x0002), {pix}, "
    "720x576 [SAR 16:15 DAR 4:3], 25 fps, 25 tbr, 90k tbn\n"
)


@pytest.mark.parametrize(("pix", "fmt", "order"), [
    ("yuv420p(tv, top first)", "yuv420p", "tt"),
    ("yuv420p(tv, bottom first)", "yuv420p", "bb"),
    ("yuv422p(tv, bt709, top coded first (swapped))", "yuv422p", "tb"),
    ("yuv420p(bottom coded first (swapped))", "yuv420p", "bt"),
    ("yuvj420p(pc, bt470bg/unknown/unknown, progressive)", "yuvj420p", "progressive"),
    ("yuv420p10le(tv, bt2020nc/bt2020/smpte2084)", "yuv420p10le", None),
    ("yuv420p", "yuv420p", None),
])
def test_ffmpeg_stderr_gives_pixel_format_and_field_order(pix, fmt, order):
    from analysis.media.probe_parse import parse_ffmpeg_stderr

    stream = parse_ffmpeg_stderr(_STDERR.format(pix=pix)).video_streams()[0]
    assert (stream.pix_fmt, stream.field_order, stream.width, stream.height) == (fmt, order, 720, 576)


@pytest.mark.parametrize(("value", "order"), [("tt", "tt"), ("BB", "bb"), ("progressive", "progressive"),
                                              ("unknown", None), (None, None)])
def test_ffprobe_json_gives_field_order(value, order):
    import json

    from analysis.media.probe_parse import parse_ffprobe_json

    stream = {"index": 0, "codec_type": "video", "codec_name": "mpeg2video", "width": 720, "height": 576,
              "pix_fmt": "yuv420p"}
    if value is not None:
        stream["field_order"] = value
    raw = parse_ffprobe_json(json.dumps({"format": {"format_name": "mpegts"}, "streams": [stream]}))
    assert raw.video_streams()[0].field_order == order and raw.video_streams()[0].pix_fmt == "yuv420p"
