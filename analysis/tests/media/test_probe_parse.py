"""The header parsers, on captured tool output (no ffmpeg run)."""

import json

import pytest

from analysis.media.probe_parse import (
    ProbeParseError,
    ffmpeg_error_summary,
    parse_ffmpeg_stderr,
    parse_ffprobe_json,
    split_top_level,
)

# ffmpeg 9 (imageio-ffmpeg) on an MP4 with audio.
FFMPEG9_MP4 = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'a.mp4':
  Metadata:
    major_brand     : isom
    encoder         : Lavf63.1.102
  Duration: 00:00:03.00, start: 0.000000, bitrate: 785 kb/s
  Stream #0:0[0x1](und): Video: h264 (Constrained Baseline) (avc1 / 0x31637661), yuv420p(progressive), \
320x240 [SAR 1:1 DAR 4:3], 706 kb/s, 25 fps, 25 tbr, 12800 tbn (default)
    Metadata:
      handler_name    : VideoHandler
      Display Matrix: rotation of 90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 69 kb/s (default)
At least one output file must be specified
"""

# ffmpeg 4.x style: no [0x1] id, "tbc", side data block, PAL SD with non-square pixels.
FFMPEG4_MOV = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'scope.mov':
  Duration: 01:02:03.50, start: 0.040000, bitrate: 4969 kb/s
    Stream #0:0(eng): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709), 720x576 \
[SAR 16:15 DAR 4:3], 4969 kb/s, 29.97 fps, 29.97 tbr, 30k tbn, 59.94 tbc (default)
    Side data:
      displaymatrix: rotation of -90.00 degrees
Output #0, null, to 'pipe:':
    Stream #0:0: Video: wrapped_avframe, 1x1
"""

# A browser MediaRecorder WebM: no duration, no real fps, SAR as its own field.
WEBM_RECORDER = """\
Input #0, matroska,webm, from 'rec.webm':
  Duration: N/A, start: 0.000000, bitrate: N/A
  Stream #0:0: Video: vp8, yuv420p(tv, progressive), 640x480, SAR 1:1 DAR 4:3, 1k tbr, 1k tbn (default)
  Stream #0:1: Audio: opus, 48000 Hz, mono, fltp (default)
"""

MP3_WITH_COVER = """\
Input #0, mp3, from 'song.mp3':
  Duration: 00:00:01.00, start: 0.025056, bitrate: 83 kb/s
  Stream #0:0: Audio: mp3 (mp3float), 44100 Hz, mono, fltp, 64 kb/s, start 0.025057
  Stream #0:1: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 64x48 [SAR 1:1 DAR 4:3], \
90k tbr, 90k tbn, start 0.025056 (attached pic)
"""

OPEN_FAILURE = """\
[in#0 @ 0x558b54021040] Format mov,mp4,m4a,3gp,3g2,mj2 detected only with low score of 1, misdetection possible!
[in#0 @ 0x558b54021040] moov atom not found
[in#0 @ 0x558b54020cc0] Error opening input: Invalid data found when processing input
Error opening input file rnd.mp4.
Error opening input files: Invalid data found when processing input
"""


def test_it_reads_format_duration_and_streams_from_ffmpeg_9():
    probe = parse_ffmpeg_stderr(FFMPEG9_MP4)
    assert probe.format_name == "mov,mp4,m4a,3gp,3g2,mj2"
    assert probe.duration_s == 3.0 and probe.start_time_s == 0.0
    video, audio = probe.streams
    assert (video.kind, video.codec, video.width, video.height) == ("video", "h264", 320, 240)
    assert video.fps == 25.0 and video.tbr == 25.0 and video.sample_aspect_ratio == 1.0
    assert video.rotation == 90.0  # the 0x31637661 codec tag is not mistaken for a size
    assert (audio.kind, audio.codec) == ("audio", "aac")
    assert probe.has_audio() and probe.source == "ffmpeg"


def test_it_reads_the_older_ffmpeg_4_layout_and_stops_at_the_output_section():
    probe = parse_ffmpeg_stderr(FFMPEG4_MOV)
    assert probe.duration_s == pytest.approx(3723.5)
    assert probe.start_time_s == 0.04
    assert len(probe.streams) == 1  # the Output #0 stream is not an input stream
    video = probe.streams[0]
    assert (video.width, video.height, video.fps) == (720, 576, 29.97)
    assert video.tbr == 29.97
    assert video.sample_aspect_ratio == pytest.approx(16 / 15)
    assert video.rotation == -90.0


