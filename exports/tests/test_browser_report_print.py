"""The print page fits A4: rendered by headless Chromium with print media, nothing is wider
than an A4 page's printable width (210 mm less the 15 mm margins), tables included."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from portal.tests.test_browser_live import page  # noqa: F401 - the same browser fixture

from .conftest import COLONOSCOPY_DATA

# transaction=True: with the browser running, the ORM is reached through another connection
# (Playwright runs an event loop in this thread), which must see committed rows.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

A4_PRINTABLE_PX = round((210 - 2 * 15) / 25.4 * 96)  # CSS px at 96 per inch


def test_the_print_page_fits_a4(structured, clinician, page):  # noqa: F811
    record = structured.record
    # Long cells and many polyps: the widest table the report can have.
    polyps = [{**COLONOSCOPY_DATA["polyps"][0], "id": f"p{n}", "jar": "J" * 20} for n in range(12)]
    record.data = {**record.data, "polyps": polyps, "impression": "word " * 300}
    record.save()
    client = Client()
    client.force_login(clinician)
    html = client.get(reverse("exports:report", args=[structured.session.pk])).content.decode()

    def static(route):
        # The page is loaded without a server: stylesheets come from the static finders.
        name = route.request.url.split("/static/", 1)[1].split("?")[0]
        found = finders.find(name)
        if found:
            route.fulfill(body=Path(found).read_bytes(), content_type="text/css" if name.endswith(".css") else None)
        else:
            route.fulfill(status=404, body=b"")

    page.route("**/static/**", static)
    page.route("**/procedures/**", lambda route: route.fulfill(status=404, body=b""))  # frame images
    # A placeholder origin answered here (no network): the page's relative URLs resolve to it.
    page.route("http://report.test/", lambda route: route.fulfill(body=html, content_type="text/html"))
    page.set_viewport_size({"width": A4_PRINTABLE_PX, "height": 1000})
    page.goto("http://report.test/", wait_until="load")
    page.emulate_media(media="print")
    overflow = page.evaluate("""(limit) => [...document.querySelectorAll('#report, #report *')]
        .filter(el => el.getBoundingClientRect().right > limit + 1)
        .map(el => el.tagName + (el.id ? '#' + el.id : '') + ':' + Math.round(el.getBoundingClientRect().right))
        .slice(0, 5)""", A4_PRINTABLE_PX)
    assert overflow == []
    assert page.locator("#structured-polyps table.grid tbody tr").count() == 12
    assert page.locator(".print-actions").is_hidden()
    pdf = page.pdf(format="A4", margin={"top": "15mm", "bottom": "15mm", "left": "15mm", "right": "15mm"})
    assert pdf.startswith(b"%PDF-")
