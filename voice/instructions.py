"""What the Realtime model is told: instructions, the session configuration, the short
notes about new findings and the transcript re-seeded after a reconnect."""

from __future__ import annotations

from django.conf import settings

from analysis.engine.schemas import RISKS_HIGHEST_FIRST

from .tools import TOOL_DEFINITIONS, mmss

BASE_INSTRUCTIONS = """\
You are MedVision's voice copilot, talking with the clinician who is documenting a {procedure} \
(session status: {status}). You help them review AI-proposed findings and keep the record; \
you are not a doctor.

Ground rules:
- Not for clinical use. Every finding is a proposal from an image model for the clinician to \
confirm or reject; never present one as a diagnosis, and never invent findings, numbers or \
measurements: use the tools to look them up.
{demo_rule}\
- Before confirm_finding or reject_finding: read the finding back (its number, what and where), \
ask the clinician to confirm, and call the tool with confirmed_by_user true only after they \
said yes in this conversation. If they hesitate, do nothing.
- Everything you do is limited to this one session. Notes you add are recorded under the \
clinician's name.
- Speak briefly: one or two sentences, plain language. Times are media times (mm:ss).

Session so far: {summary}."""

DEMO_RULE = (
    "- This server runs the DEMO image model (random weights): its findings and answers are "
    "meaningless. Say so whenever you report one.\n"
)
SOME_DEMO_RULE = (
    "- Findings marked demo_model come from the DEMO image model (random weights) and are "
    "meaningless; say so when you report one.\n"
)


def summary_sentence(context: dict) -> str:
    total = context.get("findings", 0)
    if not total:
        return "no findings recorded yet"
    risks = context.get("by_risk", {})
    statuses = context.get("by_status", {})
    parts = [f"{total} finding(s)"]
    parts.append("risk " + ", ".join(f"{k} {risks.get(k, 0)}" for k in RISKS_HIGHEST_FIRST))
    parts.append("review " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    return "; ".join(parts)


def build_instructions(context: dict) -> str:
    if settings.ANALYZER_BACKEND == "demo":
        demo_rule = DEMO_RULE
    elif context.get("demo_model_findings"):
        demo_rule = SOME_DEMO_RULE
    else:
        demo_rule = ""
    return BASE_INSTRUCTIONS.format(
        procedure=context.get("procedure_type", "procedure"),
        status=context.get("session_status", ""),
        demo_rule=demo_rule,
        summary=summary_sentence(context),
    )


def turn_detection(mode: str) -> dict | None:
    """Server VAD (hands-free) or none (push-to-talk: the relay commits on release)."""
    if mode == "ptt":
        return None
    return {"type": "server_vad", "create_response": True, "interrupt_response": True, "silence_duration_ms": 600}


def session_config(*, instructions: str, mode: str) -> dict:
    pcm = {"type": "audio/pcm", "rate": 24000}
    return {
        "type": "realtime",
        "instructions": instructions,
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": pcm,
                "transcription": {"model": settings.OPENAI_REALTIME_TRANSCRIPTION_MODEL},
                "turn_detection": turn_detection(mode),
            },
            "output": {"format": pcm, "voice": settings.OPENAI_REALTIME_VOICE},
        },
        "tools": TOOL_DEFINITIONS,
        "tool_choice": "auto",
    }


def finding_note(finding: dict) -> str:
    """A new finding, in one line, for the model's context (not spoken by itself)."""
    what = finding.get("label") or finding.get("category") or "finding"
    where = finding.get("location") or "unspecified location"
    confidence = finding.get("confidence")
    conf = f", confidence {confidence:.2f}" if isinstance(confidence, (int, float)) else ""
    demo = " DEMO model output: meaningless." if finding.get("is_demo") else ""
    return (
        f"New finding recorded at {mmss(finding.get('start_ms'))}: {what} ({finding.get('category', '')}) "
        f"at {where}, risk {finding.get('risk', '?')}{conf}, status {finding.get('review_status', 'proposed')}, "
        f"id {finding.get('id')}.{demo} Mention it only if relevant or asked."
    )


def transcript_recap(utterances) -> str:
    lines = []
    for u in utterances:
        who = "Clinician" if u.role == "user" else "Assistant"
        text = u.text.strip().replace("\n", " ")
        if len(text) > 400:
            text = text[:400] + "..."
        lines.append(f"{who}: {text}")
    return (
        "The connection to the voice service was re-established. The conversation so far "
        "(most recent last):\n" + "\n".join(lines)
    )