def test_it_handles_a_recorder_webm_without_duration_or_fps():
    probe = parse_ffmpeg_stderr(WEBM_RECORDER)
    assert probe.duration_s is None
    video = probe.video_streams()[0]
    assert (video.codec, video.width, video.height) == ("vp8", 640, 480)
    assert video.fps is None and video.tbr == 1000.0  # "1k tbr" is a timebase, not a rate
    assert video.sample_aspect_ratio == 1.0


def test_it_does_not_count_cover_art_as_video():
    probe = parse_ffmpeg_stderr(MP3_WITH_COVER)
    assert probe.streams[1].attached_pic
    assert probe.video_streams() == []
    assert probe.has_audio()


def test_it_raises_with_ffmpegs_reason_when_no_input_was_described():
    with pytest.raises(ProbeParseError, match="moov atom not found"):
        parse_ffmpeg_stderr(OPEN_FAILURE)


def test_error_summary_drops_log_prefixes_and_generic_lines():
    summary = ffmpeg_error_summary(OPEN_FAILURE, limit=5)
    assert "@ 0x" not in summary
    assert "Error opening input file" not in summary
    assert summary.split("; ")[-2:] == [
        "moov atom not found",
        "Error opening input: Invalid data found when processing input",
    ]


def test_split_top_level_keeps_parenthesised_commas_together():
    assert split_top_level("h264 (High), yuv420p(tv, bt709), 1920x1080 [SAR 1:1, x], 25 fps") == [
        "h264 (High)",
        "yuv420p(tv, bt709)",
        "1920x1080 [SAR 1:1, x]",
        "25 fps",
    ]


FFPROBE_JSON = {
    "streams": [
        {
            "index": 0,
            "codec_name": "h264",
            "codec_type": "video",
            "width": 1920,
            "height": 1080,
            "sample_aspect_ratio": "1:1",
            "r_frame_rate": "30000/1001",
            "avg_frame_rate": "30000/1001",
            "disposition": {"default": 1, "attached_pic": 0},
            "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}],
        },
        {"index": 1, "codec_name": "aac", "codec_type": "audio", "disposition": {"attached_pic": 0}},
        {
            "index": 2,
            "codec_name": "mjpeg",
            "codec_type": "video",
            "width": 64,
            "height": 64,
            "avg_frame_rate": "0/0",
            "r_frame_rate": "90000/1",
            "disposition": {"attached_pic": 1},
        },
    ],
    "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "12.345000", "start_time": "0.000000"},
}


def test_it_reads_ffprobe_json():
    probe = parse_ffprobe_json(json.dumps(FFPROBE_JSON))
    assert probe.source == "ffprobe"
    assert probe.format_name == "mov,mp4,m4a,3gp,3g2,mj2"
    assert probe.duration_s == pytest.approx(12.345)
    (video,) = probe.video_streams()  # the cover art is excluded
    assert (video.width, video.height) == (1920, 1080)
    assert video.fps == pytest.approx(29.97, abs=0.01)
    assert video.rotation == -90
    assert probe.has_audio()


def test_it_reads_the_legacy_rotate_tag_and_unknown_rates_from_ffprobe():
    data = {
        "streams": [
            {
                "codec_type": "video",
                "codec_name": "h264",
                "width": 10,
                "height": 20,
                "avg_frame_rate": "0/0",
                "r_frame_rate": "25/1",
                "sample_aspect_ratio": "0:1",
                "tags": {"rotate": "90"},
            }
        ],
        "format": {"format_name": "mov", "duration": "N/A"},
    }
    video = parse_ffprobe_json(json.dumps(data)).streams[0]
    assert video.fps is None and video.tbr == 25.0
    assert video.sample_aspect_ratio is None
    assert abs(video.rotation) == 90
    assert parse_ffprobe_json(json.dumps(data)).duration_s is None


@pytest.mark.parametrize("text", ["", "{}", "not json"])
def test_it_rejects_empty_or_broken_ffprobe_output(text):
    with pytest.raises(ProbeParseError):
        parse_ffprobe_json(text)
