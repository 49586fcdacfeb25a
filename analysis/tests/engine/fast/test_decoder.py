"""The fast engine's decode loop against the reference path (transformers generate), on
the demo model in float32 on the CPU."""

import pytest
import torch
import xgrammar as xgr

from analysis.engine import PROCEDURE_TYPES, EngineConfig, get_analyzer, output_model
from analysis.engine.fast.decoder import Request
from analysis.engine.grammar import apply_bitmask
from analysis.engine.prompts import messages_for, prompt_parts

from ..conftest import make_frames
from .conftest import decode_rows, reference_token_ids


@pytest.mark.parametrize("kind", ["frame", "live"])
@pytest.mark.parametrize("procedure_type", PROCEDURE_TYPES)
@pytest.mark.parametrize("batch", [1, 3])
def test_without_jump_forward_it_writes_the_reference_tokens(fast_analyzer, reference_analyzer, procedure_type,
                                                             kind, batch):
    frames = make_frames(batch, seed=sum(map(ord, procedure_type + kind)))
    expected = reference_token_ids(reference_analyzer, frames, procedure_type, kind)
    rows = decode_rows(fast_analyzer, frames, procedure_type, kind)
    assert [row.output for row in rows] == expected
    fast = fast_analyzer.analyze(frames, procedure_type, kind)
    reference = reference_analyzer.analyze(frames, procedure_type, kind)
    assert [r.raw_output for r in fast] == [r.raw_output for r in reference]
    assert [r.ok for r in fast] == [r.ok for r in reference]
    assert all(r.provenance.generation_params["engine"].startswith("fast") for r in fast)


def test_clarify_writes_the_reference_answer(fast_analyzer, reference_analyzer):
    frame = make_frames(1, seed=5)[0]
    question = "Is the lesion larger than 5 mm?"
    expected = reference_token_ids(reference_analyzer, [frame], "upper_gi", "clarify", question)
    [row] = decode_rows(fast_analyzer, [frame], "upper_gi", "clarify", question)
    assert row.output == expected[0]
    fast = fast_analyzer.clarify(frame, "upper_gi", question)
    reference = reference_analyzer.clarify(frame, "upper_gi", question)
    assert fast.raw_output == reference.raw_output and fast.ok == reference.ok
    assert fast.provenance.prompt_version == "clarify-v2"


def _reference_logits(reference, frame, procedure_type, kind, output):
    """Logits of the reference model over the prompt + ``output`` in one pass."""
    from analysis.engine.images import to_pil_rgb

    image = to_pil_rgb(frame.image)
    text = reference.processor.apply_chat_template(messages_for(prompt_parts(procedure_type, kind), image),
                                                   add_generation_prompt=True, tokenize=False)
    inputs = reference.processor(text=[text], images=[[image]], return_tensors="pt", add_special_tokens=False)
    prompt_length = inputs["input_ids"].shape[1]
    extra = torch.tensor([output])
    inputs["input_ids"] = torch.cat([inputs["input_ids"], extra], dim=1)
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    inputs["token_type_ids"] = torch.cat([inputs["token_type_ids"], torch.zeros_like(extra)], dim=1)
    with torch.inference_mode():
        logits = reference.model(**inputs).logits[0].float()
    return logits, prompt_length


@pytest.mark.parametrize("kind", ["frame", "live"])
@pytest.mark.parametrize("procedure_type", PROCEDURE_TYPES)
def test_with_jump_forward_every_decision_is_the_masked_argmax(jump_analyzer, reference_analyzer, procedure_type,
                                                               kind):
    frames = make_frames(2, seed=len(procedure_type))
    rows = decode_rows(jump_analyzer, frames, procedure_type, kind)
    grammar = jump_analyzer.grammars.get(procedure_type, kind)
    for frame, row in zip(frames, rows, strict=True):
        assert row.failure is None
        text = jump_analyzer.decoder.text(row)
        output_model(procedure_type, kind).model_validate_json(text)
        assert len(row.decided) < len(row.output), "jump-forward inserted no token at all"
        assert row.forward_passes == row.decisions
        logits, prompt_length = _reference_logits(reference_analyzer, frame, procedure_type, kind, row.output)
        replay = grammar.row()
        bitmask = xgr.allocate_token_bitmask(1, grammar.masks.texts.vocab_size)
        decided = set(row.decided)
        for index, token in enumerate(row.output):
            if index in decided:
                xgr.reset_token_bitmask(bitmask)
                replay.fill(bitmask, 0)
                step_logits = logits[prompt_length - 1 + index].clone()[None]
                apply_bitmask(step_logits, bitmask)
                assert int(step_logits.argmax()) == token, f"decision {index} of {text!r}"
            assert replay.accept(token)


def test_jump_forward_answers_are_valid_and_need_fewer_passes(jump_analyzer, fast_analyzer):
    frames = make_frames(4, seed=21)
    for kind in ("frame", "live"):
        jumped = jump_analyzer.analyze(frames, "colonoscopy", kind)
        plain = fast_analyzer.analyze(frames, "colonoscopy", kind)
        assert all(r.ok for r in jumped), [r.error for r in jumped]
        passes = [r.provenance.generation_params["forward_passes"] for r in jumped]
        plain_passes = [r.provenance.generation_params["forward_passes"] for r in plain]
        assert sum(passes) < sum(plain_passes)


