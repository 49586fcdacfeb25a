"""Peak memory of the analyzer by batch size: resident memory on CPU, allocated CUDA
memory (``torch.cuda.max_memory_allocated``) on a GPU.

    .venv/bin/python benchmarks/run_memory_test.py                 # demo model, CPU
    python benchmarks/run_memory_test.py --gpu-shape --device cuda   # MedGemma-4B shape

Each batch size runs once unmeasured, then the peak counter is reset and one measured
``analyze`` call runs. CPU peaks come from the kernel's high-water mark (VmHWM), reset
between runs through /proc/self/clear_refs; where that reset is refused, the peak is
since process start and the table says so.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.support.bench_support import (
    build_analyzer,
    machine_info,
    print_table,
    random_frames,
    write_results,
)

MIB = 1024 * 1024


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--gpu-shape", action="store_true", help="random-weight model with MedGemma-4B's architecture (bf16)"
    )
    parser.add_argument("--device", default=None, help="cpu | cuda | auto (default: cpu, or cuda with --gpu-shape)")
    parser.add_argument("--batch-sizes", default="1,4,8")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="cap per answer (default: the schema bound; 64 with --gpu-shape)",
    )
    parser.add_argument("--procedure-type", default="colonoscopy")
    parser.add_argument("--model-dir", default=None, help="demo model directory (built if missing)")
    parser.add_argument("--out", default=None, help="results directory (default: $OUT or benchmarks/results)")
    parser.add_argument("--name", default=None, help="results file name (default: memory or memory_gpu_shape)")
    args = parser.parse_args(argv)
    args.device = args.device or ("cuda" if args.gpu_shape else "cpu")
    if args.gpu_shape and args.max_new_tokens is None:
        args.max_new_tokens = 64
    args.batch_sizes = [int(x) for x in args.batch_sizes.split(",") if x]
    return args


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_rss_peak() -> bool:
    """Reset the kernel's peak-RSS counter for this process (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def main(argv=None) -> dict:
    import torch

    args = parse_args(argv)
    on_cuda = args.device != "cpu" and torch.cuda.is_available()
    rss_before_mib = _status_kib("VmRSS") / 1024
    analyzer = build_analyzer(
        gpu_shape=args.gpu_shape,
        device=args.device,
        batch_size=max(args.batch_sizes),
        max_new_tokens=args.max_new_tokens,
        model_dir=args.model_dir,
    )
    if on_cuda:
        torch.cuda.synchronize()
    loaded = {
        "rss_mib": _status_kib("VmRSS") / 1024,
        "rss_before_load_mib": rss_before_mib,
        "cuda_allocated_mib": torch.cuda.memory_allocated() / MIB if on_cuda else None,
    }
    rows, records = [], []
    peak_resettable = True
    for batch_size in args.batch_sizes:
        frames = random_frames(batch_size, seed=batch_size)
        analyzer.analyze(frames, args.procedure_type)  # warm: allocator caches, grammar compile
        if on_cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        peak_resettable = reset_rss_peak() and peak_resettable
        started = time.perf_counter()
        results = analyzer.analyze(frames, args.procedure_type)
        if on_cuda:
            torch.cuda.synchronize()
        record = {
            "batch_size": batch_size,
            "call_s": time.perf_counter() - started,
            "peak_rss_mib": _status_kib("VmHWM") / 1024,
            "peak_cuda_allocated_mib": torch.cuda.max_memory_allocated() / MIB if on_cuda else None,
            "peak_cuda_reserved_mib": torch.cuda.max_memory_reserved() / MIB if on_cuda else None,
            "valid_results": sum(r.ok for r in results),
        }
        if on_cuda:
            record["cuda_over_weights_mib"] = record["peak_cuda_allocated_mib"] - loaded["cuda_allocated_mib"]
            record["cuda_over_weights_mib_per_frame"] = record["cuda_over_weights_mib"] / batch_size
        else:
            record["rss_over_loaded_mib"] = record["peak_rss_mib"] - loaded["rss_mib"]
        records.append(record)
        rows.append(
            [
                batch_size,
                record["peak_rss_mib"],
                record.get("rss_over_loaded_mib"),
                record["peak_cuda_allocated_mib"],
                record.get("cuda_over_weights_mib"),
                record["peak_cuda_reserved_mib"],
            ]
        )
    model = "MedGemma-4B shape, random weights, bf16" if args.gpu_shape else "demo model (tiny random Gemma 3)"
    print(f"\nmemory - {model} on {args.device}, max_new_tokens={analyzer.config.max_new_tokens or 'schema bound'}")
    print(
        f"after load: RSS {loaded['rss_mib']:.0f} MiB (before load {rss_before_mib:.0f} MiB)"
        + (f", CUDA allocated {loaded['cuda_allocated_mib']:.0f} MiB" if on_cuda else "")
    )
    if not peak_resettable:
        print("note: the peak-RSS counter could not be reset; RSS peaks are since process start")
    print_table(
        [
            "batch",
            "peak RSS MiB",
            "RSS over loaded",
            "peak CUDA alloc MiB",
            "CUDA over weights",
            "peak CUDA reserved MiB",
        ],
        rows,
    )
    payload = {
        "model": model,
        "gpu_shape": args.gpu_shape,
        "device": args.device,
        "procedure_type": args.procedure_type,
        "max_new_tokens": analyzer.config.max_new_tokens,
        "rss_peak_reset_per_batch": peak_resettable,
        "after_load": loaded,
        "provenance": analyzer.provenance_base.as_dict(),
        "machine": machine_info(),
        "rows": records,
    }
    name = args.name or ("memory_gpu_shape" if args.gpu_shape else "memory")
    write_results(name, payload, args.out)
    return payload


if __name__ == "__main__":
    main()
