""""Look again": ask the image model a question about one stored frame.

Used by the voice copilot's ``look_again`` tool. The model runs where the models run: the
``analysis.tasks.analyze_clarify`` task on the ``gpu`` queue calls ``frame_clarify`` and
replies to the asking consumer's channel, so a web process never loads MedGemma.
"""

from __future__ import annotations

import io


def mmss(ms: int | None) -> str:
    """Media time as mm:ss, the way people say it aloud ("at oh-two-fifteen")."""
    if ms is None:
        return ""
    seconds = int(ms) // 1000
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def frame_clarify(*, frame, procedure_type: str, question: str) -> dict:
    """The analyzer's structured answer about ``frame`` (a stored Frame), as a JSON-ready
    dict. No database access: it may run in any thread."""
    from PIL import Image

    from .analyzer import configured_analyzer
    from .engine import FrameInput

    with frame.image.open("rb") as fh:
        image = Image.open(io.BytesIO(fh.read())).convert("RGB")
    result = configured_analyzer().clarify(
        FrameInput(image=image, timestamp_ms=frame.timestamp_ms, frame_id=str(frame.pk)), procedure_type, question
    )
    base = {
        "frame_id": str(frame.pk),
        "frame_time": mmss(frame.timestamp_ms),
        "question": question,
        "model": result.provenance.model_id,
        "demo_model": result.provenance.is_demo,
    }
    if not result.ok or result.answer is None:
        return {"ok": False, "error": result.error or "The image model gave no usable answer.", **base}
    answer = result.answer
    return {
        "ok": True,
        **base,
        "answer": answer.answer,
        "confidence": answer.confidence,
        "relevant_category": answer.relevant_category,
        "relevant_location": answer.relevant_location,
        "image_adequacy": answer.image_adequacy,
    }
