"""probe_video on real generated files, through both header readers where available."""

import hashlib
import shutil

import pytest

from analysis.media.ffmpeg_binary import ffprobe_exe
from analysis.media.probe import InvalidVideo, ProbeError, VideoInfo, _build_info, probe_video, sha256_file
from analysis.media.probe_parse import RawProbe, RawStream
from testing import videos as tv

HAS_FFPROBE = ffprobe_exe() is not None

# The ffmpeg reader runs everywhere; ffprobe's where it is installed (scripts/test.sh installs
# it, and runs the second profile with FFPROBE_BINARY=none and the imageio-ffmpeg build).
BACKENDS = [
    "ffmpeg",
    pytest.param("ffprobe", marks=pytest.mark.skipif(not HAS_FFPROBE, reason="no ffprobe (PATH / FFPROBE_BINARY)")),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_it_describes_a_valid_video(video_with_audio, backend):
    info = probe_video(video_with_audio, backend=backend)
    assert info.probed_with == backend
    assert "mp4" in info.format_name
    assert info.codec == "h264"
    assert (info.width, info.height) == (320, 240)
    assert info.fps == pytest.approx(25.0)
    assert info.duration_s == pytest.approx(3.0, abs=0.1)
    assert info.has_audio is True
    assert info.size_bytes == video_with_audio.stat().st_size
    assert info.as_dict()["codec"] == "h264"


@pytest.mark.parametrize("backend", BACKENDS)
def test_it_reports_the_container_start_of_an_mpegts(mpegts_index_video, backend):
    path, _ = mpegts_index_video
    info = probe_video(path, backend=backend)
    assert info.format_name == "mpegts"
    assert info.start_time_s == pytest.approx(1.4, abs=0.01)
    assert info.has_audio is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_it_takes_duration_and_rate_from_the_data_when_the_header_has_none(media_dir, backend):
    path = tv.make_streamed_webm(media_dir / f"recorder_{backend}.webm", seconds=2.0)
    info = probe_video(path, backend=backend)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    assert info.fps == pytest.approx(25.0, abs=0.5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_it_swaps_width_and_height_of_a_rotated_video(media_dir, video_with_audio, backend):
    path = media_dir / "rotated.mp4"
    try:
        tv.run_ffmpeg(["-display_rotation", "90", "-i", str(video_with_audio), "-c", "copy", str(path)])
    except tv.VideoGenerationError:
        pytest.skip("this ffmpeg has no -display_rotation (added in 6.1)")
    info = probe_video(path, backend=backend)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (240, 320)


def test_it_rejects_an_empty_file(media_dir):
    with pytest.raises(InvalidVideo, match="empty") as exc:
        probe_video(tv.make_empty_file(media_dir / "empty.mp4"))
    assert exc.value.code == "empty"


def test_it_rejects_a_missing_file(media_dir):
    with pytest.raises(InvalidVideo, match="does not exist") as exc:
        probe_video(media_dir / "nope.mp4")
    assert exc.value.code == "not_found"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("image_format", "codec"), [("PNG", "PNG"), ("JPEG", "MJPEG"), ("GIF", "GIF")])
def test_it_rejects_a_still_image_named_like_a_video(media_dir, backend, image_format, codec):
    path = tv.make_still_image(media_dir / f"photo_{image_format}.mp4", image_format=image_format)
    with pytest.raises(InvalidVideo, match=f"still image \\({codec}\\), not a video") as exc:
        probe_video(path, backend=backend)
    assert exc.value.code == "still_image"


@pytest.mark.parametrize("backend", BACKENDS)
def test_it_rejects_an_audio_only_file(media_dir, backend):
    path = tv.make_audio_only(media_dir / "voice_note.mp4")
    with pytest.raises(InvalidVideo, match="audio but no video") as exc:
        probe_video(path, backend=backend)
    assert exc.value.code == "audio_only"


def test_it_rejects_an_mp3_whose_only_picture_is_cover_art(media_dir):
    cover = tv.make_still_image(media_dir / "cover.jpg", image_format="JPEG")
    path = media_dir / "song.mp3"
    tv.run_ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-i",
            str(cover),
            "-map",
            "0",
            "-map",
            "1",
            "-c:a",
            "libmp3lame",
            "-c:v",
            "copy",
            "-disposition:v",
            "attached_pic",
            str(path),
        ]
    )
    with pytest.raises(InvalidVideo) as exc:
        probe_video(path, backend="ffmpeg")
    assert exc.value.code == "audio_only"


