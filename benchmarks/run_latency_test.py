"""Reference vs fast engine, side by side in one run, on one loaded model.

    .venv/bin/python benchmarks/run_latency_test.py                  # demo model, CPU
    python benchmarks/run_latency_test.py --gpu-shape --device cuda    # MedGemma-4B shape

Engines (benchmarks/engine_bench.py): ``reference`` (Hugging Face generate + the answer
grammar), ``fast-nojf`` (the fast engine, jump-forward off: the reference's tokens) and
``fast`` (the default, jump-forward on). Every answer is a scripted answer of 0, 1 or 3
findings (benchmarks/scripted_answers.py) replayed through each engine's real
grammar-forced decode path, so all engines write the same realistic text. Reported per
(engine, kind, findings, batch): ms per frame (call wall time / frames in the call),
forward passes per answer, ms per decoding step; and the fast engine's speed-up over the
reference measured in this run. Absolute times belong to the machine they ran on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_bench import ENGINES, engines_over, measure  # noqa: E402

from benchmarks.support.bench_support import build_analyzer, machine_info, print_table, random_frames, write_results  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu-shape", action="store_true", help="random-weight model with MedGemma-4B's architecture")
    parser.add_argument("--device", default=None, help="cpu | cuda | auto (default: cpu, or cuda with --gpu-shape)")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--kinds", default="live,frame")
    parser.add_argument("--findings", default="0,1,3")
    parser.add_argument("--batch-sizes", default="1,4,8")
    parser.add_argument("--iterations", type=int, default=3, help="measured calls per case")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured calls per case")
    parser.add_argument("--model-dir", default=None, help="demo model directory (built if missing)")
    parser.add_argument("--out", default=None, help="results directory (default: $OUT or benchmarks/results)")
    parser.add_argument("--name", default=None, help="results file name (default: latency or latency_gpu_shape)")
    args = parser.parse_args(argv)
    args.device = args.device or ("cuda" if args.gpu_shape else "cpu")
    args.engines = [x for x in args.engines.split(",") if x]
    args.kinds = [x for x in args.kinds.split(",") if x]
    args.findings = [int(x) for x in args.findings.split(",") if x]
    args.batch_sizes = [int(x) for x in args.batch_sizes.split(",") if x]
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    reference = build_analyzer(gpu_shape=args.gpu_shape, device=args.device, batch_size=max(args.batch_sizes),
                               max_new_tokens=None, model_dir=args.model_dir, engine="reference")
    analyzers = engines_over(reference, args.engines)
    load_s = time.perf_counter() - started
    records = []
    for kind in args.kinds:
        for findings in args.findings:
            for batch in args.batch_sizes:
                frames = random_frames(batch, seed=batch)
                for name in args.engines:
                    record = measure(analyzers[name], reference, name, frames, kind, findings, args.iterations,
                                     args.warmup)
                    records.append(record)
                    print(f"{name:10s} {kind:5s} findings={findings} batch={batch}: "
                          f"{record['p50_ms_per_frame']:.1f} ms/frame, "
                          f"{record['forward_passes_per_answer']:.0f} passes/answer", flush=True)
    by_key = {(r["engine"], r["kind"], r["findings"], r["batch_size"]): r for r in records}
    rows = []
    for record in records:
        base = by_key.get(("reference", record["kind"], record["findings"], record["batch_size"]))
        record["speedup_vs_reference"] = (base["p50_ms_per_frame"] / record["p50_ms_per_frame"]) if base else None
        rows.append([record["engine"], record["kind"], record["findings"], record["batch_size"],
                     record["p50_ms_per_frame"], record["p95_ms_per_frame"], record["throughput_frames_per_s"],
                     record["forward_passes_per_answer"], record["decode_step_ms"], record["speedup_vs_reference"],
                     f"{record['valid_and_as_scripted']}/{record['results']}"])
    model = "MedGemma-4B shape, random weights, bf16" if args.gpu_shape else "demo model (tiny random Gemma 3)"
    print(f"\nlatency - {model} on {args.device}, scripted answers (colonoscopy)")
    table = print_table(
        ["engine", "kind", "findings", "batch", "P50 ms/frame", "P95 ms/frame", "frames/s", "passes/answer",
         "ms/step", "x vs reference", "valid"], rows)
    payload = {
        "model": model, "gpu_shape": args.gpu_shape, "device": args.device, "procedure_type": "colonoscopy",
        "model_build_or_load_s": load_s, "provenance": reference.provenance_base.as_dict(),
        "fast_engine": analyzers["fast"]._provenance("frame").generation_params if "fast" in analyzers else None,
        "machine": machine_info(), "rows": records, "table": table,
        "note": "per-frame latency = call wall time / frames in the call; every answer scripted (0/1/3 findings) "
                "through each engine's real grammar-forced path; ratios are within this run",
    }
    write_results(args.name or ("latency_gpu_shape" if args.gpu_shape else "latency"), payload, args.out)
    return payload


if __name__ == "__main__":
    main()
