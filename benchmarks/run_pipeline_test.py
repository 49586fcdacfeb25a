#!/usr/bin/env python
"""Benchmark: frame sampling + quality gate + near-duplicate filter vs. plain decoding.

Generates (once, cached under var/bench/) a 60 s 1280x720 30 fps H.264 recording stand-in
with motion, hard cuts and sections the gate must remove (defocused, underexposed,
overexposed, a static picture), then measures in one run, interleaved:

  decode   ffmpeg -i FILE -f null -           the physical floor: decode every frame, nothing else
  ours     sample_frames + gate_frames         the pipeline as the CPU task runs it
  variants (unless --quick) what the design choices buy: no scene detection, one decoder
           thread, and the naive order (scale + RGB-convert every frame, pick in Python)

Wall time is the median of --repeats runs; CPU time is user+sys of ffmpeg and of Python.
Prints a table and writes benchmarks/results/pipeline.json.

    python benchmarks/run_pipeline_test.py [--repeats 3] [--quick] [--target-size 896]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from analysis.media.dedup import NearDuplicateFilter
from analysis.media.ffmpeg_binary import ffmpeg_exe
from analysis.media.gate import gate_frames
from analysis.media.probe import probe_video
from analysis.media.quality import QualityThresholds
from analysis.media.sampler import output_size, sample_frames
from benchmarks.support.bench_support import cpu_model_name
from testing import videos as testvideos

SECONDS, SIZE, FPS = 60, (1280, 720), 30
VIDEO_VERSION = 1  # bump when make_benchmark_video changes, so the cache is rebuilt
CACHE = ROOT / "var" / "bench" / f"pipeline_{SECONDS}s_{SIZE[0]}x{SIZE[1]}_{FPS}fps_v{VIDEO_VERSION}.mp4"
RESULTS = ROOT / "benchmarks" / "results" / "pipeline.json"


def cpu_times() -> tuple[float, float]:
    """(own CPU s, reaped children's CPU s): ffmpeg's cost shows up in the second."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def measured(fn):
    own0, kids0 = cpu_times()
    t0 = time.perf_counter()
    extra = fn()
    wall = time.perf_counter() - t0
    own1, kids1 = cpu_times()
    return {"wall_s": wall, "python_cpu_s": own1 - own0, "ffmpeg_cpu_s": kids1 - kids0, **(extra or {})}


def run_plain_decode(path: Path, threads: int = 0) -> dict:
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-v",
        "error",
        "-threads",
        str(threads),
        "-i",
        str(path),
        "-f",
        "null",
        "-",
    ]
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)
    return {}


def run_ours(path: Path, info, target, *, scene=0.3, threads=0) -> dict:
    with sample_frames(
        path, info=info, interval_s=1.0, scene_threshold=scene, target_size=target, threads=threads
    ) as frames:
        gate = gate_frames(frames, QualityThresholds(), NearDuplicateFilter())
        kept = sum(1 for _ in gate)
        reasons = {"interval": 0, "scene": 0}
    return {"kept": kept, "counts": gate.counts.as_dict(), "reasons": reasons}


def run_ours_counting_reasons(path: Path, info, target) -> dict:
    """One extra pass that records per-frame details for the report (not timed)."""
    sampled, kept_ts = [], set()
    with sample_frames(path, info=info, interval_s=1.0, scene_threshold=0.3, target_size=target) as frames:
        stored = list(frames)
    gate = gate_frames(stored, QualityThresholds(), NearDuplicateFilter())
    t0 = time.perf_counter()
    for k in gate:
        kept_ts.add(k.timestamp_ms)
    gate_s = time.perf_counter() - t0
    for f in stored:
        sampled.append((f.timestamp_ms, f.reason))
    return {
        "sampled": len(stored),
        "scene_frames": sum(1 for _, r in sampled if r == "scene"),
        "interval_frames": sum(1 for _, r in sampled if r == "interval"),
        "scene_frame_times_ms": [t for t, r in sampled if r == "scene"],
        "gate_ms_per_frame": 1000 * gate_s / max(1, len(stored)),
        "counts": gate.counts.as_dict(),
    }


def run_naive(path: Path, info, target) -> dict:
    """Scale + convert every decoded frame to RGB, ship all of them, keep one per second."""
    w, h = output_size(info, target)
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-v",
        "error",
        "-i",
        str(path),
        "-vf",
        f"scale={w}:{h}:flags=area,format=rgb24",
        "-f",
        "rawvideo",
        "-",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, bufsize=0)
    frame_bytes, n, picked = w * h * 3, 0, 0
    buf = bytearray(frame_bytes)
    view = memoryview(buf)
    while True:
        got = 0
        while got < frame_bytes:
            r = proc.stdout.readinto(view[got:])
            if not r:
                break
            got += r
        if got < frame_bytes:
            break
        if n % round(info.fps) == 0:
            np.frombuffer(buf, np.uint8).reshape(h, w, 3).copy()
            picked += 1
        n += 1
    proc.wait()
    return {"frames_piped": n, "picked": picked}


