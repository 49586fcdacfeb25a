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
from .pdf import build_pdf


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


def export_create(*, actor, session: ProcedureSession, kind: str, content: bytes, is_final: bool,
                  document_format: str = "") -> Export:
    """Record that ``content`` (exactly these bytes) left the system as a ``kind`` export.
    ``document_format`` tells two forms of one kind apart in the audit trail (the printable
    report as a page or as a PDF)."""
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
            **({"format": document_format} if document_format else {}),
        )
    return export


def _filename(snapshot: selectors.ExportSnapshot, extension: str) -> str:
    session = snapshot.session
    return (f"medvision-{session.procedure_type}-{str(session.pk)[:8]}-{snapshot.document_status}-"
            f"{compact_utc(snapshot.exported_at)}.{extension}")


def _export(*, actor, session: ProcedureSession, kind: str, build, extension: str, content_type: str,
            document_format: str = "") -> ExportFile:
    """Check access, take one snapshot, build the document from it and record the hand-out."""
    _ensure_visible(actor, session)
    snapshot = selectors.export_snapshot(session=session, actor=actor)
    content = build(snapshot)
    export = export_create(actor=actor, session=snapshot.session, kind=kind, content=content,
                           is_final=snapshot.is_final, document_format=document_format)
    return ExportFile(export, content, _filename(snapshot, extension), content_type)


def bundle_export(*, actor, session: ProcedureSession) -> ExportFile:
    return _export(actor=actor, session=session, kind=ExportKind.BUNDLE, build=build_bundle,
                   extension="zip", content_type="application/zip")


def fhir_export(*, actor, session: ProcedureSession) -> ExportFile:
    return _export(actor=actor, session=session, kind=ExportKind.FHIR, build=build_fhir_json,
                   extension="fhir.json", content_type="application/fhir+json")


def report_export(*, actor, session: ProcedureSession, render) -> ExportFile:
    """The printable report: ``render(snapshot) -> str`` is the caller's template (a page)."""
    return _export(actor=actor, session=session, kind=ExportKind.REPORT,
                   build=lambda snapshot: render(snapshot).encode("utf-8"),
                   extension="html", content_type="text/html; charset=utf-8")


def report_pdf_export(*, actor, session: ProcedureSession) -> ExportFile:
    """The printable report as a PDF download. Recorded as a REPORT export (the same document
    as the page, in another format; the audit entry says ``format: pdf``), so no new export
    kind and no schema change are needed."""
    result = _export(actor=actor, session=session, kind=ExportKind.REPORT, build=build_pdf,
                     extension="pdf", content_type="application/pdf", document_format="pdf")
    return ExportFile(result.export, result.content, f"medvision-report-{session.pk}.pdf", result.content_type)
