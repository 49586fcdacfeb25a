"""Remote inference on an OpenAI-compatible chat-completions server (e.g. vLLM serving
MedGemma).

A batch is sent as concurrent requests, one per frame, from a thread pool of
``batch_size`` threads: such servers batch concurrent requests themselves, and one slow
frame does not hold up the others' connections.

Failure policy, chosen so that the Celery task can tell "this frame" from "this server":

* the server answered, but not with a usable answer (invalid JSON, schema violation,
  cut off, 400 for this request) -> that frame's result has ``ok=False`` and the raw text;
* the request timed out (after ``max_retries`` retries) -> that frame's result has
  ``ok=False`` with a timeout error; the other frames keep their results;
* the server cannot be reached, refuses our key, does not know the model, or keeps failing
  with 5xx/429 after retries -> ``AnalyzerUnavailable`` for the whole call, so the task can
  retry later instead of recording a batch of failures.

The ``response_format`` schema is ``schemas.json_schema_for``, whose frame schema has an
``anyOf`` at the root (the no-finding / with-findings split). vLLM's guided decoding
(xgrammar, guidance) accepts that; OpenAI's own hosted strict mode would not, and is not a
target (MedGemma is not served there).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..config import EngineConfig
from ..errors import AnalyzerUnavailable
from ..images import to_jpeg_data_url
from ..prompts import (
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    PromptParts,
    prompt_parts,
    prompt_version_for,
    sanitize_question,
)
from ..schemas import json_schema_for, max_new_tokens_for
from ..types import AnalysisResult, ClarifyResult, FrameInput, Provenance
from .common import (
    check_analyze_arguments,
    check_frames,
    check_procedure_type,
    clarify_result,
    frame_result,
    per_frame_latency_ms,
    provenance,
)


class OpenAICompatibleAnalyzer:
    def __init__(self, config: EngineConfig):
        from openai import OpenAI

        self.config = config
        self.base_url = config.openai_base_url or ""
        # Local servers (vLLM) accept any key; the client library insists on one.
        self.client = OpenAI(
            base_url=self.base_url,
            api_key=config.openai_api_key or "EMPTY",
            timeout=config.timeout_s,
            max_retries=config.max_retries,
        )
        self._base = Provenance(
            backend="openai_compatible",
            model_id=config.openai_model or "",
            model_revision=config.revision or "unpinned (remote server)",
            prompt_version=PROMPT_VERSION,
            generation_params=self._generation_params("frame"),
            latency_ms=0,
            is_demo=False,
        )

    def _generation_params(self, kind: str) -> dict[str, Any]:
        return {
            "temperature": 0,
            "max_tokens": self._max_tokens(kind),
            "response_format": "json_schema (strict)",
            "base_url": self.base_url,
            "timeout_s": self.config.timeout_s,
            "max_retries": self.config.max_retries,
            "concurrency": self.config.batch_size,
        }

    def _max_tokens(self, kind: str) -> int:
        return self.config.max_new_tokens or max_new_tokens_for(kind)

    @property
    def provenance_base(self) -> Provenance:
        return self._base

    # ---------------------------------------------------------------- interface

    @property
    def engine_name(self) -> str:
        return "remote"

    def warm_up(self) -> dict[str, Any]:
        return {}

    def analyze(self, frames: list[FrameInput], procedure_type: str, kind: str = "frame") -> list[AnalysisResult]:
        check_analyze_arguments(frames, procedure_type, kind)
        if not frames:
            return []
        prompt = prompt_parts(procedure_type, kind)
        started = time.perf_counter()
        workers = max(1, min(self.config.batch_size, len(frames)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medvision-openai") as pool:
            futures = [pool.submit(self._request, frame, prompt, procedure_type, kind) for frame in frames]
            # Collect every outcome before raising, so no request is left running unseen.
            outcomes = []
            for future in futures:
                try:
                    outcomes.append(future.result())
                except AnalyzerUnavailable as error:
                    outcomes.append(error)
        for outcome in outcomes:
            if isinstance(outcome, AnalyzerUnavailable):
                raise outcome
        latency_ms = per_frame_latency_ms(started, len(frames))
        base = provenance(self._base, prompt_version=prompt_version_for(kind),
                          generation_params=self._generation_params(kind))
        return [
            frame_result(frame, raw, base, latency_ms, procedure_type, failure, kind)
            for frame, (raw, failure) in zip(frames, outcomes, strict=True)
        ]

    def clarify(self, frame: FrameInput, procedure_type: str, question: str) -> ClarifyResult:
        check_procedure_type(procedure_type)
        check_frames([frame])
        question = sanitize_question(question)
        started = time.perf_counter()
        parts = prompt_parts(procedure_type, "clarify", question)
        raw, failure = self._request(frame, parts, procedure_type, "clarify")
        base = provenance(
            self._base,
            prompt_version=prompt_version_for("clarify"),
            generation_params=self._generation_params("clarify"),
        )
        return clarify_result(
            frame, question, raw, base, per_frame_latency_ms(started, 1), procedure_type, failure
        )

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ request

    def _request(self, frame: FrameInput, prompt: PromptParts, procedure_type: str,
                 kind: str) -> tuple[str, str | None]:
        """(raw text, failure sentence or None). Raises AnalyzerUnavailable for
        server-level problems (see the module docstring)."""
        import openai

        server = self.base_url
        # The same layout as the local path: instructions, the image, what varies.
        content: list[dict[str, Any]] = [
            {"type": "text", "text": prompt.before_image},
            {"type": "image_url", "image_url": {"url": to_jpeg_data_url(frame.image)}},
        ]
        if prompt.after_image:
            content.append({"type": "text", "text": prompt.after_image})
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]
        response_format = {
            "type": "json_schema",
            "json_schema": {
                "name": f"medvision_{procedure_type}_{kind}",
                "schema": json_schema_for(procedure_type, kind),
                "strict": True,
            },
        }
        try:
            response = self.client.chat.completions.create(
                model=self.config.openai_model or "",
                messages=messages,
                response_format=response_format,
                temperature=0,
                max_tokens=self._max_tokens(kind),
            )
        except openai.APITimeoutError:
            return "", (
                f"The model server at {server} did not answer within {self.config.timeout_s:g} s "
                f"({self.config.max_retries + 1} attempts); the frame was not analysed - retry it "
                "later or raise the timeout."
            )
        except openai.APIConnectionError as error:
            raise AnalyzerUnavailable(
                f"Cannot reach the model server at {server} ({error}); check that it is running "
                "and that the base URL is right."
            ) from error
        except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
            raise AnalyzerUnavailable(
                f"The model server at {server} refused our API key ({error.status_code}); check the API key setting."
            ) from error
        except openai.NotFoundError as error:
            raise AnalyzerUnavailable(
                f"The model server at {server} does not serve {self.config.openai_model!r} (404); "
                "check the model name setting."
            ) from error
        except (openai.RateLimitError, openai.InternalServerError) as error:
            raise AnalyzerUnavailable(
                f"The model server at {server} kept failing ({error.status_code}) after "
                f"{self.config.max_retries} retries; retry later."
            ) from error
        except openai.APIStatusError as error:
            return "", (
                f"The model server at {server} rejected the request ({error.status_code}: "
                f"{_short(error.message)}); the frame was not analysed."
            )

        choice = response.choices[0] if response.choices else None
        raw = (choice.message.content or "") if choice is not None else ""
        if choice is not None and choice.finish_reason == "length":
            return raw, (
                f"The answer was cut off at max_tokens={self._max_tokens(kind)} before it was complete; "
                f"raise max_new_tokens to at least {max_new_tokens_for(kind)}."
            )
        return raw, None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