def test_a_row_admitted_mid_answer_writes_what_it_writes_alone(fast_analyzer):
    first, second = make_frames(2, seed=33)
    [alone_first] = decode_rows(fast_analyzer, [first], "other", "frame")
    [alone_second] = decode_rows(fast_analyzer, [second], "bronchoscopy", "live")
    decoder = fast_analyzer.decoder
    from analysis.engine.backends.fast_backend import frame_array

    finished = {}
    with fast_analyzer.reference._cpu_thread_limit():
        decoder.admit([Request(image=frame_array(first.image), procedure_type="other", kind="frame", tag="a")])
        for _ in range(5):
            for row in decoder.step():
                finished[row.request.tag] = row
        rows = decoder.admit([Request(image=frame_array(second.image), procedure_type="bronchoscopy", kind="live",
                                      tag="b")])
        finished.update({row.request.tag: row for row in rows if row.done})
        while decoder.rows:
            for row in decoder.step():
                finished[row.request.tag] = row
    assert finished["a"].output == alone_first.output
    assert finished["b"].output == alone_second.output


def test_a_mixed_batch_finishing_out_of_order_keeps_every_rows_cache(fast_analyzer, reference_analyzer):
    """Rows of different procedures and kinds in one batch finish at different steps; a
    finished row's slot is filled by the last row, whose cache moves with it."""
    from analysis.engine.backends.fast_backend import frame_array

    frames = make_frames(4, seed=8)
    jobs = [("colonoscopy", "frame"), ("upper_gi", "live"), ("other", "frame"), ("bronchoscopy", "live")]
    expected = [reference_token_ids(reference_analyzer, [frame], p, k)[0] for frame, (p, k) in zip(frames, jobs)]
    assert len({len(tokens) for tokens in expected}) > 1, "the rows should finish at different steps"
    decoder = fast_analyzer.decoder
    requests = [Request(image=frame_array(f.image), procedure_type=p, kind=k, tag=i)
                for i, (f, (p, k)) in enumerate(zip(frames, jobs))]
    finished = {}
    moves = []
    original_move = decoder.cache.move
    decoder.cache.move = lambda source, target: (moves.append((source, target)), original_move(source, target))
    try:
        with fast_analyzer.reference._cpu_thread_limit():
            finished.update({row.request.tag: row for row in decoder.admit(requests) if row.done})
            while decoder.rows:
                finished.update({row.request.tag: row for row in decoder.step()})
    finally:
        decoder.cache.move = original_move
    assert [finished[i].output for i in range(4)] == expected
    assert moves, "some row should have moved into a freed slot"


def test_an_answer_that_outgrows_the_context_is_finished_by_the_reference(demo_model_dir, reference_analyzer, caplog):
    frames = make_frames(2, seed=3)
    reference = reference_analyzer.analyze(frames, "colonoscopy")
    probe = get_analyzer(EngineConfig(backend="demo", model=str(demo_model_dir), engine="fast", jump_forward=False))
    prompt = len(probe.decoder.layouts.layout("colonoscopy", "frame").ids)
    small = get_analyzer(EngineConfig(backend="demo", model=str(demo_model_dir), engine="fast", jump_forward=False,
                                      context_tokens=prompt + 12))
    with caplog.at_level("INFO", logger="analysis.engine.backends.fast_backend"):
        results = small.analyze(frames, "colonoscopy")
    assert [r.raw_output for r in results] == [r.raw_output for r in reference]
    assert all("fallback" in r.provenance.generation_params["engine"] for r in results)
    assert "outgrew" in caplog.text
    assert small.fallbacks == 2


def test_a_prompt_longer_than_the_context_goes_to_the_reference(demo_model_dir, reference_analyzer):
    small = get_analyzer(EngineConfig(backend="demo", model=str(demo_model_dir), engine="fast", context_tokens=64))
    frames = make_frames(1, seed=4)
    [result] = small.analyze(frames, "other", "live")
    [expected] = reference_analyzer.analyze(frames, "other", "live")
    assert result.raw_output == expected.raw_output
    assert "prompt does not fit" in result.provenance.generation_params["engine"]


def test_a_cut_off_answer_fails_like_the_reference(demo_model_dir, frames):
    config = dict(backend="demo", model=str(demo_model_dir), max_new_tokens=8, jump_forward=False)
    [fast] = get_analyzer(EngineConfig(**config, engine="fast")).analyze(frames[:1], "colonoscopy")
    [reference] = get_analyzer(EngineConfig(**config, engine="reference")).analyze(frames[:1], "colonoscopy")
    assert fast.ok is False and fast.error == reference.error
    assert fast.raw_output == reference.raw_output


def test_the_step_traces_as_one_graph(fast_analyzer):
    """What CUDA graph capture needs, checked on the CPU: no host synchronisation and no
    data-dependent Python in a step (torch.compile with fullgraph fails on either)."""
    steps = fast_analyzer.decoder.steps
    compiled = torch.compile(steps.forward, fullgraph=True, backend="eager", dynamic=False)
    ids = torch.zeros((2, 3), dtype=torch.long)
    positions = torch.arange(3).repeat(2, 1) + 700
    last = torch.tensor([2, 0])
    with torch.inference_mode():
        expected = steps.forward(ids, positions, last)
        torch._dynamo.reset()
        traced = compiled(ids, positions, last)
    torch.testing.assert_close(traced, expected)
