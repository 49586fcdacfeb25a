"""The analysis app's part in a sign-off (``procedures.workflow.session_signing``).

Connected in ``AnalysisConfig.ready``; runs inside the sign-off transaction with the
session row locked, before the status changes.
"""

from __future__ import annotations

from procedures.workflow import NotAllowed

from .live import live_frames_cancel
from .models import ReviewStatus


def refuse_undecided_proposals(sender, *, session, actor, **kwargs) -> None:
    # Live frames still waiting for (or on) the GPU are cancelled *before* counting
    # undecided proposals: the update waits for any result being recorded right now, so a
    # proposal it creates is counted, and no result can add one after the signature. (If
    # the sign-off is then refused, the transaction rolls back and those frames go on
    # being analysed as before.)
    live_frames_cancel(session=session)
    undecided = session.findings.filter(review_status=ReviewStatus.PROPOSED).count()
    if undecided:
        raise NotAllowed(
            f"{undecided} proposed finding(s) still need a decision (confirm, edit or reject) before signing."
        )
