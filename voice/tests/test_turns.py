"""Turn-taking and barge-in bookkeeping, without a socket."""

from __future__ import annotations

import pytest

from voice import turns
from voice.protocol import BYTES_PER_MS, ProtocolError
from voice.turns import CANCEL, CLEAR_INPUT, COMMIT_INPUT, CREATE, Playback, Turns


def test_a_response_is_asked_for_at_once_when_none_is_active():
    t = Turns()
    assert t.request() == [CREATE]
    assert t.response_wanted is False


def test_one_asked_for_during_another_waits_for_it_to_finish():
    t = Turns()
    t.response_started("resp_1")
    assert t.responding and t.request() == [] and t.response_wanted
    t.response_finished()
    assert not t.responding
    assert t.take_wanted() == [CREATE]
    assert t.take_wanted() == []  # asked once, not twice


def test_a_response_without_an_id_still_counts_as_active():
    t = Turns()
    t.response_started(None)
    assert t.responding and t.interrupt() == [CANCEL]


def test_interrupting_cancels_only_an_answer_in_progress():
    t = Turns()
    assert t.interrupt() == []
    t.response_started("resp_1")
    assert t.interrupt() == [CANCEL]


def test_push_to_talk_release_commits_only_in_push_to_talk_mode():
    t = Turns()
    with pytest.raises(ProtocolError) as caught:
        t.ptt_stop()
    assert caught.value.code == "bad_message"
    assert t.switch_mode("ptt") is True
    assert t.ptt_stop() == [COMMIT_INPUT]


def test_switching_to_the_current_mode_is_no_change():
    t = Turns()
    assert t.switch_mode("vad") is False
    assert t.switch_mode("ptt") is True and t.mode == "ptt"
    assert t.switch_mode("ptt") is False


@pytest.mark.parametrize(
    "cancelled, wanted, active, expected",
    [
        (False, False, False, [CREATE]),  # tool outputs are in: the spoken answer
        (True, False, False, []),  # the clinician interrupted: their next turn sees the outputs
        (True, True, False, [CREATE]),  # ... but asked for an answer meanwhile
        (False, False, True, []),  # another response runs (server VAD): asked for after it
    ],
)
def test_after_a_responses_tool_calls(cancelled, wanted, active, expected):
    t = Turns()
    t.response_wanted = wanted
    if active:
        t.response_started("resp_2")
    assert t.after_tools(cancelled=cancelled) == expected
    assert t.response_wanted is active


def test_a_lost_upstream_session_owes_no_response():
    t = Turns(mode="ptt")
    t.response_started("resp_1")
    t.request()
    t.upstream_lost()
    assert not t.responding and t.response_wanted is False and t.mode == "ptt"  # the mode is the clinician's


def test_the_service_events_turn_taking_sends():
    assert turns.mode_update("ptt")["session"]["audio"]["input"]["turn_detection"] is None
    assert turns.mode_update("vad")["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert turns.truncate("item_1", 640) == {
        "type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0, "audio_end_ms": 640}
    assert turns.user_text("mv_1", "Hi")["item"] == {
        "id": "mv_1", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
    assert CLEAR_INPUT == {"type": "input_audio_buffer.clear"}


def test_playback_announces_each_new_run_of_audio():
    p = Playback()
    assert p.relayed("a", 4800) is True
    assert p.relayed("a", 4800) is False
    assert p.relayed("b", 0) is True  # an empty delta still starts b's run
    assert p.relayed("a", 4800) is True  # back to a: a new run
    p.upstream_lost()
    assert p.relayed("a", 4800) is True  # after a reconnect the next audio starts a run
    assert p.sent_ms["a"] == 4 * 4800 / BYTES_PER_MS


def test_a_barge_in_is_clamped_to_the_audio_sent_and_remembered():
    p = Playback()
    p.relayed("a", 2000 * BYTES_PER_MS)
    assert p.truncate("a", 640.7) == 640
    assert p.truncate("a", 99999) == 2000
    assert p.interrupted_at("a") == 2000 and p.interrupted_at("b") is None
    with pytest.raises(ProtocolError) as caught:
        p.truncate("never_played", 10)
    assert caught.value.code == "unknown_item"


def test_playback_remembers_only_the_latest_items():
    p = Playback()
    for i in range(turns.AUDIO_ITEMS_REMEMBERED + 3):
        p.relayed(f"item_{i}", BYTES_PER_MS)
    assert len(p.sent_ms) == turns.AUDIO_ITEMS_REMEMBERED
    assert "item_0" not in p.sent_ms and f"item_{turns.AUDIO_ITEMS_REMEMBERED + 2}" in p.sent_ms
    p.relayed("item_3", BYTES_PER_MS)  # relayed again: the most recent now, kept longest
    p.relayed("item_new", BYTES_PER_MS)
    assert "item_3" in p.sent_ms and "item_4" not in p.sent_ms
