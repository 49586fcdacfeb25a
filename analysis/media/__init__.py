"""Video media pipeline: probe, sample, gate (quality + near-duplicates), encode, merge.

Pure Python on top of ffmpeg, numpy, Pillow and imagehash; nothing here imports Django, so
tasks, services and benchmarks can all use it.

Typical use::

    info = probe_video(path)                       # raises InvalidVideo with a message
    with sample_frames(path, info=info, target_size=896) as frames:
        gate = gate_frames(frames, QualityThresholds(), NearDuplicateFilter())
        for kept in gate:
            jpeg = encode_jpeg(kept.image)
            ...
    gate.counts.as_dict()
"""

from .dedup import DedupResult, NearDuplicateFilter
from .ffmpeg_binary import FFmpegNotFound, ffmpeg_exe, ffprobe_exe
from .gate import FrameGate, GateCounts, GatedFrame, gate_frames
from .jpeg import InvalidImage, decode_jpeg, encode_jpeg
from .merge import Detection, FrameDetections, TimelineFinding, merge_detections
from .probe import InvalidVideo, ProbeError, VideoInfo, probe_video, sha256_file
from .quality import QualityReport, QualityThresholds, assess_quality
from .sampler import FrameStream, SampledFrame, SamplingError, output_size, sample_frames

__all__ = [
    "DedupResult",
    "Detection",
    "FFmpegNotFound",
    "FrameDetections",
    "FrameGate",
    "FrameStream",
    "GateCounts",
    "GatedFrame",
    "InvalidImage",
    "InvalidVideo",
    "NearDuplicateFilter",
    "ProbeError",
    "QualityReport",
    "QualityThresholds",
    "SampledFrame",
    "SamplingError",
    "TimelineFinding",
    "VideoInfo",
    "assess_quality",
    "decode_jpeg",
    "encode_jpeg",
    "ffmpeg_exe",
    "ffprobe_exe",
    "gate_frames",
    "merge_detections",
    "output_size",
    "probe_video",
    "sample_frames",
    "sha256_file",
]
