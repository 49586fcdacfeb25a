"""Writes for exports: every document handed out becomes an Export record and audit entries.

The Export row (kind, who, when, final or preliminary, sha256 and size of exactly the bytes
handed out) is logged by django-auditlog as a CREATE attributed to the actor; the session
also gets an ACCESS entry naming the export, so "who read this session" lists downloads too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import transaction

from medvision.audit import acting_as, log_access
from procedures import access
from procedures.models import ProcedureSession

from . import selectors
from .bundle import build_bundle
from .fhir import build_fhir_json
from .formatting import compact_utc
from .models import Export, ExportKind


@dataclass(frozen=True)
class ExportFile:
    export: Export
    content: bytes
    filename: str
    content_type: str


def _ensure_visible(actor, session: ProcedureSession) -> None:
    # Views resolve the session through procedures.access already; checking again here
    # keeps a future caller (a task, a new view) from exporting what its user cannot see.
    if not access.visible_sessions(actor).filter(pk=session.pk).exists():
        raise access.SessionNotFound("No such procedure session.")


def export_create(*, actor, session: ProcedureSession, kind: str, content: bytes, is_final: bool) -> Export:
    """Record that ``content`` (exactly these bytes) left the system as a ``kind`` export."""
    if kind not in ExportKind.values:
        raise ValueError(f"Unknown export kind {kind!r}.")
    with transaction.atomic(), acting_as(actor):
        export = Export.objects.create(
            session=session,
            kind=kind,
            created_by=actor,
            is_final=is_final,
            sha256=hashlib.sha256(content).hexdigest(),
            size_bytes=len(content),
        )
        log_access(
            actor=actor, instance=session, what=f"export:{kind}", export=str(export.pk),
            document_status="final" if is_final else "preliminary", sha256=export.sha256,
        )
    return export


def _filename(snapshot: selectors.ExportSnapshot, extension: str) -> str:
    session = snapshot.session
    return (f"medvision-{session.procedure_type}-{str(session.pk)[:8]}-{snapshot.document_status}-"
            f"{compact_utc(snapshot.exported_at)}.{extension}")


def bundle_export(*, actor, session: ProcedureSession) -> ExportFile:
    _ensure_visible(actor, session)
    snapshot = selectors.export_snapshot(session=session, actor=actor)
    content = build_bundle(snapshot)
    export = export_create(actor=actor, session=snapshot.session, kind=ExportKind.BUNDLE, content=content,
                           is_final=snapshot.is_final)
    return ExportFile(export, content, _filename(snapshot, "zip"), "application/zip")


def fhir_export(*, actor, session: ProcedureSession) -> ExportFile:
    _ensure_visible(actor, session)
    snapshot = selectors.export_snapshot(session=session, actor=actor)
    content = build_fhir_json(snapshot)
    export = export_create(actor=actor, session=snapshot.session, kind=ExportKind.FHIR, content=content,
                           is_final=snapshot.is_final)
    return ExportFile(export, content, _filename(snapshot, "fhir.json"), "application/fhir+json")


def report_export(*, actor, session: ProcedureSession, render) -> ExportFile:
    """The printable report: ``render(snapshot) -> str`` is the caller's template (a page)."""
    _ensure_visible(actor, session)
    snapshot = selectors.export_snapshot(session=session, actor=actor)
    content = render(snapshot).encode("utf-8")
    export = export_create(actor=actor, session=snapshot.session, kind=ExportKind.REPORT, content=content,
                           is_final=snapshot.is_final)
    return ExportFile(export, content, _filename(snapshot, "html"), "text/html; charset=utf-8")
