"""The openai_compatible backend against a fake chat-completions server on 127.0.0.1."""

import base64
import io
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from analysis.engine import (
    PROMPT_VERSION,
    AnalyzerUnavailable,
    EngineConfig,
    get_analyzer,
    json_schema_for,
)
from analysis.engine.backends.openai_compatible import OpenAICompatibleAnalyzer
from analysis.engine.prompts import CLARIFY_PROMPT_VERSION

from .conftest import make_frames

GOOD = {
    "image_adequacy": "adequate",
    "no_finding": False,
    "findings": [
        {
            "category": "polyp",
            "location": "cecum",
            "risk": "low",
            "confidence": 0.4,
            "size_mm": None,
            "label": "Small polyp",
            "description": "Small pale polyp near the fold.",
            "suggested_next_step": "Review on the full video.",
        }
    ],
}
TEXT_SHAPE = "**Finding:** Small polyp\n**Location:** caecum\n**Risk Level:** Low\n**Suggested Next Step:** Review."


class FakeServer:
    """Answers /v1/chat/completions with whatever ``reply`` says; records requests."""

    def __init__(self):
        self.requests: list[dict] = []
        self.reply = {"content": json.dumps(GOOD)}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                reply = server.reply
                time.sleep(reply.get("sleep", 0))
                status = reply.get("status", 200)
                if status == 200:
                    payload = {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply["content"]},
                                "finish_reason": reply.get("finish_reason", "stop"),
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                else:
                    payload = {"error": {"message": reply.get("message", "failure"), "type": "error"}}
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        # A short poll interval keeps shutdown() (and so each test) fast.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    fake = FakeServer()
    yield fake
    fake.close()


@pytest.fixture
def analyzer(server):
    config = EngineConfig(
        backend="openai_compatible",
        openai_base_url=server.url,
        openai_model="google/medgemma-4b-it",
        openai_api_key="test-key",
        timeout_s=1.0,
        max_retries=0,
        batch_size=3,
    )
    analyzer = OpenAICompatibleAnalyzer(config)
    yield analyzer
    analyzer.close()


def test_a_good_json_answer_becomes_a_validated_result(server, analyzer):
    frames = make_frames(3)
    results = analyzer.analyze(frames, "colonoscopy")
    assert [r.frame_id for r in results] == [f.frame_id for f in frames]
    assert all(r.ok for r in results)
    assert results[0].analysis.findings[0].location == "cecum"
    assert results[0].raw_output == json.dumps(GOOD)
    provenance = results[0].provenance
    assert (provenance.backend, provenance.model_id, provenance.is_demo) == (
        "openai_compatible", "google/medgemma-4b-it", False,
    )
    assert provenance.prompt_version == PROMPT_VERSION
    assert provenance.generation_params["temperature"] == 0
    assert provenance.parsed_with == "json"
    assert len(server.requests) == 3


def test_the_request_carries_image_schema_and_greedy_settings(server, analyzer):
    frames = make_frames(1)
    analyzer.analyze(frames, "bronchoscopy")
    [request] = server.requests
    body = request["body"]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer test-key"
    assert body["model"] == "google/medgemma-4b-it"
    assert body["temperature"] == 0
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["response_format"]["json_schema"]["schema"] == json_schema_for("bronchoscopy")
    system, user = body["messages"]
    assert system["role"] == "system"
    # The local path's layout: the fixed instructions, then the image.
    text_part, image_part = user["content"]
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert image.format == "JPEG" and image.size == (160, 120)
    assert "bronchoscopy" in text_part["text"]


