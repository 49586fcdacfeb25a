"""Exports of a session with two recordings: every document says which recording (and
when in it) each finding comes from, lists the recordings, and never the uploaded names."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from django.urls import reverse
from fhir.resources.R4B.bundle import Bundle

from analysis import services as analysis_services
from analysis.tests.factories import FindingFactory
from exports import fhir, services
from procedures import workflow
from procedures.models import Video

from .conftest import api_client

pytestmark = pytest.mark.django_db

SECRET_NAME = "Smith_John_1960-01-01.mp4"


@pytest.fixture
def recorded(session, clinician, media_root):
    first = Video.objects.create(session=session, number=1, sha256="1" * 64, file="videos/1.mp4", state="done",
                                 duration_s=60.0, original_name=SECRET_NAME, size_bytes=1000)
    second = Video.objects.create(session=session, number=2, sha256="2" * 64, file="videos/2.mp4", state="done",
                                  duration_s=600.0, original_name=SECRET_NAME, size_bytes=2000,
                                  summary={"findings": 1, "top_findings": [{"start_ms": 192_000, "risk": "high"}]})
    a = FindingFactory(session=session, video=first, start_ms=30_000, end_ms=31_000, label="First polyp")
    b = FindingFactory(session=session, video=second, start_ms=192_000, end_ms=194_500, label="Second polyp",
                       risk="high")
    for f in (a, b):
        analysis_services.finding_review(actor=clinician, finding=f, status="confirmed")
    return session, first, second, a, b


def bundle_files(user, session) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(services.bundle_export(actor=user, session=session).content))
    return {name: archive.read(name) for name in archive.namelist()}


def test_the_text_report_names_recording_and_time(recorded, clinician):
    session, *_ = recorded
    text = bundle_files(clinician, session)["report.txt"].decode()
    assert "[Recording 1 · 0:30 - 0:31] First polyp" in text
    assert "[Recording 2 · 3:12 - 3:14] Second polyp" in text
    assert "Recording 2: duration 10:00, 1 finding(s) shown, sha256 " + "2" * 64 in text
    assert SECRET_NAME not in text


def test_json_and_csv_give_each_finding_its_recording(recorded, clinician):
    session, first, second, a, b = recorded
    files = bundle_files(clinician, session)
    meta = json.loads(files["metadata.json"])
    assert meta["recordings"] == [
        {"number": 1, "name": "Recording 1", "video": str(first.pk), "duration_s": 60.0, "sha256": "1" * 64,
         "findings_shown": 1},
        {"number": 2, "name": "Recording 2", "video": str(second.pk), "duration_s": 600.0, "sha256": "2" * 64,
         "findings_shown": 1},
    ]
    summary = json.loads(files["summary.json"])
    assert [(f["id"], f["recording"], f["video"]) for f in summary["findings"]] == [
        (str(a.pk), 1, str(first.pk)), (str(b.pk), 2, str(second.pk))]
    assert [v["number"] for v in summary["videos"]] == [1, 2]
    assert summary["videos"][1]["summary"]["top_findings"][0]["recording"] == 2
    findings = json.loads(files["findings.json"])["findings"]
    assert [(f["recording"], f["video"]) for f in findings] == [(1, str(first.pk)), (2, str(second.pk))]
    rows = list(csv.DictReader(io.StringIO(files["findings.csv"].decode("utf-8-sig"), newline="")))
    assert [(r["recording"], r["video_id"], r["start_time"]) for r in rows] == [
        ("1", str(first.pk), "00:00:30.000"), ("2", str(second.pk), "00:03:12.000")]
    assert not any(SECRET_NAME.encode() in content for content in files.values())


def test_the_printable_report_names_the_recording(recorded, clinician, client):
    session, *_ = recorded
    client.force_login(clinician)
    page = client.get(reverse("exports:report", args=[session.pk])).content.decode()
    assert '<span class="recording">Recording 2</span> · 3:12–3:14' in page
    assert 'id="recordings"' in page and SECRET_NAME not in page


def test_fhir_observations_say_their_recording_and_media_time(recorded, clinician):
    session, first, second, a, b = recorded
    bundle = Bundle.model_validate_json(services.fhir_export(actor=clinician, session=session).content)
    resources = {e.resource.id: e.resource for e in bundle.entry}
    urls = {e.resource.id: e.fullUrl for e in bundle.entry}
    for finding, video in ((a, first), (b, second)):
        observation = resources[str(finding.pk)]
        (time,) = [x for x in observation.extension if x.url == fhir.MEDIA_TIME_URL]
        parts = {p.url: p.valueInteger if p.valueInteger is not None else p.valueString for p in time.extension}
        assert parts == {"start-ms": finding.start_ms, "end-ms": finding.end_ms, "recording": video.number,
                         "video": str(video.pk)}
        assert urls[str(video.pk)] in {r.reference for r in observation.derivedFrom}
        assert any(f"Seen in Recording {video.number}" in n.text for n in observation.note)
        media = resources[str(video.pk)]
        assert media.get_resource_type() == "Media" and media.type.coding[0].code == "video"
        assert media.duration == video.duration_s and media.content.title == f"Recording {video.number}"
        assert {(i.system, i.value) for i in media.identifier} == {
            (fhir.RECORDING_SYSTEM, str(video.pk)), (fhir.RECORDING_SHA256_SYSTEM, video.sha256)}
    assert SECRET_NAME not in bundle.model_dump_json()


def test_a_connector_sees_recording_numbers_not_file_names(recorded, clinician, connector):
    session, *_ = recorded
    from reporting.tests.factories import complete_report

    complete_report(session, actor=clinician)  # signing needs a complete structured report
    workflow.session_sign(actor=clinician, session=session)
    client = api_client(connector)
    body = client.get(reverse("api-procedure-findings", args=[session.pk])).json()
    assert [r["recording"] for r in body["results"]] == [1, 2]
    response = client.get(reverse("api-procedure-fhir", args=[session.pk]))
    assert response.status_code == 200
    content = b"".join(response.streaming_content) if response.streaming else response.content
    assert b'"recording"' in content and SECRET_NAME.encode() not in content