@pytest.mark.parametrize("backend", BACKENDS)
def test_it_rejects_a_truncated_mp4_whose_index_was_never_written(media_dir, video_with_audio, backend):
    # Default MP4s carry their index (moov) at the end: half a file has none.
    path = tv.make_truncated_copy(video_with_audio, media_dir / "half.mp4")
    with pytest.raises(InvalidVideo, match="cut short") as exc:
        probe_video(path, backend=backend)
    assert exc.value.code == "truncated"
    assert "moov atom not found" in exc.value.detail


@pytest.mark.parametrize("backend", BACKENDS)
def test_it_rejects_a_truncated_mp4_whose_header_looks_complete(media_dir, faststart_video, backend):
    # +faststart puts the index first, so the header survives the cut and claims 3 s.
    path = tv.make_truncated_copy(faststart_video, media_dir / "half_faststart.mp4", fraction=0.5)
    with pytest.raises(InvalidVideo, match=r"truncated: its data ends at \d+\.\d s but its header says 3\.0 s") as exc:
        probe_video(path, backend=backend)
    assert exc.value.code == "truncated"


def test_without_verify_a_faststart_truncation_goes_unnoticed(media_dir, faststart_video):
    """Documents what verify=True buys (and that it is the default)."""
    path = tv.make_truncated_copy(faststart_video, media_dir / "half_faststart2.mp4", fraction=0.5)
    assert probe_video(path, verify=False).duration_s == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize("name", ["noise.mp4", "noise.bin"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_it_rejects_random_bytes_whatever_the_name(media_dir, name, backend):
    path = tv.make_random_bytes(media_dir / name)
    with pytest.raises(InvalidVideo, match="could not be read as a video") as exc:
        probe_video(path, backend=backend)
    assert exc.value.code == "unreadable"
    assert "Invalid data" in str(exc.value)  # ffmpeg's own words are included


def test_it_rejects_dimensions_over_the_limit(video_with_audio):
    with pytest.raises(InvalidVideo, match=r"320x240 pixels; accepted sizes are 16x16 to 200x200") as exc:
        probe_video(video_with_audio, max_width=200, max_height=200)
    assert exc.value.code == "bad_dimensions"


def test_it_rejects_a_video_longer_than_the_limit(video_with_audio):
    with pytest.raises(InvalidVideo, match="lasts 0 min 03 s; at most 0 min 02 s") as exc:
        probe_video(video_with_audio, max_duration_s=2)
    assert exc.value.code == "too_long"


def test_it_refuses_an_ffprobe_backend_that_is_not_installed(video_with_audio, monkeypatch):
    from analysis.media import probe

    monkeypatch.setattr(probe, "ffprobe_exe", lambda: None)
    with pytest.raises(ProbeError, match="ffprobe is not on PATH"):
        probe_video(video_with_audio, backend="ffprobe")
    assert probe_video(video_with_audio, backend="auto").probed_with == "ffmpeg"


# --- the pure rules, for cases no encoder will write -------------------------------------


def _raw(**stream_fields):
    stream = RawStream(index=0, kind="video", codec="h264", width=640, height=480, fps=25.0)
    for key, value in stream_fields.items():
        setattr(stream, key, value)
    return RawProbe(format_name="mov", duration_s=10.0, start_time_s=0.0, streams=[stream]), stream


def _build(raw, stream, **overrides):
    kwargs = {
        "duration_s": raw.duration_s,
        "fps": stream.fps,
        "size_bytes": 1000,
        "max_width": 4096,
        "max_height": 4096,
        "max_duration_s": 3600,
    }
    kwargs.update(overrides)
    return _build_info(raw, stream, **kwargs)


def test_rule_accepts_a_normal_stream():
    raw, stream = _raw(sample_aspect_ratio=16 / 15)
    info = _build(raw, stream)
    assert isinstance(info, VideoInfo)
    assert info.display_aspect == pytest.approx(640 * 16 / 15 / 480)


@pytest.mark.parametrize("duration", [0.0, None, -1.0])
def test_rule_rejects_zero_duration(duration):
    raw, stream = _raw()
    with pytest.raises(InvalidVideo, match=r"no duration \(0 s\)") as exc:
        _build(raw, stream, duration_s=duration)
    assert exc.value.code == "zero_duration"


@pytest.mark.parametrize("fps", [0.0, -25.0, None])
def test_rule_rejects_a_missing_or_non_positive_frame_rate(fps):
    raw, stream = _raw()
    with pytest.raises(InvalidVideo, match="no usable frame rate") as exc:
        _build(raw, stream, fps=fps)
    assert exc.value.code == "bad_frame_rate"


@pytest.mark.parametrize(("width", "height"), [(0, 0), (8, 480), (100_000, 10), (640, 5000), (None, None)])
def test_rule_rejects_absurd_dimensions(width, height):
    raw, stream = _raw(width=width, height=height)
    with pytest.raises(InvalidVideo, match="pixels; accepted sizes") as exc:
        _build(raw, stream)
    assert exc.value.code == "bad_dimensions"


def test_rule_applies_limits_to_the_rotated_picture():
    raw, stream = _raw(width=4000, height=2000, rotation=-90.0)
    info = _build(raw, stream, max_width=2500, max_height=4096)
    assert (info.width, info.height, info.rotation) == (2000, 4000, 270)


def test_sha256_file_matches_hashlib(media_dir, video_with_audio):
    expected = hashlib.sha256(video_with_audio.read_bytes()).hexdigest()
    assert sha256_file(video_with_audio) == expected
    assert sha256_file(video_with_audio, chunk=1000) == expected  # many partial chunks
    assert sha256_file(tv.make_empty_file(media_dir / "e.bin")) == hashlib.sha256(b"").hexdigest()


def test_it_refuses_a_playlist_that_would_make_ffmpeg_open_other_files(media_dir, video_with_audio):
    path = media_dir / "upload.m3u8"
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3,\nfile:{video_with_audio}\n#EXT-X-ENDLIST\n")
    # Unrestricted, ffmpeg happily follows the playlist into another file:
    import subprocess

    from analysis.media.ffmpeg_binary import ffmpeg_exe

    plain = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, check=False)
    assert "Input #0, hls" in plain.stderr
    with pytest.raises(InvalidVideo, match="not accepted as a procedure recording") as exc:
        probe_video(path)
    assert exc.value.code == "unsupported_format"
    assert "whitelist" in exc.value.detail


def test_a_colon_in_the_file_name_is_not_taken_for_a_protocol(media_dir, video_with_audio):
    path = media_dir / "concat:scope.mp4"
    shutil.copy(video_with_audio, path)
    assert probe_video(path).duration_s == pytest.approx(3.0, abs=0.1)


def test_oversized_dimensions_are_refused_before_any_frame_is_decoded(video_with_audio, monkeypatch):
    """A 16000x16000 first frame costs ~800 MB to decode: the header's size is checked first."""
    from analysis.media import probe

    def must_not_run(*args, **kwargs):
        raise AssertionError("decoded before the size check")

    monkeypatch.setattr(probe, "_check_first_frame_decodes", must_not_run)
    monkeypatch.setattr(probe, "_demux_pass", must_not_run)
    with pytest.raises(InvalidVideo) as refused:
        probe_video(video_with_audio, max_width=64, max_height=64, verify=True)
    assert refused.value.code == "bad_dimensions"


def test_the_decoder_is_told_the_largest_picture_it_may_make(video_with_audio):
    """The header may understate the size; ffmpeg's -max_pixels refuses a larger picture."""
    from analysis.media.probe import VIDEO_DEMUXERS, _check_first_frame_decodes
    from analysis.media.sampler import build_command

    info = probe_video(video_with_audio)
    command = build_command(video_with_audio, info=info, max_pixels=4096 * 4096)
    assert command[command.index("-max_pixels") + 1] == str(4096 * 4096)
    assert command.index("-max_pixels") < command.index("-i")
    with pytest.raises(InvalidVideo) as refused:
        _check_first_frame_decodes(video_with_audio, VIDEO_DEMUXERS, max_pixels=16)
    assert refused.value.code == "undecodable"
