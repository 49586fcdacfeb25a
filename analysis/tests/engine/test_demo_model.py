import json
import os

import pytest

from analysis.engine import demo_model
from analysis.engine.demo_model import (
    DEMO_MODEL_ID,
    MARKER_FILE,
    build_demo_model,
    ensure_demo_model,
    is_demo_model_dir,
)
from analysis.engine.revision import weights_sha256

REAL_CHECKPOINT_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
}


def test_the_demo_model_is_a_complete_small_checkpoint(demo_model_dir):
    names = {p.name for p in demo_model_dir.iterdir()}
    assert REAL_CHECKPOINT_FILES <= names
    assert "processor_config.json" in names or "preprocessor_config.json" in names
    assert is_demo_model_dir(demo_model_dir)
    marker = json.loads((demo_model_dir / MARKER_FILE).read_text())
    assert marker["model_id"] == DEMO_MODEL_ID and "NOT a medical model" in DEMO_MODEL_ID
    total = sum(p.stat().st_size for p in demo_model_dir.iterdir())
    assert total < 8 * 1024 * 1024


def test_it_loads_like_medgemma_with_the_auto_classes(demo_model_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(demo_model_dir, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(demo_model_dir, local_files_only=True)
    assert type(model).__name__ == "Gemma3ForConditionalGeneration"
    assert type(processor).__name__ == "Gemma3Processor"
    assert model.config.text_config.vocab_size == len(processor.tokenizer)
    assert model.config.mm_tokens_per_image == demo_model.MM_TOKENS_PER_IMAGE


def test_its_tokenizer_is_gemma_shaped(demo_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir)
    vocab = tokenizer.get_vocab()
    for token in demo_model.SPECIAL_TOKENS:
        assert token in vocab
    assert all(f"<0x{i:02X}>" in vocab for i in range(256))
    # Byte fallback: characters outside the learned vocabulary still round-trip.
    text = 'caf\u00e9 \u2713 {"risk":"high"}'
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert tokenizer.unk_token_id not in ids
    # The schema's words are in the vocabulary, so answers are short in tokens...
    assert tokenizer.tokenize("sigmoid_colon") == ["sigmoid", "_colon"]
    # ...but no token is longer than real vocabularies' (so no whole answer in one token).
    longest = max(len(t) for t in vocab if t not in demo_model.SPECIAL_TOKENS and not t.startswith("<0x"))
    assert longest <= demo_model.MAX_TOKEN_CHARS


def test_its_chat_template_renders_gemma_turns(demo_model_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(demo_model_dir)
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be careful."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]},
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == (
        "<bos><start_of_turn>user\nBe careful.\n\n<start_of_image>Describe.<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_building_is_deterministic(demo_model_dir, tmp_path):
    again = build_demo_model(tmp_path / "again")
    assert weights_sha256(again) == weights_sha256(demo_model_dir)
    assert (again / "tokenizer.json").read_text() == (demo_model_dir / "tokenizer.json").read_text()


def test_ensure_reuses_a_complete_build_and_repairs_an_incomplete_one(demo_model_dir, tmp_path, monkeypatch):
    assert ensure_demo_model(demo_model_dir) == demo_model_dir  # complete: untouched

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")  # no marker: an interrupted build
    calls = []
    original = demo_model._write_demo_model
    monkeypatch.setattr(demo_model, "_write_demo_model", lambda d: (calls.append(d), original(d)))
    ensure_demo_model(broken)
    assert calls and is_demo_model_dir(broken)
    ensure_demo_model(broken)
    assert len(calls) == 1
    # Atomic build: no temporary directories are left beside the target.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["broken"]


def test_a_failed_build_leaves_nothing_behind(tmp_path, monkeypatch):
    def explode(directory):
        (directory / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(demo_model, "_write_demo_model", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        build_demo_model(tmp_path / "model")
    assert os.listdir(tmp_path) == []


def test_concurrent_processes_build_it_once(tmp_path):
    """Celery workers starting together must not rebuild under each other's feet."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import analysis.engine.demo_model as d\n"
        "original, built = d._write_demo_model, []\n"
        "d._write_demo_model = lambda p: (built.append(p), original(p))\n"
        "d.ensure_demo_model(sys.argv[1])\n"
        "print(len(built))\n"
    )
    target = tmp_path / "shared"
    workers = [
        subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    builds = [int(worker.communicate(timeout=300)[0].strip()) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0]
    assert sorted(builds) == [0, 1]
    assert is_demo_model_dir(target)
