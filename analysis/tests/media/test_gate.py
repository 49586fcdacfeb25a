import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.media.dedup import NearDuplicateFilter
from analysis.media.gate import GateCounts, gate_frames
from analysis.media.probe import probe_video
from analysis.media.quality import QualityThresholds
from analysis.media.sampler import SampledFrame, sample_frames

from .images import blurred, solid, textured_scene


def _frame(image, ts):
    return SampledFrame(timestamp_ms=ts, image=image, reason="interval")


def _story():
    return [
        _frame(textured_scene(1), 0),
        _frame(textured_scene(1), 1000),  # duplicate of the first
        _frame(blurred(textured_scene(2), radius=6), 2000),
        _frame(solid(3), 3000),
        _frame(solid(255), 4000),
        _frame(textured_scene(3), 5000),
    ]


def test_it_keeps_good_distinct_frames_and_counts_every_drop():
    dropped = []
    gate = gate_frames(
        _story(),
        QualityThresholds(),
        NearDuplicateFilter(),
        on_drop=lambda frame, reason, report: dropped.append((frame.timestamp_ms, reason)),
    )
    kept = list(gate)
    assert [k.timestamp_ms for k in kept] == [0, 5000]
    assert gate.counts.as_dict() == {
        "sampled": 6,
        "kept": 2,
        "blurry": 1,
        "too_dark": 1,
        "blown_out": 1,
        "duplicate": 1,
    }
    assert dropped == [(1000, "duplicate"), (2000, "blurry"), (3000, "too_dark"), (4000, "blown_out")]
    assert gate.counts.dropped == 4
    assert kept[0].nearest_distance is None and kept[1].nearest_distance > 6
    assert len(kept[0].phash) == 16 and kept[0].quality.verdict == "ok"
    assert kept[0].reason == "interval" and kept[0].image.shape == (256, 256, 3)


def test_without_dedup_repeats_pass_but_are_still_hashed():
    gate = gate_frames([_frame(textured_scene(1), 0), _frame(textured_scene(1), 1000)], dedup=None)
    kept = list(gate)
    assert len(kept) == 2 and kept[0].phash == kept[1].phash
    assert gate.counts.duplicate == 0


def test_a_bad_frame_never_becomes_the_duplicate_reference():
    scene = textured_scene(4)
    dark_version = (scene // 12).astype(np.uint8)  # same layout, too dark to use
    gate = gate_frames([_frame(dark_version, 0), _frame(scene, 1000)], dedup=NearDuplicateFilter())
    assert [k.timestamp_ms for k in gate] == [1000]
    assert gate.counts.too_dark == 1 and gate.counts.duplicate == 0


def test_counts_can_be_accumulated_into_a_given_object():
    counts = GateCounts()
    list(gate_frames(_story()[:2], dedup=NearDuplicateFilter(), counts=counts))
    list(gate_frames(_story()[2:], dedup=NearDuplicateFilter(), counts=counts))
    assert counts.sampled == 6


KINDS = {
    "good": lambda i: textured_scene(100 + i),
    "repeat": lambda i: textured_scene(100),
    "blurry": lambda i: blurred(textured_scene(200 + i), radius=6),
    "dark": lambda i: solid(5),
    "white": lambda i: solid(250),
}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(sorted(KINDS)), max_size=12))
def test_sampled_always_equals_kept_plus_drops(kinds):
    frames = [_frame(KINDS[kind](i), i * 1000) for i, kind in enumerate(kinds)]
    gate = gate_frames(frames, dedup=NearDuplicateFilter())
    kept = list(gate)
    c = gate.counts
    assert c.sampled == len(frames) == c.kept + c.blurry + c.too_dark + c.blown_out + c.duplicate
    assert c.kept == len(kept)
    assert c.too_dark == kinds.count("dark") and c.blown_out == kinds.count("white")
    assert c.blurry == kinds.count("blurry")


def test_end_to_end_on_a_real_video(scene_video):
    info = probe_video(scene_video)
    with sample_frames(scene_video, info=info, target_size=(128, 96)) as frames:
        gate = gate_frames(frames, dedup=NearDuplicateFilter())
        kept = list(gate)
    c = gate.counts
    assert c.sampled == 6 and c.sampled == c.kept + c.dropped
    # the last segment is one flat colour: no detail at all, so "blurry"
    assert c.blurry == 2
    assert kept and all(k.quality.ok for k in kept)
