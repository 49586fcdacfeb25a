"""Per-frame latency (P50/P95) and throughput of the analyzer, by batch size.

Measures the real engine path: chat template + processor + xgrammar-forced ``generate``
+ validation, greedy decoding.

    .venv/bin/python benchmarks/run_latency_test.py                 # demo model, CPU
    python benchmarks/run_latency_test.py --gpu-shape --device cuda   # MedGemma-4B shape

Per-frame latency is the wall time of one ``analyze`` call divided by its frames (the
frames of a batch are generated together). The random-weight models decide arbitrarily
how long their answers are, so the table also shows the tokens generated per call and the
time per decoding step (full call minus a 1-token call, over the extra steps), which is
what carries over to the real model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.engine.bench_support import (
    GenerateRecorder,
    build_analyzer,
    machine_info,
    percentile,
    print_table,
    random_frames,
    write_results,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--gpu-shape", action="store_true", help="random-weight model with MedGemma-4B's architecture (bf16)"
    )
    parser.add_argument("--device", default=None, help="cpu | cuda | auto (default: cpu, or cuda with --gpu-shape)")
    parser.add_argument("--iterations", type=int, default=5, help="measured calls per batch size")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured calls per batch size")
    parser.add_argument("--batch-sizes", default="1,4,8")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="cap per answer (default: the schema bound; 64 with --gpu-shape)",
    )
    parser.add_argument("--procedure-type", default="colonoscopy")
    parser.add_argument("--no-grammar", action="store_true",
                        help="generate without the xgrammar constraint (to measure what the grammar costs)")
    parser.add_argument("--model-dir", default=None, help="demo model directory (built if missing)")
    parser.add_argument("--out", default=None, help="results directory (default: $OUT or benchmarks/results)")
    parser.add_argument("--name", default=None, help="results file name (default: latency or latency_gpu_shape)")
    args = parser.parse_args(argv)
    args.device = args.device or ("cuda" if args.gpu_shape else "cpu")
    if args.gpu_shape and args.max_new_tokens is None:
        # A random 4B model fills every string to its limit: 1792 steps per call would
        # make the run take many minutes and measure nothing extra.
        args.max_new_tokens = 64
    args.batch_sizes = [int(x) for x in args.batch_sizes.split(",") if x]
    return args


def synchronize(device: str) -> None:
    import torch

    if device != "cpu" and torch.cuda.is_available():
        torch.cuda.synchronize()


def measure(analyzer, recorder, frames, procedure_type, device, iterations, warmup):
    for _ in range(warmup):
        analyzer.analyze(frames, procedure_type)
    per_frame_ms, call_s, tokens, valid = [], [], [], 0
    for _ in range(iterations):
        recorder.new_tokens.clear()
        synchronize(device)
        started = time.perf_counter()
        results = analyzer.analyze(frames, procedure_type)
        synchronize(device)
        elapsed = time.perf_counter() - started
        call_s.append(elapsed)
        per_frame_ms.append(elapsed * 1000 / len(frames))
        tokens.append(sum(recorder.new_tokens))  # one generate call per analyze here
        valid += sum(r.ok for r in results)
    return per_frame_ms, call_s, tokens, valid


def one_token_call_s(analyzer, frames, procedure_type, device) -> float:
    """Preprocessing + prefill (+ grammar set-up) of one call: generate a single token."""
    analyzer.max_new_tokens_override = 1
    try:
        analyzer.analyze(frames, procedure_type)  # warm
        synchronize(device)
        started = time.perf_counter()
        analyzer.analyze(frames, procedure_type)
        synchronize(device)
        return time.perf_counter() - started
    finally:
        analyzer.max_new_tokens_override = None


def main(argv=None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    analyzer = build_analyzer(
        gpu_shape=args.gpu_shape,
        device=args.device,
        batch_size=max(args.batch_sizes),
        max_new_tokens=args.max_new_tokens,
        model_dir=args.model_dir,
    )
    load_s = time.perf_counter() - started
    analyzer.grammar_enabled = not args.no_grammar
    recorder = GenerateRecorder(analyzer.model)
    rows, records = [], []
    for batch_size in args.batch_sizes:
        frames = random_frames(batch_size, seed=batch_size)
        per_frame_ms, call_s, tokens, valid = measure(
            analyzer, recorder, frames, args.procedure_type, args.device, args.iterations, args.warmup
        )
        prefill_s = one_token_call_s(analyzer, frames, args.procedure_type, args.device)
        # generate() returns rows padded to the longest, so new columns = decoding steps.
        steps = statistics.mean(tokens)
        step_ms = (statistics.mean(call_s) - prefill_s) * 1000 / max(steps - 1, 1)
        record = {
            "batch_size": batch_size,
            "iterations": args.iterations,
            "p50_ms_per_frame": percentile(per_frame_ms, 50),
            "p95_ms_per_frame": percentile(per_frame_ms, 95),
            "throughput_frames_per_s": batch_size * args.iterations / sum(call_s),
            "mean_call_s": statistics.mean(call_s),
            "one_token_call_s": prefill_s,
            "decode_step_ms": step_ms,
            "mean_decode_steps_per_call": steps,
            "valid_results": valid,
            "results": batch_size * args.iterations,
        }
        records.append(record)
        rows.append(
            [
                batch_size,
                record["p50_ms_per_frame"],
                record["p95_ms_per_frame"],
                record["throughput_frames_per_s"],
                record["one_token_call_s"] * 1000,
                record["decode_step_ms"],
                round(steps),
                f"{valid}/{batch_size * args.iterations}",
            ]
        )
    recorder.restore()
    model = "MedGemma-4B shape, random weights, bf16" if args.gpu_shape else "demo model (tiny random Gemma 3)"
    print(f"\nlatency - {model} on {args.device}, max_new_tokens={analyzer.config.max_new_tokens or 'schema bound'}, "
          f"grammar {'off' if args.no_grammar else 'on'}")
    print_table(
        ["batch", "P50 ms/frame", "P95 ms/frame", "frames/s", "1-token call ms", "ms/step", "steps/call", "valid"],
        rows,
    )
    payload = {
        "model": model,
        "gpu_shape": args.gpu_shape,
        "device": args.device,
        "procedure_type": args.procedure_type,
        "max_new_tokens": analyzer.config.max_new_tokens,
        "grammar": not args.no_grammar,
        "model_build_or_load_s": load_s,
        "provenance": analyzer.provenance_base.as_dict(),
        "machine": machine_info(),
        "rows": records,
        "note": "per-frame latency = call wall time / frames in the call; P95 over "
        f"{args.iterations} calls is close to their maximum",
    }
    name = args.name or ("latency_gpu_shape" if args.gpu_shape else "latency")
    write_results(name, payload, args.out)
    return payload


if __name__ == "__main__":
    main()