def machine() -> dict:
    model = cpu_model_name()
    import os

    version = subprocess.run(
        [ffmpeg_exe(), "-version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "ffmpeg": version,
        "ffmpeg_path": ffmpeg_exe(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="skip the design-choice variants")
    parser.add_argument("--target-size", type=int, default=896, help="max side of sampled frames (MedGemma: 896)")
    args = parser.parse_args()

    if not CACHE.exists():
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {CACHE.relative_to(ROOT)} (once) ...", flush=True)
        t0 = time.perf_counter()
        testvideos.make_benchmark_video(CACHE, seconds=SECONDS, size=SIZE, fps=FPS)
        print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    info = probe_video(CACHE)
    source_frames = round(info.duration_s * info.fps)
    target = args.target_size

    cases = {
        "decode": lambda: run_plain_decode(CACHE),
        "ours": lambda: run_ours(CACHE, info, target),
    }
    if not args.quick:
        cases["ours_no_scene"] = lambda: run_ours(CACHE, info, target, scene=None)
        cases["ours_threads_1"] = lambda: run_ours(CACHE, info, target, threads=1)
        cases["decode_threads_1"] = lambda: run_plain_decode(CACHE, threads=1)
        cases["naive_scale_all"] = lambda: run_naive(CACHE, info, target)

    runs: dict[str, list[dict]] = {name: [] for name in cases}
    run_ours(CACHE, info, target)  # warm the page cache and the imports
    for i in range(args.repeats):
        for name, fn in cases.items():  # interleaved: drift in machine load hits every case alike
            runs[name].append(measured(fn))
            print(f"  run {i + 1}/{args.repeats} {name:<17} {runs[name][-1]['wall_s']:6.2f} s", flush=True)

    details = run_ours_counting_reasons(CACHE, info, target)

    def summary(name):
        walls = [r["wall_s"] for r in runs[name]]
        med = statistics.median(walls)
        return {
            "wall_s_median": med,
            "wall_s_min": min(walls),
            "wall_s_all": walls,
            "source_fps": source_frames / med,
            "realtime_factor": info.duration_s / med,
            "ffmpeg_cpu_s_median": statistics.median(r["ffmpeg_cpu_s"] for r in runs[name]),
            "python_cpu_s_median": statistics.median(r["python_cpu_s"] for r in runs[name]),
        }

    summaries = {name: summary(name) for name in cases}
    base = summaries["decode"]["wall_s_median"]
    for s in summaries.values():
        s["ratio_to_decode"] = s["wall_s_median"] / base

    print()
    print(
        f"video: {CACHE.relative_to(ROOT)}  {info.width}x{info.height} {info.fps:g} fps "
        f"{info.duration_s:g} s = {source_frames} frames; sampled at max side {target}"
    )
    print(f"machine: {machine()['cpu_model']}, {machine()['cores']} cores; repeats: {args.repeats} (median)")
    header = f"{'case':<17} {'wall s':>7} {'min s':>7} {'src fps':>8} {'x realtime':>10} {'vs decode':>9} {'ffmpeg cpu':>10} {'py cpu':>7}"
    print(header)
    print("-" * len(header))
    for name, s in summaries.items():
        print(
            f"{name:<17} {s['wall_s_median']:7.2f} {s['wall_s_min']:7.2f} {s['source_fps']:8.0f} "
            f"{s['realtime_factor']:10.1f} {s['ratio_to_decode']:9.2f} {s['ffmpeg_cpu_s_median']:10.2f} "
            f"{s['python_cpu_s_median']:7.2f}"
        )
    c = details["counts"]
    print()
    print(
        f"sampled {details['sampled']} frames ({details['interval_frames']} interval, "
        f"{details['scene_frames']} scene at {details['scene_frame_times_ms']} ms)"
    )
    print(
        f"gate: kept {c['kept']}; dropped blurry {c['blurry']}, too_dark {c['too_dark']}, "
        f"blown_out {c['blown_out']}, duplicate {c['duplicate']}; "
        f"quality+dedup {details['gate_ms_per_frame']:.1f} ms per sampled frame"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "pipeline",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "video": {
            "path": str(CACHE.relative_to(ROOT)),
            "source_frames": source_frames,
            **info.as_dict(),
            "sections": [s.__dict__ for s in testvideos.benchmark_sections(SECONDS)],
        },
        "settings": {
            "interval_s": 1.0,
            "scene_threshold": 0.3,
            "target_max_side": target,
            "repeats": args.repeats,
            "thresholds": QualityThresholds().__dict__,
        },
        "results": summaries,
        "sampling": details,
    }
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    tmp.replace(RESULTS)
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
