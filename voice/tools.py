"""The function tools the voice assistant may call, and their execution.

Scope: every tool works on the session of the socket (the id in the URL, which the
consumer authorized for this user before accepting). Model arguments never choose the
session, and a finding id from another session is simply "not found here". The session is
re-resolved through ``procedures.access`` on every call, so a revoked permission applies
at once. Writes go through the same services as the pages (``finding_review``,
``session_update``) with the clinician as actor, so they are audited under their name and
refused on a signed session.

Results are small JSON objects: ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``
with an error sentence the assistant can read out.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.db.models import Count

from analysis.clarify import frame_clarify, mmss
from analysis.engine.schemas import RISK_LEVELS
from analysis.models import ReviewStatus
from analysis.serializers import finding_event
from medvision import safe_json
from medvision.audit import log_access
from procedures import access

from .db import run_in_db

logger = logging.getLogger(__name__)

# The analysis app's own vocabularies, so a risk or status added there is one the model
# may filter by (lists: they go into the tools' JSON schema as enums).
RISKS = list(RISK_LEVELS)
STATUSES = list(ReviewStatus.values)
LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 20, 50
NOTE_MAX_CHARS = 1000
QUESTION_MAX_CHARS = 500

_FINDING_REF = {
    "finding_id": {"type": "string", "description": "The finding's id, as given by list_findings."},
    "index": {
        "type": "integer",
        "minimum": 1,
        "description": "The finding's number in the session's timeline (1 = earliest), as given by list_findings.",
    },
}


def _tool(name: str, description: str, properties: dict, required: list[str] | None = None) -> dict:
    return {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": required or [],
            "additionalProperties": False,
        },
    }


TOOL_DEFINITIONS = [
    _tool(
        "list_findings",
        "List this session's findings in time order, optionally filtered. Each has an index "
        "(its number in the session's timeline) and an id to refer to it later.",
        {
            "risk": {"type": "string", "enum": RISKS},
            "status": {"type": "string", "enum": STATUSES, "description": "Review status."},
            "from_ms": {
                "type": "integer",
                "minimum": 0,
                "description": "Only findings ending at or after this media time (ms).",
            },
            "to_ms": {
                "type": "integer",
                "minimum": 0,
                "description": "Only findings starting at or before this media time (ms).",
            },
            "limit": {"type": "integer", "minimum": 1, "maximum": LIST_LIMIT_MAX},
        },
    ),
    _tool("describe_finding", "Everything recorded about one finding of this session.", dict(_FINDING_REF)),
    _tool(
        "session_summary", "Counts so far for this session: findings by risk, status and category; frames analysed.", {}
    ),
    _tool(
        "add_note",
        "Append a note dictated by the clinician to the session notes, or to one finding's clinician note "
        "when a finding is given.",
        {"text": {"type": "string", "maxLength": NOTE_MAX_CHARS}, **_FINDING_REF},
        ["text"],
    ),
    _tool(
        "confirm_finding",
        "Record the clinician's confirmation of a finding. Only after you read the finding back and the "
        "clinician explicitly said yes: then pass confirmed_by_user true.",
        {
            **_FINDING_REF,
            "confirmed_by_user": {
                "type": "boolean",
                "description": "True only if the clinician explicitly confirmed just now.",
            },
        },
        ["confirmed_by_user"],
    ),
    _tool(
        "reject_finding",
        "Record the clinician's rejection of a finding. Only after you read the finding back and the "
        "clinician explicitly said to reject it: then pass confirmed_by_user true.",
        {
            **_FINDING_REF,
            "confirmed_by_user": {
                "type": "boolean",
                "description": "True only if the clinician explicitly confirmed just now.",
            },
        },
        ["confirmed_by_user"],
    ),
    _tool(
        "look_again",
        "Ask the image model to look again at the latest frame of this session and answer a question about it.",
        {"question": {"type": "string", "maxLength": QUESTION_MAX_CHARS}},
        ["question"],
    ),
]
TOOL_NAMES = frozenset(t["name"] for t in TOOL_DEFINITIONS)


@dataclass(frozen=True)
class ToolContext:
    """Who is asking about which session: fixed by the consumer, never by the model."""

    session_id: Any
    user: Any
    # How "look again" reaches the image model: the relay consumer passes one that runs the
    # analyze_clarify task on the gpu queue and waits for the reply; without one (tools used
    # directly) the model runs in a worker thread of this process.
    clarify: Callable[[Any, str, str], Awaitable[dict]] | None = None


class ToolError(Exception):
    """A refusal the assistant should read out (bad argument, not found, not allowed)."""


# --- helpers (sync, run in the database thread) -----------------------------------------


def _session(ctx: ToolContext):
    return access.get_visible_session(ctx.user, ctx.session_id)


def _ordered_findings(session):
    from analysis.selectors import finding_list

    return finding_list(session=session)


def _int(args: dict, name: str, *, minimum: int = 0, maximum: int | None = None) -> int | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ToolError(f"{name} must be a whole number.")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        raise ToolError(
            f"{name} must be between {minimum} and {maximum}." if maximum else f"{name} must be at least {minimum}."
        )
    return value


def _text(args: dict, name: str, max_chars: int) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"{name} is required.")
    value = value.strip()
    if len(value) > max_chars:
        raise ToolError(f"{name} is too long (at most {max_chars} characters).")
    return value


def _resolve_finding(session, args: dict, *, required: bool = True):
    """(finding, index) from ``finding_id`` or ``index``; only findings of ``session``."""
    ordered = list(_ordered_findings(session).values_list("pk", flat=True))
    finding_id = args.get("finding_id")
    index = _int(args, "index", minimum=1)
    if finding_id:
        matches = [i for i, pk in enumerate(ordered, start=1) if str(pk) == str(finding_id).strip()]
        if not matches:
            raise ToolError("There is no finding with that id in this session.")
        index = matches[0]
    elif index is not None:
        if index > len(ordered):
            raise ToolError(f"This session has {len(ordered)} finding(s); there is no number {index}.")
    elif required:
        raise ToolError("Say which finding: give its index or its id (list_findings shows both).")
    else:
        return None, None
    from analysis.models import Finding

    return Finding.objects.select_related("reviewed_by").get(pk=ordered[index - 1]), index


def _brief(finding, index: int, event: dict | None = None) -> dict:
    """A finding as the tools report it: ``finding_event``'s values (one place decides how
    a finding is written out), under the names the tools' results have always used, plus
    its number in the timeline and its time as spoken."""
    if event is None:
        event = finding_event(finding)
    return {
        "index": index,
        "id": event["id"],
        "time": mmss(event["start_ms"]),
        "start_ms": event["start_ms"],
        "end_ms": event["end_ms"],
        "category": event["category"],
        "label": event["label"],
        "location": event["location"],
        "risk": event["risk"],
        "confidence": event["confidence"],
        "status": event["review_status"],
        "origin": event["origin"],
        "demo_model": event["is_demo"],
    }


def _detail(finding, index: int) -> dict:
    event = finding_event(finding)
    return {
        **_brief(finding, index, event),
        "size_mm": event["size_mm"],
        "description": event["description"],
        "suggested_next_step": event["suggested_next_step"],
        "clinician_note": event["clinician_note"],
        "reviewed_by": event["reviewed_by"],
        "reviewed_at": event["reviewed_at"],
        "model": event["provenance"]["model_id"],
        "prompt_version": event["provenance"]["prompt_version"],
    }


# --- the tools --------------------------------------------------------------------------


def list_findings(ctx: ToolContext, args: dict) -> dict:
    session = _session(ctx)
    risk, status = args.get("risk"), args.get("status")
    if risk is not None and risk not in RISKS:
        raise ToolError(f"risk must be one of {', '.join(RISKS)}.")
    if status is not None and status not in STATUSES:
        raise ToolError(f"status must be one of {', '.join(STATUSES)}.")
    from_ms, to_ms = _int(args, "from_ms"), _int(args, "to_ms")
    limit = _int(args, "limit", minimum=1, maximum=LIST_LIMIT_MAX) or LIST_LIMIT_DEFAULT
    matches = []
    for index, finding in enumerate(_ordered_findings(session), start=1):
        if (risk and finding.risk != risk) or (status and finding.review_status != status):
            continue
        if (from_ms is not None and finding.end_ms < from_ms) or (to_ms is not None and finding.start_ms > to_ms):
            continue
        matches.append(_brief(finding, index))
    log_access(actor=ctx.user, instance=session, what="voice:list_findings")
    return {"ok": True, "count": len(matches), "findings": matches[:limit], "truncated": len(matches) > limit}


def describe_finding(ctx: ToolContext, args: dict) -> dict:
    session = _session(ctx)
    finding, index = _resolve_finding(session, args)
    log_access(actor=ctx.user, instance=finding, what="voice:describe_finding")
    return {"ok": True, "finding": _detail(finding, index)}


def session_summary(ctx: ToolContext, args: dict) -> dict:
    from analysis.models import Finding, Frame

    session = _session(ctx)
    findings = Finding.objects.filter(session=session)

    def counts(field):
        return {row[field]: row["n"] for row in findings.values(field).annotate(n=Count("pk")).order_by(field)}

    frames = {
        row["analysis_state"]: row["n"]
        for row in Frame.objects.filter(session=session).values("analysis_state").annotate(n=Count("pk")).order_by()
    }
    log_access(actor=ctx.user, instance=session, what="voice:session_summary")
    return {
        "ok": True,
        "procedure_type": session.get_procedure_type_display(),
        "session_status": session.status,
        "findings": findings.count(),
        "by_risk": counts("risk"),
        "by_status": counts("review_status"),
        "by_category": counts("category"),
        "demo_model_findings": findings.filter(is_demo=True).count(),
        "frames": frames,
    }


def add_note(ctx: ToolContext, args: dict) -> dict:
    text = _text(args, "text", NOTE_MAX_CHARS)
    session = _session(ctx)
    finding, index = _resolve_finding(session, args, required=False)
    if finding is not None:
        from analysis.services import finding_review

        note = f"{finding.clinician_note}\n{text}" if finding.clinician_note else text
        finding = finding_review(actor=ctx.user, finding=finding, note=note)
        return {"ok": True, "added_to": f"finding {index}", "finding_id": str(finding.pk)}
    from procedures.services import session_update

    notes = f"{session.notes}\n{text}" if session.notes else text
    session_update(actor=ctx.user, session=session, notes=notes)
    return {"ok": True, "added_to": "session notes"}


def _review(ctx: ToolContext, args: dict, status: ReviewStatus) -> dict:
    verb = "confirm" if status == ReviewStatus.CONFIRMED else "reject"
    if args.get("confirmed_by_user") is not True:
        raise ToolError(
            f"Not recorded. Read the finding back and ask the clinician to {verb} it out loud; "
            f"call again with confirmed_by_user true only after they said yes."
        )
    session = _session(ctx)
    finding, index = _resolve_finding(session, args)
    from analysis.services import finding_review

    finding = finding_review(actor=ctx.user, finding=finding, status=status)
    return {"ok": True, "finding": _brief(finding, index), "recorded": f"{status} by {ctx.user.get_username()}"}


def confirm_finding(ctx: ToolContext, args: dict) -> dict:
    return _review(ctx, args, ReviewStatus.CONFIRMED)


def reject_finding(ctx: ToolContext, args: dict) -> dict:
    return _review(ctx, args, ReviewStatus.REJECTED)


def _look_again_prepare(ctx: ToolContext, args: dict):
    from analysis.models import Frame

    question = _text(args, "question", QUESTION_MAX_CHARS)
    session = _session(ctx)
    frame = (
        Frame.objects.filter(session=session)
        .exclude(image="")
        .exclude(image__isnull=True)
        .order_by("-created_at", "-timestamp_ms")
        .first()
    )
    if frame is None:
        raise ToolError("This session has no frame to look at yet.")
    log_access(actor=ctx.user, instance=frame, what="voice:look_again")
    return frame, session.procedure_type, question


async def _clarify_in_thread(frame, procedure_type: str, question: str) -> dict:
    # thread_sensitive=False: the model may take seconds; it must not hold up the database
    # thread other consumers' writes go through, nor the event loop.
    return await sync_to_async(frame_clarify, thread_sensitive=False)(
        frame=frame, procedure_type=procedure_type, question=question)


SYNC_TOOLS = {
    "list_findings": list_findings,
    "describe_finding": describe_finding,
    "session_summary": session_summary,
    "add_note": add_note,
    "confirm_finding": confirm_finding,
    "reject_finding": reject_finding,
}


def _refusal(exc: Exception) -> dict:
    if isinstance(exc, ToolError):
        return {"ok": False, "error": str(exc)}
    if isinstance(exc, access.SessionNotFound):
        return {"ok": False, "error": "This session is no longer available to you."}
    if isinstance(exc, access.SessionReadOnly):
        return {"ok": False, "error": str(exc)}
    if isinstance(exc, ValidationError):
        return {"ok": False, "error": " ".join(exc.messages)}
    return {"ok": False, "error": "The tool failed unexpectedly; the error was logged."}


def parse_arguments(raw) -> dict:
    if isinstance(raw, dict):
        return raw
    try:
        value = safe_json.loads(raw or "{}")
    except (TypeError, ValueError):
        raise ToolError("The tool arguments were not valid JSON.") from None
    if not isinstance(value, dict):
        raise ToolError("The tool arguments must be a JSON object.")
    return value


def _run_sync(fn, ctx, args):
    try:
        return fn(ctx, args)
    except (ToolError, access.SessionNotFound, access.SessionReadOnly, ValidationError) as exc:
        return _refusal(exc)
    except Exception as exc:
        logger.exception("Voice tool %s failed", fn.__name__)
        return _refusal(exc)


async def execute(ctx: ToolContext, name: str, raw_arguments) -> tuple[dict, dict]:
    """Run tool ``name`` for ``ctx``: (parsed arguments, result). Never raises for a bad
    call; the result says what went wrong. Blocking work runs off the event loop."""
    try:
        args = parse_arguments(raw_arguments)
    except ToolError as exc:
        return {"raw": str(raw_arguments)[:2000]}, _refusal(exc)
    if name in SYNC_TOOLS:
        return args, await run_in_db(_run_sync, SYNC_TOOLS[name], ctx, args)
    if name == "look_again":
        try:
            frame, procedure_type, question = await run_in_db(_look_again_prepare, ctx, args)
            ask = ctx.clarify or _clarify_in_thread
            return args, await ask(frame, procedure_type, question)
        except (ToolError, access.SessionNotFound, access.SessionReadOnly, ValidationError) as exc:
            return args, _refusal(exc)
        except Exception as exc:
            logger.exception("Voice tool look_again failed")
            return args, {"ok": False, "error": f"The image model could not answer: {exc}"[:300]}
    return args, {"ok": False, "error": f"There is no tool called {name!r}."}


def result_summary(name: str, result: dict) -> str:
    """One line for the transcript."""
    if not result.get("ok"):
        return f"{name}: refused: {result.get('error', '')}"[:500]
    if name == "list_findings":
        return f"list_findings: {result['count']} finding(s)"
    if name in ("confirm_finding", "reject_finding"):
        f = result["finding"]
        return f"{name}: finding {f['index']} ({f['label'] or f['category']}) {result['recorded']}"
    if name == "add_note":
        return f"add_note: added to {result['added_to']}"
    if name == "look_again":
        return f"look_again: {result.get('answer', '')}"[:500]
    return name


def changed_finding_id(name: str, result: dict) -> str | None:
    """The id of the finding a successful tool call changed, or None. The relay counts that
    finding as known, so its broadcast is not told to the model as a new finding. The
    result shapes differ: a review returns the finding, a note only its id (no note on
    a finding: the session's notes, no finding)."""
    if not result.get("ok"):
        return None
    if name in ("confirm_finding", "reject_finding"):
        return (result.get("finding") or {}).get("id") or None
    if name == "add_note":
        return result.get("finding_id") or None
    return None
