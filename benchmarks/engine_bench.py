"""Measuring the analyzer engines side by side: shared by run_latency_test.py (any device,
demo model by default) and run_gpu_engine_test.py (the MedGemma-4B shape on a GPU).

One loaded model, three engines over it: ``reference`` (transformers generate),
``fast-nojf`` (the fast engine with jump-forward off: the reference's tokens) and ``fast``
(the default: jump-forward on). Answers are scripted (scripted_answers.py), so both engines
write the same realistic answers through their real grammar-forced paths.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripted_answers import ScriptChooser, script_fast, script_reference, scripted_answer  # noqa: E402

from benchmarks.support.bench_support import percentile  # noqa: E402
from benchmarks.support.engine_variants import fast_engine, max_new_tokens  # noqa: E402

ENGINES = ("reference", "fast-nojf", "fast")


def synchronize(device) -> None:
    import torch

    if getattr(device, "type", device) == "cuda":
        torch.cuda.synchronize()


def engines_over(reference, names=ENGINES, **fast_overrides) -> dict:
    """The analyzers to compare, all over ``reference``'s loaded model."""
    out = {}
    for name in names:
        if name == "reference":
            out[name] = reference
        elif name == "fast-nojf":
            out[name] = fast_engine(reference, jump_forward=False, **fast_overrides)
        elif name == "fast":
            out[name] = fast_engine(reference, jump_forward=True, **fast_overrides)
        else:
            raise ValueError(f"unknown engine {name!r}; use {', '.join(ENGINES)}")
        if name != "reference":
            out[name].warm_up()
    return out


def chooser_for(reference) -> ScriptChooser:
    texts = reference.grammars.token_texts.texts
    return ScriptChooser(texts, reference.stop_token_ids)


class StepTimer:
    """Wall time of every decoding step of a FastAnalyzer (one step = one forward pass)."""

    def __init__(self, analyzer):
        self.decoder = analyzer.decoder
        self.original = self.decoder.step
        self.times: list[float] = []
        self.decoder.step = self._step

    def _step(self):
        started = time.perf_counter()
        finished = self.original()  # ends with the chosen tokens read back: synchronised
        self.times.append(time.perf_counter() - started)
        return finished

    def restore(self):
        del self.decoder.step


def measure(analyzer, reference, name, frames, kind, findings, iterations, warmup, procedure_type="colonoscopy"):
    """Per-frame latency, throughput, forward passes per answer and ms per step for one
    engine on ``frames`` (one call = all frames together), every answer scripted."""
    chooser = chooser_for(reference)
    script = scripted_answer(kind, findings).encode()
    scripts = [script] * len(frames)
    device = reference.device
    model = reference.model
    untouched_generate = model.generate
    steps_seen: list[int] = []
    timer = None
    if name == "reference":
        script_reference(reference, chooser, scripts)
        scripted_generate = model.generate

        def counting(**kwargs):
            output = scripted_generate(**kwargs)
            steps_seen.append(int(output.shape[1] - kwargs["input_ids"].shape[1]))
            return output

        model.generate = counting
        undo = None
    else:
        undo = script_fast(analyzer, chooser, dict(enumerate(scripts)))
        timer = StepTimer(analyzer)
    try:
        for _ in range(warmup):
            analyzer.analyze(frames, procedure_type, kind)
        if timer:
            timer.times.clear()
        steps_seen.clear()
        per_frame_ms, call_s, passes, valid = [], [], [], 0
        for _ in range(iterations):
            synchronize(device)
            started = time.perf_counter()
            results = analyzer.analyze(frames, procedure_type, kind)
            synchronize(device)
            elapsed = time.perf_counter() - started
            call_s.append(elapsed)
            per_frame_ms.append(elapsed * 1000 / len(frames))
            valid += sum(r.ok and r.raw_output == script.decode() for r in results)
            if name == "reference":
                passes.append(steps_seen[-1])
            else:
                passes.extend(r.provenance.generation_params["forward_passes"] for r in results)
        if name == "reference":
            # Per step: the full call minus a call that generates one token (preprocessing,
            # prefill and grammar set-up), over the remaining steps.
            with max_new_tokens(reference, 1):
                analyzer.analyze(frames, procedure_type, kind)
                synchronize(device)
                started = time.perf_counter()
                analyzer.analyze(frames, procedure_type, kind)
                synchronize(device)
                one_token_s = time.perf_counter() - started
            step_ms = (statistics.mean(call_s) - one_token_s) * 1000 / max(statistics.mean(passes) - 1, 1)
        else:
            step_ms = statistics.median(timer.times) * 1000 if timer.times else None
    finally:
        model.generate = untouched_generate
        if undo:
            undo()
        if timer:
            timer.restore()
    return {
        "engine": name, "kind": kind, "findings": findings, "batch_size": len(frames), "iterations": iterations,
        "p50_ms_per_frame": percentile(per_frame_ms, 50), "p95_ms_per_frame": percentile(per_frame_ms, 95),
        "throughput_frames_per_s": len(frames) * iterations / sum(call_s),
        "forward_passes_per_answer": statistics.mean(passes), "decode_step_ms": step_ms,
        "answer_chars": len(script), "valid_and_as_scripted": valid, "results": len(frames) * iterations,
    }