def test_live_frames_get_the_live_schema_and_prompt(server, analyzer):
    [result] = analyzer.analyze(make_frames(1), "colonoscopy", "live")
    [request] = server.requests
    body = request["body"]
    assert body["response_format"]["json_schema"]["schema"] == json_schema_for("colonoscopy", "live")
    assert "live frame" in body["messages"][1]["content"][0]["text"]
    assert result.provenance.prompt_version == "live-v1"


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"image_adequacy": "adequate", "findings": [', "could not be read"),
        (
            json.dumps({**GOOD, "findings": [{**GOOD["findings"][0], "location": "trachea"}]}),
            "does not fit the colonoscopy schema",
        ),
        ("", "empty"),
    ],
    ids=["invalid-json", "schema-violation", "empty"],
)
def test_unusable_answers_are_failed_results_with_the_raw_text(server, analyzer, content, expected):
    server.reply = {"content": content}
    [result] = analyzer.analyze(make_frames(1), "colonoscopy")
    assert result.ok is False and result.analysis is None
    assert expected in result.error
    assert result.raw_output == content


def test_a_text_shaped_answer_is_a_failed_result_with_its_raw_text_kept(server, analyzer):
    """Only JSON is read: a "Key: value" answer is not guessed into a finding."""
    server.reply = {"content": TEXT_SHAPE}
    [result] = analyzer.analyze(make_frames(1), "colonoscopy")
    assert not result.ok and result.analysis is None
    assert "not JSON" in result.error
    assert result.raw_output == TEXT_SHAPE


def test_json_wrapped_in_a_fence_by_a_grammarless_server_is_read(server, analyzer):
    server.reply = {"content": f"Here you are:\n```json\n{json.dumps(GOOD)}\n```"}
    [result] = analyzer.analyze(make_frames(1), "colonoscopy")
    assert result.ok, result.error
    assert result.provenance.parsed_with == "json_extracted"


def test_a_cut_off_answer_is_a_failed_result(server, analyzer):
    server.reply = {"content": json.dumps(GOOD)[:40], "finish_reason": "length"}
    [result] = analyzer.analyze(make_frames(1), "colonoscopy")
    assert not result.ok and "cut off" in result.error


def test_a_server_slower_than_the_timeout_gives_failed_results_quickly(server, analyzer):
    server.reply = {"content": json.dumps(GOOD), "sleep": 3}
    started = time.monotonic()
    results = analyzer.analyze(make_frames(2), "colonoscopy")
    assert time.monotonic() - started < 2.5
    for result in results:
        assert result.ok is False
        assert "did not answer within 1 s" in result.error


def test_clarify_uses_the_clarify_schema(server, analyzer):
    server.reply = {
        "content": json.dumps(
            {"answer": "Yes, at the fold.", "confidence": 0.5, "relevant_category": "polyp",
             "relevant_location": None, "image_adequacy": "adequate"}
        )
    }
    result = analyzer.clarify(make_frames(1)[0], "colonoscopy", "Is there a polyp?")
    assert result.ok, result.error
    assert result.answer.relevant_category == "polyp"
    assert result.provenance.prompt_version == CLARIFY_PROMPT_VERSION
    schema = server.requests[0]["body"]["response_format"]["json_schema"]["schema"]
    assert schema == json_schema_for("colonoscopy", "clarify")


@pytest.mark.parametrize("status", [401, 404, 500])
def test_server_level_failures_raise_analyzer_unavailable(server, analyzer, status):
    server.reply = {"status": status, "message": "nope"}
    with pytest.raises(AnalyzerUnavailable, match=server.url):
        analyzer.analyze(make_frames(2), "colonoscopy")


def test_a_bad_request_fails_only_that_frame(server, analyzer):
    server.reply = {"status": 400, "message": "image too large"}
    [result] = analyzer.analyze(make_frames(1), "colonoscopy")
    assert not result.ok and "image too large" in result.error


def test_an_unreachable_server_raises_analyzer_unavailable():
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = EngineConfig(
        backend="openai_compatible", openai_base_url=f"http://127.0.0.1:{port}/v1",
        openai_model="m", timeout_s=1.0, max_retries=0,
    )
    analyzer = get_analyzer(config)
    with pytest.raises(AnalyzerUnavailable, match="Cannot reach"):
        analyzer.analyze(make_frames(1), "other")


def test_the_config_insists_on_url_and_model():
    with pytest.raises(ValueError, match="openai_base_url"):
        EngineConfig(backend="openai_compatible")
