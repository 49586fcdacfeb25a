"""The panel's browser code, run under Node with minimal Web Audio fakes
(voice/tests/js/harness.mjs): resampling to 24 kHz PCM16 and the played-ms bookkeeping
that barge-in truncation relies on. Skipped where Node is not installed."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")


@pytest.fixture(scope="module")
def observed():
    if NODE is None:
        pytest.skip("Node.js is not installed; the browser code is not exercised here.")
    run = subprocess.run(
        [NODE, str(ROOT / "voice/tests/js/harness.mjs"), str(ROOT)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("source, freq", [("from48k", 1000), ("from44k", 440)])
def test_the_worklet_resamples_the_microphone_to_24khz_pcm16(observed, source, freq):
    capture = observed[source]
    assert observed["registered"] == "pcm16-capture"
    assert capture["samples"] == 24000  # 1 s in, 1 s out
    assert capture["full_chunks"] == 10 and capture["chunk_samples"] == 2400  # 100 ms chunks
    assert capture["last_type"] == "flushed"
    assert abs(capture["freq"] - freq) < 2
    assert 0.45 * 32767 < capture["peak"] < 0.55 * 32767  # amplitude 0.5 kept (stereo mixed to mono)


def test_the_worklet_filters_what_would_alias(observed):
    assert observed["alias48k"]["peak"] < 0.15 * observed["from48k"]["peak"]


def test_the_player_counts_the_ms_actually_heard_and_stops_at_once(observed):
    assert observed["starts"] == [30, 130, 230]  # gapless after a 30 ms lead
    assert observed["played_at_180"] == 150
    assert observed["playing"] is True
    assert observed["cut"] == {"itemId": "item_a", "playedMs": 150}
    assert observed["stopped"] is True and observed["playing_after_stop"] is False
