"""The documentation bundle, file by file."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

import pytest

from analysis.serializers import finding_event
from exports import services
from exports.bundle import CSV_COLUMNS, safe_cell
from exports.disclaimer import HAI_DEF_NOTICE
from exports.models import Export, ExportKind

from .conftest import INJECTION

pytestmark = pytest.mark.django_db


def open_bundle(user, session):
    result = services.bundle_export(actor=user, session=session)
    archive = zipfile.ZipFile(io.BytesIO(result.content))
    assert archive.testzip() is None
    return result, archive


def read_csv(archive):
    raw = archive.read("findings.csv")
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the UTF-8 BOM"
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_a_preliminary_bundle_shows_every_finding_with_its_status(reviewed, clinician):
    result, archive = open_bundle(clinician, reviewed.session)
    names = set(archive.namelist())
    assert {"metadata.json", "summary.json", "findings.csv", "findings.json", "report.txt", "manifest.json",
            "transcript.json", "transcript.txt"} <= names
    assert {n for n in names if n.startswith("frames/")} == {
        f"frames/000001500ms_{reviewed.frames[0].pk}.jpg",
        f"frames/000062250ms_{reviewed.frames[1].pk}.jpg",
        f"frames/003723004ms_{reviewed.frames[2].pk}.jpg",
    }
    rows = read_csv(archive)
    assert [r["review_status"] for r in rows] == ["confirmed", "edited", "proposed", "rejected"]  # time order
    meta = json.loads(archive.read("metadata.json"))
    assert meta["document_status"] == "preliminary"
    assert result.filename.endswith(".zip") and "-preliminary-" in result.filename
    assert "PRELIMINARY" in archive.read("report.txt").decode()


def test_metadata_names_session_models_and_disclaimer(reviewed, clinician):
    _, archive = open_bundle(clinician, reviewed.session)
    meta = json.loads(archive.read("metadata.json"))
    session = reviewed.session
    assert meta["session"]["id"] == str(session.pk)
    assert meta["session"]["procedure_type"] == "colonoscopy"
    assert meta["session"]["clinician"] == "dr.owner"
    assert meta["session"]["encounter_ref"] == "ENC-77"
    assert meta["exported_by"] == "dr.owner" and meta["exported_at"].endswith("Z")
    assert meta["models"] == [{
        "backend": "demo", "model_id": "medvision-demo-gemma3-random (NOT a medical model)",
        "model_revision": "", "prompt_version": "frame-v1", "is_demo": True,
    }, {
        "backend": "demo", "model_id": "medvision-demo-gemma3-random (NOT a medical model)",
        "model_revision": "rev-1", "prompt_version": "frame-v1", "is_demo": True,
    }]
    notice = meta["disclaimer"]
    assert notice["not_for_clinical_use"] and notice["demo"] and notice["hai_def_notice"] == HAI_DEF_NOTICE
    assert "NOT FOR CLINICAL USE" in notice["text"] and "DEMO MODEL" in notice["text"]


def test_summary_counts_by_risk_category_and_review_status(reviewed, clinician):
    _, archive = open_bundle(clinician, reviewed.session)
    summary = json.loads(archive.read("summary.json"))
    assert summary["by_risk"] == {"high": 1, "medium": 2, "low": 1}
    assert summary["by_category"] == {"bleeding": 1, "polyp": 2, "ulcer": 1}
    assert summary["all_findings_by_review_status"] == {"proposed": 1, "confirmed": 1, "rejected": 1, "edited": 1}
    assert summary["notes"] == "Prep adequate; Boston 8."
    assert summary["videos"] == []


def test_csv_columns_times_and_provenance(reviewed, clinician):
    _, archive = open_bundle(clinician, reviewed.session)
    rows = read_csv(archive)
    assert list(rows[0]) == CSV_COLUMNS
    confirmed, edited, proposed, rejected = rows
    assert confirmed["finding_id"] == str(reviewed.confirmed.pk)
    assert confirmed["start_ms"] == "1500"
    assert (confirmed["start_time"], confirmed["end_time"]) == ("00:00:01.500", "00:00:02.500")
    assert rejected["start_time"] == "01:02:03.004"
    assert edited["size_mm"] == "12.0" and edited["reviewed_by"] == "dr.owner" and edited["reviewed_at"]
    assert confirmed["frame_file"] == f"frames/000001500ms_{reviewed.frames[0].pk}.jpg"
    assert proposed["frame_id"] == "" and proposed["reviewed_by"] == ""
    assert confirmed["model_id"].startswith("medvision-demo") and confirmed["is_demo"] == "true"
    assert confirmed["model_revision"] == "rev-1" and confirmed["prompt_version"] == "frame-v1"


def test_csv_neutralises_spreadsheet_formulas(reviewed, clinician):
    _, archive = open_bundle(clinician, reviewed.session)
    confirmed, _, proposed, _ = read_csv(archive)
    assert confirmed["label"] == "'" + INJECTION
    assert confirmed["description"] == "'+ sessile lesion"
    assert confirmed["clinician_note"] == "'-2 mm margin"
    assert proposed["label"] == "'@SUM(A1)"
    for value in (INJECTION, "+1", "-1", "@x", "\tx", "\rx"):
        assert safe_cell(value).startswith("'")
    assert safe_cell("polyp") == "polyp" and safe_cell(6.5) == "6.5" and safe_cell(None) == ""


def test_findings_json_is_the_api_finding_shape(reviewed, clinician):
    _, archive = open_bundle(clinician, reviewed.session)
    data = json.loads(archive.read("findings.json"))
    assert data["document_status"] == "preliminary" and "NOT FOR CLINICAL USE" in data["disclaimer"]
    assert data["findings"][0] == json.loads(json.dumps(finding_event(reviewed.confirmed)))
    assert data["findings"][0]["label"] == INJECTION  # JSON is not a spreadsheet: kept verbatim


def test_key_frames_are_the_stored_jpegs(reviewed, clinician):
    _, archive = open_bundle(clinician, reviewed.session)
    frame = reviewed.frames[0]
    with frame.image.open("rb") as fh:
        assert archive.read(f"frames/000001500ms_{frame.pk}.jpg") == fh.read()


def test_manifest_hashes_match_every_file(reviewed, clinician):
    _, archive = open_bundle(clinician, reviewed.session)
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["algorithm"] == "sha256"
    listed = set(manifest["files"])
    assert listed == set(archive.namelist()) - {"manifest.json"}
    for name, entry in manifest["files"].items():
        content = archive.read(name)
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], name
        assert len(content) == entry["size"], name


def test_transcript_lists_the_conversation(reviewed, clinician):
    _, archive = open_bundle(clinician, reviewed.session)
    data = json.loads(archive.read("transcript.json"))
    (conversation,) = data["conversations"]
    assert conversation["user"] == "dr.owner" and conversation["model"] == "gpt-realtime-test"
    assert [u["role"] for u in conversation["utterances"]] == ["user", "tool", "assistant"]
    assert conversation["utterances"][1]["tool_arguments"] == {"risk": "high"}
    text = archive.read("transcript.txt").decode()
    assert "Clinician: How big is the polyp?" in text and 'list_findings({"risk": "high"})' in text


def test_no_transcript_without_a_conversation(session, clinician, media_root):
    _, archive = open_bundle(clinician, session)
    assert "transcript.json" not in archive.namelist() and "transcript.txt" not in archive.namelist()
    assert json.loads(archive.read("summary.json"))["findings_shown"] == 0


def test_a_final_bundle_holds_only_the_signed_report(signed, clinician):
    result, archive = open_bundle(clinician, signed.session)
    rows = read_csv(archive)
    assert {r["finding_id"] for r in rows} == {str(signed.confirmed.pk), str(signed.edited.pk)}
    assert {n for n in archive.namelist() if n.startswith("frames/")} == {
        f"frames/000001500ms_{signed.frames[0].pk}.jpg", f"frames/000062250ms_{signed.frames[1].pk}.jpg",
    }
    meta = json.loads(archive.read("metadata.json"))
    assert meta["document_status"] == "final" and meta["session"]["signed_by"] == "dr.owner"
    summary = json.loads(archive.read("summary.json"))
    assert summary["all_findings_by_review_status"]["rejected"] == 2  # counted, not shown
    report = archive.read("report.txt").decode()
    assert "FINAL" in report and "Bubble" not in report and "Signed by:       dr.owner" in report
    assert "-final-" in result.filename


def test_each_export_is_recorded_and_audited(reviewed, clinician):
    from auditlog.models import LogEntry

    result, _ = open_bundle(clinician, reviewed.session)
    export = Export.objects.get()
    assert export == result.export
    assert (export.kind, export.created_by, export.is_final) == (ExportKind.BUNDLE, clinician, False)
    assert export.sha256 == hashlib.sha256(result.content).hexdigest() and export.size_bytes == len(result.content)
    assert LogEntry.objects.get_for_object(export).filter(action=LogEntry.Action.CREATE).exists()
    access = LogEntry.objects.get_for_object(reviewed.session).filter(action=LogEntry.Action.ACCESS).get()
    assert access.actor == clinician and access.additional_data["what"] == "export:bundle"
    assert access.additional_data["export"] == str(export.pk)


def test_a_missing_frame_file_does_not_break_the_export(reviewed, clinician):
    reviewed.frames[0].image.storage.delete(reviewed.frames[0].image.name)
    _, archive = open_bundle(clinician, reviewed.session)
    meta = json.loads(archive.read("metadata.json"))
    assert meta["missing_frames"] == [str(reviewed.frames[0].pk)]
    assert not any(str(reviewed.frames[0].pk) in n for n in archive.namelist())


def test_what_was_said_after_sign_off_is_an_addendum_not_part_of_the_signed_bundle(signed, clinician):
    """The final documents are what was signed; a conversation after signing (or the part
    of one that went on past the signature) travels as an addendum beside them."""
    from datetime import timedelta

    from voice.models import Conversation, Utterance

    session = signed.session
    later = session.signed_at + timedelta(minutes=5)
    conversation = Conversation.objects.create(session=session, user=clinician, model="gpt-realtime-test")
    Conversation.objects.filter(pk=conversation.pk).update(started_at=later)
    utterance = Utterance.objects.create(conversation=conversation, role="user", text="Said after signing")
    Utterance.objects.filter(pk=utterance.pk).update(created_at=later)
    _, archive = open_bundle(clinician, session)
    signed_part = json.loads(archive.read("transcript.json"))
    said = [u["text"] for c in signed_part["conversations"] for u in c["utterances"]]
    assert "Said after signing" not in said and "How big is the polyp?" in said
    addendum = json.loads(archive.read("addenda/transcript_after_signing.json"))
    assert addendum["after_signing"] is True
    assert [u["text"] for c in addendum["conversations"] for u in c["utterances"]] == ["Said after signing"]
    assert "AFTER SIGN-OFF" in archive.read("addenda/transcript_after_signing.txt").decode()
    manifest = json.loads(archive.read("manifest.json"))
    assert "addenda/transcript_after_signing.json" in manifest["files"]
