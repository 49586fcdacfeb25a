"""Structured-output validity: the share of answers that parse and validate.

    .venv/bin/python benchmarks/run_parsing_test.py            # 1000 answers
    .venv/bin/python benchmarks/run_parsing_test.py --n 200

The demo model (random weights) is *sampled* at temperature 1 with the xgrammar grammar,
across all procedure types, in batches: that is the most erratic generator we can run, so
if its answers always validate, the grammar - not the model's good behaviour - is what
guarantees validity. Goal: 100% (the reference system reported 94% without a grammar).

For contrast, a small sample is also generated with the grammar switched off. A
random-weight model cannot write JSON on its own, so expect ~0% there: the figure shows
what the grammar does, it is not a measurement of MedGemma's unconstrained behaviour.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.engine.schemas import PROCEDURE_TYPES, output_model
from benchmarks.support.bench_support import (
    build_analyzer,
    machine_info,
    print_table,
    random_frames,
    write_results,
)
from benchmarks.support.engine_variants import grammar_off, max_new_tokens


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="answers to generate with the grammar")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--raw-sample", type=int, default=40, help="answers without the grammar, for contrast (0: skip)"
    )
    parser.add_argument("--raw-max-new-tokens", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model-dir", default=None, help="demo model directory (built if missing)")
    parser.add_argument("--out", default=None, help="results directory (default: $OUT or benchmarks/results)")
    return parser.parse_args(argv)


def run(analyzer, total: int, batch_size: int, seed: int, recheck: bool):
    """Generate ``total`` answers round-robin over the procedure types. With ``recheck``,
    every valid answer's raw text must also be, by itself, a schema-valid JSON object."""
    counts: Counter = Counter()
    valid: Counter = Counter()
    rechecked = 0
    failures = []
    for index in range(math.ceil(total / batch_size)):
        procedure_type = PROCEDURE_TYPES[index % len(PROCEDURE_TYPES)]
        size = min(batch_size, total - index * batch_size)
        # Small frames: the processor resizes to 64 px anyway; this keeps decode-bound.
        frames = random_frames(size, seed=seed * 100_000 + index, height=96, width=128)
        for result in analyzer.analyze(frames, procedure_type):
            counts[procedure_type] += 1
            if result.ok:
                if recheck:
                    output_model(procedure_type).model_validate_json(result.raw_output)
                    rechecked += 1
                valid[procedure_type] += 1
            elif len(failures) < 5:
                failures.append(
                    {"procedure_type": procedure_type, "error": result.error, "raw": result.raw_output[:500]}
                )
    return counts, valid, rechecked, failures


def main(argv=None) -> dict:
    args = parse_args(argv)
    analyzer = build_analyzer(
        gpu_shape=False,
        device=args.device,
        batch_size=args.batch_size,
        max_new_tokens=None,
        model_dir=args.model_dir,
        do_sample=True,
        temperature=args.temperature,
        seed=args.seed,
        engine="reference",  # sampling is the reference path's (the fast engine is greedy)
    )
    started = time.perf_counter()
    counts, valid, rechecked, failures = run(analyzer, args.n, args.batch_size, args.seed, recheck=True)
    grammar_s = time.perf_counter() - started

    raw = None
    if args.raw_sample:
        with grammar_off(analyzer), max_new_tokens(analyzer, args.raw_max_new_tokens):
            started = time.perf_counter()
            raw_counts, raw_valid, _, raw_failures = run(
                analyzer, args.raw_sample, args.batch_size, args.seed + 1, recheck=False
            )
            raw = {
                "n": sum(raw_counts.values()),
                "valid": sum(raw_valid.values()),
                "max_new_tokens": args.raw_max_new_tokens,
                "wall_s": time.perf_counter() - started,
                "example": raw_failures[0] if raw_failures else None,
            }

    total, total_valid = sum(counts.values()), sum(valid.values())
    rows = [
        [p, counts[p], valid[p], 100.0 * valid[p] / counts[p] if counts[p] else math.nan] for p in PROCEDURE_TYPES
    ]
    rows.append(["all (grammar)", total, total_valid, 100.0 * total_valid / total if total else math.nan])
    if raw:
        rows.append(["no grammar (contrast)", raw["n"], raw["valid"], 100.0 * raw["valid"] / raw["n"]])
    print(
        f"\nstructured-output validity - demo model sampled at temperature {args.temperature}, "
        f"batch {args.batch_size}"
    )
    print_table(["procedure type", "answers", "valid", "valid %"], rows)
    print(f"{total} answers in {grammar_s:.1f} s ({total / grammar_s:.1f} answers/s)")
    payload = {
        "n": total,
        "valid": total_valid,
        "valid_pct": 100.0 * total_valid / total if total else None,
        "rechecked_valid": rechecked,
        "per_procedure": {p: {"n": counts[p], "valid": valid[p]} for p in PROCEDURE_TYPES},
        "temperature": args.temperature,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "grammar_wall_s": grammar_s,
        "failures": failures,
        "raw_without_grammar": raw,
        "provenance": analyzer.provenance_base.as_dict(),
        "machine": machine_info(),
        "reference_system_claimed_valid_pct": 94,
    }
    write_results("parsing", payload, args.out)
    return payload


if __name__ == "__main__":
    main()
