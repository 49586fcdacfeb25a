"""Portal pages for exports: the printable report and the bundle download. Thin: resolve
the session through the access rules, call the export service, hand out its bytes."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from procedures import access

from . import services
from .report import report_context


def _private(response: HttpResponse) -> HttpResponse:
    # Clinical documents: never kept by shared caches or the browser's back/forward cache.
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def session_report(request, session_id):
    session = access.get_visible_session(request.user, session_id)
    result = services.report_export(
        actor=request.user, session=session,
        render=lambda snapshot: render_to_string("exports/report.html", report_context(snapshot), request=request),
    )
    response = HttpResponse(result.content, content_type=result.content_type)
    response["X-MedVision-Export-Id"] = str(result.export.pk)
    return _private(response)


@login_required
@require_GET
def session_bundle(request, session_id):
    session = access.get_visible_session(request.user, session_id)
    result = services.bundle_export(actor=request.user, session=session)
    return _private(download(result))


@login_required
@require_GET
def session_report_pdf(request, session_id):
    session = access.get_visible_session(request.user, session_id)
    result = services.report_pdf_export(actor=request.user, session=session)
    return _private(download(result))


def download(result: services.ExportFile) -> HttpResponse:
    response = HttpResponse(result.content, content_type=result.content_type)
    response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    response["X-MedVision-Export-Id"] = str(result.export.pk)
    response["X-MedVision-Document-Status"] = "final" if result.export.is_final else "preliminary"
    return response
