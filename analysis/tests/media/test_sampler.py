"""sample_frames on generated videos whose pictures say which frame they are."""

import gc
import os

import numpy as np
import pytest

from analysis.media.gate import gate_frames
from analysis.media.probe import VideoInfo, probe_video
from analysis.media.sampler import SamplingError, build_command, output_size, sample_frames, select_expression
from testing import videos as tv

from .conftest import SCENE_SEGMENTS


def _sample(path, **kwargs):
    info = probe_video(path)
    with sample_frames(path, info=info, **kwargs) as frames:
        return list(frames)


def _expected_grid_frames(times_ms, interval_ms, offset_ms=0):
    """Index of the first frame at or after each multiple of the interval (relative times)."""
    picked, last_bucket = [], None
    for n, t in enumerate(times_ms):
        bucket = (t - offset_ms) // interval_ms
        if last_bucket is None or bucket > last_bucket:
            picked.append(n)
            last_bucket = bucket
    return picked


def _assert_true_times(frames, times_ms, offset_ms=0):
    for frame in frames:
        n = tv.read_frame_index(frame.image)
        assert frame.timestamp_ms == times_ms[n] - offset_ms, f"frame {n} at {frame.timestamp_ms} ms"


def test_timestamps_are_the_presentation_times_of_the_frames_shown(cfr_index_video):
    path, times = cfr_index_video
    frames = _sample(path, interval_s=0.5, scene_threshold=None)
    _assert_true_times(frames, times)
    assert [f.timestamp_ms for f in frames] == [0, 520, 1000, 1520, 2000, 2520]  # 25 fps grid
    assert {f.reason for f in frames} == {"interval"}
    assert [f.index for f in frames] == list(range(len(frames)))


def test_it_follows_a_variable_frame_rate(vfr_index_video):
    path, times = vfr_index_video  # 25 fps for 1 s, then 10 fps
    frames = _sample(path, interval_s=0.25, scene_threshold=None)
    _assert_true_times(frames, times)
    picked = [tv.read_frame_index(f.image) for f in frames]
    assert picked == _expected_grid_frames(times, 250)
    # From 1 s on frames come every 100 ms, so the grid lands on 1300 and 1800 ms, where
    # index * interval would claim 1250 and 1750.
    assert [f.timestamp_ms for f in frames][4:9] == [1000, 1300, 1500, 1800, 2000]


def test_a_video_that_starts_after_its_audio_keeps_its_offset(late_video_index_video):
    path, times = late_video_index_video  # container starts at 0 (audio), video at 1.5 s
    frames = _sample(path, interval_s=0.5, scene_threshold=None)
    assert frames[0].timestamp_ms == 1500
    _assert_true_times(frames, times)


def test_times_are_relative_to_the_container_start(mpegts_index_video):
    path, times = mpegts_index_video  # MPEG-TS clocks start at 1.4 s
    assert probe_video(path).start_time_s == pytest.approx(1.4, abs=0.01)
    frames = _sample(path, interval_s=0.5, scene_threshold=None)
    assert frames[0].timestamp_ms == 0
    _assert_true_times(frames, times)


def test_it_adds_frames_at_scene_changes(scene_video):
    frames = _sample(scene_video, interval_s=1.0, scene_threshold=0.3, target_size=(64, 48))
    cuts_ms = [round(t * 1000) for t in tv.cut_times(SCENE_SEGMENTS, fps=25)]
    assert cuts_ms == [1320, 2720]  # off the 1 s grid, so only scene detection finds them
    scene = [f for f in frames if f.reason == "scene"]
    assert [f.timestamp_ms for f in scene] == cuts_ms
    assert all(f.scene_score > 0.3 for f in scene)
    assert [f.timestamp_ms for f in frames if f.reason == "interval"] == [0, 1000, 2000, 3000]
    # the frame after the last cut shows the last segment's colour (0x2050a0)
    assert np.allclose(scene[-1].image.reshape(-1, 3).mean(axis=0), (0x20, 0x50, 0xA0), atol=6)


def test_without_scene_detection_only_the_grid_is_sampled(scene_video):
    frames = _sample(scene_video, interval_s=1.0, scene_threshold=None, target_size=(64, 48))
    assert [f.timestamp_ms for f in frames] == [0, 1000, 2000, 3000]
    assert all(f.scene_score is None for f in frames)


def test_frames_are_writable_rgb_arrays_at_the_requested_size(video_with_audio):
    frames = _sample(video_with_audio, interval_s=1.0, target_size=(96, 80))
    assert len(frames) == 3
    for f in frames:
        assert f.image.shape == (80, 96, 3) and f.image.dtype == np.uint8
        assert f.image.flags.writeable and f.image.flags.c_contiguous
    assert _sample(video_with_audio, interval_s=1.0, target_size=160)[0].image.shape == (120, 160, 3)


def test_a_rotated_video_comes_out_upright(media_dir, video_with_audio):
    path = media_dir / "rotated_for_sampling.mp4"
    try:
        tv.run_ffmpeg(["-display_rotation", "90", "-i", str(video_with_audio), "-c", "copy", str(path)])
    except tv.VideoGenerationError:
        pytest.skip("this ffmpeg has no -display_rotation (added in 6.1)")
    frames = _sample(path, interval_s=1.0, target_size=100)
    assert frames[0].image.shape == (100, 75, 3)  # portrait: 240x320 scaled to max side 100


