"""The model's function calls: run through ``voice.tools``, answered, shown and recorded.

Each call runs as its own task (``spawn``), so a slow one ("look again" waits for the GPU
worker) holds up neither the audio nor the other calls. Its output goes back only to the
upstream connection that asked: a reconnected session never saw the call, and an output
for an unknown call id would be an error there. The calls are grouped by response, so
that the relay asks for the spoken answer once all of a response's calls have outputs
(``take``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async

from . import tools

# A "look again" answer waits behind at most one frame batch on the GPU worker.
CLARIFY_TIMEOUT_S = 120.0


class ToolCalls:
    def __init__(
        self,
        *,
        ctx: tools.ToolContext,
        upstream,
        transcript,
        send_event: Callable[[dict], Awaitable[None]],
        spawn: Callable[..., asyncio.Task],
        known_findings: set[str],
    ):
        self.ctx = ctx
        self.upstream = upstream  # voice.upstream.Upstream (``conn``, ``send``)
        self.transcript = transcript  # voice.transcript.Transcript
        self.send_event = send_event
        self.spawn = spawn
        # Shared with the relay: findings it need not announce to the model as new.
        self.known_findings = known_findings
        self.by_response: dict[str, list[asyncio.Task]] = {}

    async def start(self, event: dict) -> None:
        """A ``response.function_call_arguments.done`` from the service."""
        name, call_id = event.get("name", ""), event.get("call_id", "")
        await self.send_event({"type": "tool", "name": name, "call_id": call_id, "status": "running"})
        task = self.spawn(self.run(self.upstream.conn, name, call_id, event.get("arguments")))
        self.by_response.setdefault(event.get("response_id") or "", []).append(task)

    def take(self, response_id) -> list[asyncio.Task]:
        """The calls a finished response made (forgotten here: the caller follows them up)."""
        return self.by_response.pop(response_id, []) if response_id else []

    async def run(self, conn, name: str, call_id: str, raw_arguments) -> dict:
        if name in tools.TOOL_NAMES:
            args, result = await tools.execute(self.ctx, name, raw_arguments)
        else:
            args, result = (
                {"raw": str(raw_arguments)[:2000]},
                {"ok": False, "error": f"There is no tool called {name!r}."},
            )
        if conn is not None and conn is self.upstream.conn:
            await self.upstream.send(
                {
                    "type": "conversation.item.create",
                    "item": {"type": "function_call_output", "call_id": call_id, "output": json.dumps(result)},
                }
            )
        summary = tools.result_summary(name, result)
        await self.send_event(
            {"type": "tool", "name": name, "call_id": call_id, "status": "done", "ok": bool(result.get("ok")),
             "summary": summary}
        )
        await self.transcript.record(
            "tool", text=summary, upstream_item_id=call_id, tool_name=name, tool_arguments=args, tool_result=result
        )
        finding_id = tools.changed_finding_id(name, result)
        if finding_id:
            self.known_findings.add(finding_id)
        return result


class GpuClarify:
    """"Look again" through the gpu queue: the GPU worker answers and replies to this
    consumer's channel (``clarify.result``, handed to ``resolve``), so the web process
    never loads a model. Used as ``ToolContext.clarify``."""

    def __init__(self, channel_name: str, *, timeout_s: float = CLARIFY_TIMEOUT_S):
        self.channel_name = channel_name
        self.timeout_s = timeout_s
        self.pending: dict[str, asyncio.Future] = {}

    async def __call__(self, frame, procedure_type: str, question: str) -> dict:
        from analysis.tasks import analyze_clarify

        request_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        try:
            await sync_to_async(analyze_clarify.delay, thread_sensitive=False)(
                str(frame.pk), procedure_type, question, self.channel_name, request_id
            )
            return await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            return {"ok": False, "error": "The image model did not answer in time; ask again in a moment."}
        finally:
            self.pending.pop(request_id, None)

    def resolve(self, message: dict) -> None:
        """A worker's reply; one for a question no longer waiting (timed out) is dropped."""
        future = self.pending.get(message.get("request_id"))
        if future is not None and not future.done():
            future.set_result(message["result"])
