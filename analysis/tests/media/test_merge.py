import enum
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from analysis.media.merge import Detection, FrameDetections, default_risk_rank, merge_detections


def polyp(risk="low", confidence=0.5, location="sigmoid colon", **kw):
    return Detection(category="polyp", location=location, risk=risk, confidence=confidence, **kw)


def test_consecutive_frames_with_one_finding_merge_into_one():
    frames = [
        (1000, "f1", [polyp("low", 0.6, size_mm=4)]),
        (2000, "f2", [polyp("high", 0.7, size_mm=6)]),
        (3000, "f3", [polyp("moderate", 0.9, size_mm=5, label="best view")]),
        (4000, "f4", [polyp("low", 0.8)]),
    ]
    (finding,) = merge_detections(frames)
    assert (finding.start_ms, finding.end_ms, finding.duration_ms) == (1000, 4000, 3000)
    assert finding.risk == "high"  # the highest risk seen
    assert finding.confidence == 0.9  # the highest confidence seen
    assert (finding.key_frame_id, finding.key_timestamp_ms) == ("f3", 3000)
    assert finding.key_detection.label == "best view" and finding.key_detection.size_mm == 5
    assert finding.frame_ids == ("f1", "f2", "f3", "f4") and finding.detection_count == 4


def test_a_frame_without_the_finding_ends_the_run():
    frames = [(0, 1, [polyp()]), (1000, 2, []), (2000, 3, [polyp()])]
    assert [(f.start_ms, f.end_ms) for f in merge_detections(frames)] == [(0, 0), (2000, 2000)]


def test_a_frame_with_only_other_findings_also_ends_the_run():
    bleed = Detection(category="bleeding", location="sigmoid colon", risk="high", confidence=0.8)
    frames = [(0, 1, [polyp()]), (1000, 2, [bleed]), (2000, 3, [polyp()])]
    spans = [(f.category, f.start_ms, f.end_ms) for f in merge_detections(frames)]
    assert spans == [("polyp", 0, 0), ("bleeding", 1000, 1000), ("polyp", 2000, 2000)]


def test_a_gap_longer_than_max_gap_ends_the_run():
    frames = [(0, 1, [polyp()]), (3000, 2, [polyp()]), (9000, 3, [polyp()])]
    assert [(f.start_ms, f.end_ms) for f in merge_detections(frames, max_gap_ms=5000)] == [(0, 3000), (9000, 9000)]
    # exactly max_gap apart still continues
    assert len(merge_detections([(0, 1, [polyp()]), (5000, 2, [polyp()])], max_gap_ms=5000)) == 1


def test_the_same_category_in_another_location_is_another_finding():
    frames = [
        (0, 1, [polyp(location="cecum"), polyp(location="rectum")]),
        (1000, 2, [polyp(location="cecum"), polyp(location="rectum")]),
    ]
    findings = merge_detections(frames)
    assert [(f.location, f.start_ms, f.end_ms) for f in findings] == [("cecum", 0, 1000), ("rectum", 0, 1000)]


def test_keys_ignore_case_and_spacing_and_none_is_a_location_of_its_own():
    frames = [
        (0, 1, [Detection("Polyp", "Sigmoid  colon", "low", 0.5)]),
        (1000, 2, [Detection(" polyp", "sigmoid colon ", "low", 0.9)]),
        (2000, 3, [Detection("polyp", None, "low", 0.9)]),
    ]
    findings = merge_detections(frames)
    assert [(f.start_ms, f.end_ms, f.location) for f in findings] == [(0, 1000, "sigmoid colon "), (2000, 2000, None)]


def test_two_detections_of_one_key_in_a_frame_join_the_run():
    frames = [(0, 1, [polyp(confidence=0.3), polyp(confidence=0.95, label="second")]), (1000, 2, [polyp()])]
    (finding,) = merge_detections(frames)
    assert finding.detection_count == 3 and finding.frame_ids == (1, 2)
    assert finding.key_detection.label == "second"


def test_confidence_ties_pick_the_earliest_frame():
    frames = [(0, "a", [polyp(confidence=0.7)]), (1000, "b", [polyp(confidence=0.7)])]
    assert merge_detections(frames)[0].key_frame_id == "a"


def test_it_accepts_pydantic_findings_mappings_and_frame_objects():
    class Finding(BaseModel):
        category: str
        location: str | None
        risk: str
        confidence: float
        size_mm: float | None = None
        label: str = ""
        description: str = ""
        suggested_next_step: str = ""

    frames = [
        FrameDetections(0, "p1", [Finding(category="ulcer", location="antrum", risk="medium", confidence=0.4)]),
        FrameDetections(1000, "p2", [{"category": "ulcer", "location": "antrum", "risk": "high", "confidence": 0.6}]),
    ]
    (finding,) = merge_detections(frames)
    assert finding.risk == "high" and finding.key_frame_id == "p2"


def test_risk_ranks_words_numbers_and_enums():
    class Risk(enum.Enum):
        LOW = "low"
        HIGH = "high"

    assert default_risk_rank("none") < default_risk_rank("Low") < default_risk_rank("moderate")
    assert default_risk_rank("medium") == default_risk_rank("moderate") < default_risk_rank("high")
    assert default_risk_rank(Risk.HIGH) > default_risk_rank(Risk.LOW)
    assert default_risk_rank(0.9) > default_risk_rank(0.2) > default_risk_rank(None)
    with pytest.raises(ValueError, match="unknown risk 'spicy'"):
        default_risk_rank("spicy")
    frames = [(0, 1, [polyp(risk=2)]), (1000, 2, [polyp(risk=5)])]
    assert merge_detections(frames)[0].risk == 5


def test_it_refuses_frames_out_of_time_order():
    with pytest.raises(ValueError, match="time order"):
        merge_detections([(1000, 1, []), (999, 2, [])])
    assert merge_detections([(1000, 1, [polyp()]), (1000, 2, [polyp()])])[0].frame_ids == (1, 2)


def test_a_custom_risk_rank_can_be_given():
    frames = [(0, 1, [polyp(risk="B")]), (1000, 2, [polyp(risk="A")])]
    assert merge_detections(frames, risk_rank=lambda r: {"A": 2, "B": 1}[r])[0].risk == "A"


CATEGORIES = st.sampled_from(["polyp", "ulcer", "bleeding"])
LOCATIONS = st.sampled_from(["cecum", "rectum", None])
DETECTIONS = st.builds(Detection, CATEGORIES, LOCATIONS, st.sampled_from(["low", "high"]), st.floats(0, 1))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4000), st.lists(DETECTIONS, max_size=3)), max_size=15))
def test_every_detection_lands_in_exactly_one_finding_and_runs_of_a_key_never_overlap(steps):
    frames, t = [], 0
    for i, (delta, dets) in enumerate(steps):
        t += delta
        frames.append((t, i, dets))
    findings = merge_detections(frames, max_gap_ms=2500)
    assert sum(f.detection_count for f in findings) == sum(len(d) for _, _, d in frames)
    by_key = {}
    for f in findings:
        assert f.start_ms <= f.key_timestamp_ms <= f.end_ms
        by_key.setdefault((f.category, f.location), []).append(f)
    for runs in by_key.values():
        for a, b in itertools.pairwise(runs):
            assert a.end_ms <= b.start_ms and a.frame_ids[-1] != b.frame_ids[0]