def _info(width=640, height=480, sar=1.0):
    return VideoInfo(
        format_name="mov",
        codec="h264",
        duration_s=1,
        fps=25,
        width=width,
        height=height,
        size_bytes=1,
        has_audio=False,
        sample_aspect_ratio=sar,
    )


@pytest.mark.parametrize(
    ("info", "target", "expected"),
    [
        (_info(), None, (640, 480)),
        (_info(), (896, 896), (896, 896)),
        (_info(), 320, (320, 240)),
        (_info(), 4000, (640, 480)),  # never upscaled
        (_info(720, 576, sar=16 / 15), None, (768, 576)),  # PAL 4:3 made square
        (_info(720, 576, sar=16 / 15), 384, (384, 288)),
        (_info(480, 640), 320, (240, 320)),
    ],
)
def test_output_size(info, target, expected):
    assert output_size(info, target) == expected


@pytest.mark.parametrize(("interval", "scene"), [(0, 0.3), (-1, None), (1.0, 0.0), (1.0, 1.5)])
def test_it_rejects_nonsense_parameters(interval, scene):
    with pytest.raises(ValueError):
        select_expression(interval, scene)


def test_the_command_selects_before_it_scales(video_with_audio):
    cmd = build_command(video_with_audio, info=probe_video(video_with_audio), target_size=64)
    graph = cmd[cmd.index("-filter_complex") + 1]
    assert graph.index("select=") < graph.index("showinfo") < graph.index("scale=")
    assert cmd.index("-nostdin") < cmd.index("-i")


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_closing_early_kills_and_reaps_ffmpeg(long_video):
    info = probe_video(long_video)
    stream = sample_frames(long_video, info=info, interval_s=0.1)
    next(stream)
    assert stream.returncode is None  # still decoding the remaining 19 s
    stream.close()
    assert stream.returncode is not None
    assert _gone(stream.pid)  # killed and reaped: not even a zombie
    assert list(stream) == []


def test_leaving_a_with_block_on_an_exception_stops_ffmpeg(long_video):
    info = probe_video(long_video)
    stream = sample_frames(long_video, info=info, interval_s=0.1)
    with pytest.raises(RuntimeError, match="consumer failed"), stream:
        for _ in stream:
            raise RuntimeError("consumer failed")
    assert _gone(stream.pid)


def test_dropping_the_last_reference_stops_ffmpeg(long_video):
    info = probe_video(long_video)
    stream = sample_frames(long_video, info=info, interval_s=0.1)
    pid = stream.pid
    for _ in stream:
        break
    del stream
    gc.collect()
    assert _gone(pid)


def test_closing_the_gate_stops_the_sampler(long_video):
    info = probe_video(long_video)
    stream = sample_frames(long_video, info=info, interval_s=0.1, target_size=64)
    with gate_frames(stream) as gate:
        next(gate)
    assert _gone(stream.pid)


def test_damaged_data_is_concealed_by_default_and_reported(media_dir, faststart_video):
    path = tv.make_truncated_copy(faststart_video, media_dir / "cut_for_sampling.mp4", fraction=0.5)
    info = probe_video(faststart_video)  # the complete file's description
    with sample_frames(path, info=info, interval_s=0.5) as stream:
        frames = list(stream)
    assert 0 < frames[-1].timestamp_ms < 3000
    assert stream.warnings  # ffmpeg's complaints are kept for the caller


def test_strict_sampling_fails_with_ffmpegs_last_words(media_dir, faststart_video):
    path = tv.make_truncated_copy(faststart_video, media_dir / "cut_for_strict.mp4", fraction=0.5)
    info = probe_video(faststart_video)
    got = []
    stream = sample_frames(path, info=info, interval_s=0.5, strict=True)
    with pytest.raises(SamplingError, match="ffmpeg failed") as exc, stream:
        got.extend(stream)
    assert got  # the frames before the damage were delivered
    assert exc.value.returncode != 0
    assert exc.value.stderr_tail and "ffmpeg said:" in str(exc.value)
    assert exc.value.code == "decode_failed"


def test_a_file_that_vanished_fails_with_ffmpegs_reason(media_dir, video_with_audio):
    info = probe_video(video_with_audio)
    with pytest.raises(SamplingError, match="No such file or directory"):
        list(sample_frames(media_dir / "gone.mp4", info=info))


def test_a_colon_in_the_file_name_is_not_taken_for_a_protocol(media_dir, video_with_audio):
    import shutil

    path = media_dir / "http:scope.mp4"
    shutil.copy(video_with_audio, path)
    assert len(_sample(path, interval_s=1.0, target_size=32)) == 3


def test_an_ffmpeg_killed_from_outside_is_a_retryable_failure(long_video):
    import signal

    info = probe_video(long_video)
    with sample_frames(long_video, info=info, interval_s=0.1) as stream:
        next(stream)
        os.kill(stream.pid, signal.SIGKILL)  # what the OOM killer does
        with pytest.raises(SamplingError) as exc:
            list(stream)
    assert exc.value.retryable and exc.value.code == "ffmpeg_crashed"
