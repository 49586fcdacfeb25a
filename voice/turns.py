"""Turn-taking with the service and the barge-in bookkeeping, as plain state.

The service runs one response at a time: a response asked for while one is active is
remembered and asked for once that one is done. The methods that decide return the
service events to send (maybe none), and the relay sends them: so the rules can be tested
without a socket. The assistant audio relayed to the browser is counted per item, so
that a barge-in ("the clinician heard n ms of it") can be clamped to what was actually
sent and recorded on the right utterance.
"""

from __future__ import annotations

from collections import OrderedDict

from . import instructions
from .protocol import BYTES_PER_MS, ProtocolError

AUDIO_ITEMS_REMEMBERED = 32

CREATE = {"type": "response.create"}
CANCEL = {"type": "response.cancel"}
CLEAR_INPUT = {"type": "input_audio_buffer.clear"}
COMMIT_INPUT = {"type": "input_audio_buffer.commit"}


def mode_update(mode: str) -> dict:
    """Switch the service between its own voice detection and push-to-talk."""
    return {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"turn_detection": instructions.turn_detection(mode)}}},
    }


def truncate(item_id: str, end_ms: int) -> dict:
    return {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": end_ms}


def user_text(item_id: str, text: str) -> dict:
    return {
        "type": "conversation.item.create",
        "item": {"id": item_id, "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    }


class Turns:
    def __init__(self, mode: str = "vad"):
        self.mode = mode
        self.active_response = None  # the response the service is producing (its id, or True)
        self.response_wanted = False  # a response.create to send once the active one is done

    @property
    def responding(self) -> bool:
        return bool(self.active_response)

    def switch_mode(self, mode: str) -> bool:
        """Whether ``mode`` is a change (then it is the mode from now on)."""
        if mode == self.mode:
            return False
        self.mode = mode
        return True

    def interrupt(self) -> list[dict]:
        """The clinician takes the floor: stop the answer in progress, if there is one."""
        return [CANCEL] if self.active_response else []

    def ptt_stop(self) -> list[dict]:
        """Push-to-talk released: what was said is the question. (Checked here, not by the
        service: its error for a commit without push-to-talk would mean nothing to them.)"""
        if self.mode != "ptt":
            raise ProtocolError("bad_message", "ptt.stop without ptt.start.")
        return [COMMIT_INPUT]

    def request(self) -> list[dict]:
        """Ask for a response now, or, while one is active, as soon as it is done."""
        if self.active_response:
            self.response_wanted = True
            return []
        return [CREATE]

    def response_started(self, response_id) -> None:
        self.active_response = response_id or True

    def response_finished(self) -> None:
        self.active_response = None

    def take_wanted(self) -> list[dict]:
        """After a response without tool calls: the one asked for meanwhile, if any, is due
        now. (One with tool calls is followed up by ``after_tools`` instead, which needs to
        know whether one was asked for.)"""
        wanted, self.response_wanted = self.response_wanted, False
        return [CREATE] if wanted else []

    def after_tools(self, *, cancelled: bool) -> list[dict]:
        """Every tool call of a response has its output: ask for the spoken answer, unless
        the clinician interrupted that response and nothing asked for one since (their
        next turn sees the outputs anyway)."""
        if cancelled and not self.response_wanted:
            return []
        self.response_wanted = False
        return self.request()

    def upstream_lost(self) -> None:
        """A new upstream session has no response running and owes none."""
        self.active_response = None
        self.response_wanted = False


class Playback:
    """Assistant audio relayed to the browser: ms per item (the last AUDIO_ITEMS_REMEMBERED
    items), and how far the clinician heard the ones they talked over."""

    def __init__(self):
        self.current_item: str | None = None
        self.sent_ms: OrderedDict[str, float] = OrderedDict()
        self.interrupted: dict[str, int] = {}

    def relayed(self, item_id: str, n_bytes: int) -> bool:
        """Count ``n_bytes`` of ``item_id``'s audio; True when they begin a new run of audio
        (the browser is told ``audio.start`` first)."""
        starts = item_id != self.current_item
        self.current_item = item_id
        self.sent_ms[item_id] = self.sent_ms.get(item_id, 0.0) + n_bytes / BYTES_PER_MS
        self.sent_ms.move_to_end(item_id)
        while len(self.sent_ms) > AUDIO_ITEMS_REMEMBERED:
            self.sent_ms.popitem(last=False)
        return starts

    def truncate(self, item_id: str, end_ms: float) -> int:
        """The ms of ``item_id`` heard, clamped to what was sent: the service refuses an end
        beyond the audio it sent, and the browser cannot have played more."""
        if item_id not in self.sent_ms:
            raise ProtocolError("unknown_item", "playback.truncate names audio this connection did not play.")
        end_ms = int(min(end_ms, self.sent_ms[item_id]))
        self.interrupted[item_id] = end_ms
        return end_ms

    def interrupted_at(self, item_id: str) -> int | None:
        return self.interrupted.get(item_id)

    def upstream_lost(self) -> None:
        """The next audio, whatever its item, begins a new run."""
        self.current_item = None
