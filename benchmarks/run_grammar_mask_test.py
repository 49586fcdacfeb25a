"""Grammar mask fills with a Gemma-3-sized vocabulary: xgrammar's JSON-Schema path (what the
analyzer compiled until 2026-12-01) against the answer grammar + length masks (now).

    .venv/bin/python benchmarks/run_grammar_mask_test.py [--skip-old-bounds]

The vocabulary is synthetic (262,144 tokens, analysis/tests/engine/synthetic_vocab.py: no
model's vocabulary is used). Each answer is fed one character at a time (every position a
decoding step can stop at) and as longest-match multi-character tokens; every mask fill is
timed (thread CPU time, best of two). Cases, side by side in one run:

* ``json-schema, 2026-12-01 bounds``: compile_json_schema of the schema with the old bounds
  (description 200, clarify answer 400), lengths carried by regex patterns;
* ``json-schema, today's bounds``: the same path with today's bounds (<= 128);
* ``answer grammar + length masks``: what the engine does now (answer_grammar.py,
  constraint.py).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import xgrammar as xgr  # noqa: E402

from analysis.engine.answer_grammar import answer_grammar  # noqa: E402
from analysis.engine.constraint import RowConstraint, TokenTexts  # noqa: E402
from analysis.engine.schemas import DESCRIPTION_MAX_CHARS, json_schema_for  # noqa: E402
from analysis.tests.engine.synthetic_vocab import (  # noqa: E402
    MODEL_VOCAB,
    character_tokens,
    greedy_tokens,
    long_answer,
    synthetic_tokenizer_info,
)
from benchmarks.support.bench_support import machine_info, print_table, write_results  # noqa: E402

ONE_FINDING = json.dumps({
    "image_adequacy": "adequate", "no_finding": False,
    "findings": [{"category": "polyp", "location": "sigmoid_colon", "risk": "medium", "confidence": 0.82,
                  "size_mm": 6, "label": "Sessile polyp with a smooth surface",
                  "description": "Sessile polyp of about 6 mm on a fold of the sigmoid colon, smooth surface, regular "
                                 "pit pattern, no ulceration.",
                  "suggested_next_step": "Consider polypectomy; send the specimen for histology."}],
}, separators=(",", ":"))
OLD_BOUNDS = {"description": 200, "answer": 400}


def old_schema(procedure_type: str, kind: str, bounds: dict[str, int]) -> str:
    """The JSON Schema as the old grammar code handed it to xgrammar (lengths dropped,
    patterns kept), with ``bounds`` overriding text bounds."""
    schema = json_schema_for(procedure_type, kind)

    def walk(node):
        if isinstance(node, dict):
            for name, prop in node.get("properties", {}).items():
                if isinstance(prop, dict) and "pattern" in prop and name in bounds:
                    prop["pattern"] = re.sub(r"\{1,\d+\}\$$", "{1,%d}$" % bounds[name], prop["pattern"])
            if "pattern" in node:
                node.pop("minLength", None)
                node.pop("maxLength", None)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return json.dumps(schema)


def replay(matcher_fill, accept, tokens):
    bitmask = xgr.allocate_token_bitmask(1, MODEL_VOCAB)
    times = []
    for token in tokens:
        best = float("inf")
        for _ in range(2):
            started = time.thread_time_ns()
            matcher_fill(bitmask)
            best = min(best, (time.thread_time_ns() - started) / 1e6)
        times.append(best)
        if not accept(token):
            raise SystemExit("the answer is not valid for this grammar")
    return sorted(times)


def summary(times):
    return {"fills": len(times), "p50_ms": statistics.median(times), "p99_ms": times[min(len(times) - 1,
            int(len(times) * 0.99))], "max_ms": times[-1], "total_ms": sum(times)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-old-bounds", action="store_true", help="skip the slowest case (about a minute)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    info = synthetic_tokenizer_info()
    compiler = xgr.GrammarCompiler(info, max_threads=2, cache_enabled=False)
    texts = TokenTexts(info)
    answers = {"one finding (colonoscopy frame)": ONE_FINDING,
               "three findings, every text at its bound": long_answer("colonoscopy", "frame")}
    records = []
    cases = [] if args.skip_old_bounds else [("json-schema, 2026-12-01 bounds", OLD_BOUNDS)]
    cases.append(("json-schema, today's bounds", {}))
    for name, bounds in cases:
        started = time.perf_counter()
        compiled = compiler.compile_json_schema(old_schema("colonoscopy", "frame", bounds), any_whitespace=False,
                                                separators=(",", ":"), strict_mode=True)
        compile_s = time.perf_counter() - started
        for feed in (character_tokens, greedy_tokens):
            matcher = xgr.GrammarMatcher(compiled)
            times = replay(lambda b, m=matcher: m.fill_next_token_bitmask(b, 0), matcher.accept_token,
                           feed(ONE_FINDING))
            records.append({"grammar": name, "answer": "one finding (colonoscopy frame)", "feed": feed.__name__,
                            "compile_s": compile_s, **summary(times)})
            print(records[-1], flush=True)
    grammar = answer_grammar("colonoscopy", "frame")
    started = time.perf_counter()
    compiled = compiler.compile_grammar(grammar.ebnf)
    masks = texts.masks(grammar.shortest_text_limit, max(grammar.text_limits.values()))
    compile_s = time.perf_counter() - started
    for answer_name, answer in answers.items():
        for feed in (character_tokens, greedy_tokens):
            row = RowConstraint(compiled, grammar.text_limits, masks)
            times = replay(lambda b, r=row: r.fill(b, 0), row.accept, feed(answer))
            records.append({"grammar": "answer grammar + length masks", "answer": answer_name, "feed": feed.__name__,
                            "compile_s": compile_s, **summary(times)})
            print(records[-1], flush=True)
    rows = [[r["grammar"], r["answer"], r["feed"], r["fills"], r["compile_s"], r["p50_ms"], r["p99_ms"], r["max_ms"],
             r["total_ms"]] for r in records]
    print(f"\ngrammar mask fills, synthetic 262,144-token vocabulary (description bound now {DESCRIPTION_MAX_CHARS})")
    table = print_table(["grammar", "answer", "feed", "fills", "compile s", "P50 ms", "P99 ms", "max ms", "total ms"],
                        rows)
    write_results("grammar_masks", {"machine": machine_info(), "rows": records, "table": table}, args.out)


if __name__ == "__main__":
    main()
