"""Every HTTP route and WebSocket route, checked for every role.

The table below must name every route the project serves: a new route without an entry
fails ``test_every_route_has_an_entry``. Admin routes are one family, checked through the
admin index and every registered model's changelist and change page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token

from medvision.routing import websocket_urlpatterns
from medvision.ws_auth import WebSocketAuthStack

ROLES = ("anonymous", "other_clinician", "qa", "owner", "connector")
LOGIN = "login_redirect"  # a 302 to the login page


@dataclass
class Route:
    expected: dict  # role -> status code, or LOGIN
    method: str = "get"
    kwargs: dict = field(default_factory=dict)  # "session" is replaced by the owner's session id
    data: dict | None = None
    headers: dict = field(default_factory=dict)
    content_type: str | None = None  # a JSON body (PATCH): data is sent encoded as JSON


def everyone(status):
    return {role: status for role in ROLES}


def signed_in(status, anonymous=LOGIN, **overrides):
    return {"anonymous": anonymous, **{r: status for r in ROLES[1:]}, **overrides}


HTTP_ROUTES = {
    "home": Route(everyone(302)),  # to the session list, which asks for a login
    "login": Route(signed_in(302, anonymous=200)),  # signed-in users are sent on
    "logout": Route(everyone(302), method="post"),
    "password_change": Route(signed_in(200, connector=200)),
    "password_change_done": Route(signed_in(200)),
    "procedures:list": Route(signed_in(200)),
    "procedures:create": Route(signed_in(200, qa=403, connector=403)),
    "procedures:detail": Route(signed_in(200, other_clinician=404, connector=404), kwargs={"session_id": "session"}),
    "api-token": Route(everyone(401), method="post", data={"username": "nobody", "password": "wrong"}),
    "api-unknown-path": Route(everyone(404)),  # anything under /api/ that no route matches: a JSON 404
    "api-procedure-list": Route(signed_in(200, anonymous=401)),
    "api-procedure-detail": Route(
        signed_in(200, anonymous=401, other_clinician=404, connector=404), kwargs={"session_id": "session"}
    ),
    "api-procedure-video": Route(
        signed_in(200, anonymous=401, other_clinician=404, connector=404), kwargs={"session_id": "session"}
    ),
    # Resumable uploads (tus): creating one; the owner's own upload (QA sees the session, not the upload).
    "api-procedure-uploads": Route(
        signed_in(201, anonymous=401, other_clinician=404, qa=403, connector=404), method="post",
        kwargs={"session_id": "session"}, headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10"},
    ),
    "api-procedure-upload": Route(
        signed_in(200, anonymous=401, other_clinician=404, qa=404, connector=404), method="head",
        kwargs={"session_id": "session", "upload_id": "upload"}, headers={"Tus-Resumable": "1.0.0"},
    ),
    # The owner's sign fails (the matrix session has an undecided finding): 400 with the reason.
    "api-procedure-sign": Route(
        signed_in(409, anonymous=401, other_clinician=404, qa=403, connector=404), method="post",
        kwargs={"session_id": "session"},
    ),
    "api-procedure-findings": Route(
        signed_in(200, anonymous=401, other_clinician=404, connector=404), kwargs={"session_id": "session"}
    ),
    "api-finding-detail": Route(
        signed_in(200, anonymous=401, other_clinician=404, connector=404), kwargs={"finding_id": "finding"}
    ),
    # Exports: connectors only once the session is signed (exports/tests/test_api.py checks that side).
    "api-procedure-export": Route(
        signed_in(200, anonymous=401, other_clinician=404, connector=404), kwargs={"session_id": "session"}
    ),
    "api-procedure-fhir": Route(
        signed_in(200, anonymous=401, other_clinician=404, connector=404), kwargs={"session_id": "session"}
    ),
    "exports:report": Route(signed_in(200, other_clinician=404, connector=404), kwargs={"session_id": "session"}),
    "exports:bundle": Route(signed_in(200, other_clinician=404, connector=404), kwargs={"session_id": "session"}),
    "exports:report-pdf": Route(signed_in(200, other_clinician=404, connector=404), kwargs={"session_id": "session"}),
    # The structured report: the owner edits, QA reads (read-only page, POSTs refused).
    "reporting:edit": Route(signed_in(200, other_clinician=404, connector=404), kwargs={"session_id": "session"}),
    "reporting:prefill": Route(signed_in(302, other_clinician=404, qa=403, connector=404), method="post",
                               kwargs={"session_id": "session"}),
    "reporting:surveillance": Route(signed_in(302, other_clinician=404, qa=403, connector=404), method="post",
                                    kwargs={"session_id": "session"}, data={"chosen_months": "36"}),
    "api-procedure-report": Route(
        signed_in(200, anonymous=401, other_clinician=404, connector=404), kwargs={"session_id": "session"}
    ),
    "api-procedure-marks": Route(
        signed_in(200, anonymous=401, other_clinician=404, connector=404), kwargs={"session_id": "session"}
    ),
    "api-procedure-mark": Route(
        signed_in(200, anonymous=401, other_clinician=404, qa=403, connector=404), method="patch",
        kwargs={"session_id": "session", "mark_id": "mark"}, data={"time_ms": 61000},
        content_type="application/json",
    ),
    # Pathology after sign-off: the owner's POST on the (unsigned) matrix session is refused
    # with a message (page) or a 409 (API); QA reads, never writes.
    "reporting:pathology": Route(signed_in(302, other_clinician=404, qa=403, connector=404), method="post",
                                 kwargs={"session_id": "session"},
                                 data={"polyp_id": "p1", "histology": "tubular_adenoma"}),
    "api-procedure-pathology": Route(
        signed_in(409, anonymous=401, other_clinician=404, qa=403, connector=404), method="post",
        kwargs={"session_id": "session"}, data={"polyp_id": "p1", "histology": "tubular_adenoma"},
        content_type="application/json",
    ),
    # Quality metrics compare clinicians: staff only.
    "quality:page": Route(signed_in(403, qa=200)),
    "quality:csv": Route(signed_in(403, qa=200)),
    "procedures:frame-image": Route(
        signed_in(200, other_clinician=404, connector=404), kwargs={"session_id": "session", "frame_id": "frame"}
    ),
    "procedures:video-file": Route(signed_in(200, other_clinician=404, connector=404),
                                   kwargs={"session_id": "session", "video_id": "video"}),
    "procedures:live": Route(signed_in(200, other_clinician=404, connector=404), kwargs={"session_id": "session"}),
    "procedures:finding-new": Route(signed_in(200, other_clinician=404, qa=403, connector=404),
                                    kwargs={"session_id": "session"}),
    "procedures:finding-edit": Route(signed_in(200, other_clinician=404, qa=403, connector=404),
                                     kwargs={"session_id": "session", "finding_id": "finding"}),
    "procedures:finding-review": Route(signed_in(302, other_clinician=404, qa=403, connector=404), method="post",
                                       kwargs={"session_id": "session", "finding_id": "finding"},
                                       data={"action": "note", "note": "ok"}),
    "procedures:notes": Route(signed_in(302, other_clinician=404, qa=403, connector=404), method="post",
                              kwargs={"session_id": "session"}, data={"note": "n"}),
    # The owner's sign fails (a finding is undecided) and is sent back to the page with the reason.
    "procedures:sign": Route(signed_in(302, other_clinician=404, qa=403, connector=404), method="post",
                             kwargs={"session_id": "session"}),
    "procedures:addendum": Route(signed_in(302, other_clinician=404, qa=403, connector=404), method="post",
                                 kwargs={"session_id": "session"}, data={"text": "late"}),
    "api-schema": Route(signed_in(200, anonymous=401)),
    "api-docs": Route(signed_in(200, anonymous=401)),
    "healthz": Route(everyone(200)),
    "readyz": Route(everyone(200)),
}

# WebSocket routes: True = accepted, else the close code.
WS_ROUTES = {
    "ws-session-events": {"anonymous": 4401, "other_clinician": 4404, "qa": True, "owner": True, "connector": 4404},
    "ws-session-live": {"anonymous": 4401, "other_clinician": 4404, "qa": True, "owner": True, "connector": 4404},
    # Voice copilot: only the owning clinician talks; QA may read the session, so 4403 (read-only).
    "ws-session-voice": {"anonymous": 4401, "other_clinician": 4404, "qa": 4403, "owner": True, "connector": 4404},
}


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{p.namespace}:" if p.namespace else ""
            yield from _walk(p.url_patterns, prefix + ns)
        elif isinstance(p, URLPattern):
            yield f"{prefix}{p.name}" if p.name else f"{prefix}<unnamed {p.pattern}>"


def all_http_route_names():
    return set(_walk(get_resolver().url_patterns))


def test_every_route_has_an_entry():
    names = {n for n in all_http_route_names() if not n.startswith("admin:")}
    missing = names - set(HTTP_ROUTES)
    stale = set(HTTP_ROUTES) - names
    assert not missing, f"Routes without an access-matrix entry: {sorted(missing)}"
    assert not stale, f"Entries for routes that no longer exist: {sorted(stale)}"
    ws_names = {p.name for p in websocket_urlpatterns}
    assert ws_names == set(WS_ROUTES), f"WebSocket routes and matrix differ: {ws_names ^ set(WS_ROUTES)}"


@pytest.fixture
def frame(session, media_root):
    from analysis.services import frame_create
    from analysis.tests.fakes import jpeg_bytes

    return frame_create(session=session, source="live", timestamp_ms=0, jpeg=jpeg_bytes(), width=64, height=48)


@pytest.fixture
def video(session, media_root):
    from django.core.files.base import ContentFile

    from procedures.models import Video

    video = Video(session=session, sha256="c" * 64, container="mov,mp4,m4a,3gp,3g2,mj2", state="done")
    video.file.save("v.bin", ContentFile(b"\x00" * 2048), save=True)
    return video


@pytest.fixture
def finding(session, frame):
    from analysis.tests.factories import FindingFactory

    return FindingFactory(session=session, frame=frame)


@pytest.fixture
def mark(session, clinician):
    from reporting.models import TimelineMark

    return TimelineMark.objects.create(session=session, kind="scope_out", time_ms=60000, set_by=clinician)


@pytest.fixture
def actors(clinician, other_clinician, qa_user, connector):
    return {"anonymous": None, "other_clinician": other_clinician, "qa": qa_user, "owner": clinician,
            "connector": connector}


@pytest.mark.django_db
def test_uploads_are_refused_for_everyone_but_the_owner(actors, session):
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = reverse("api-procedure-video", args=[session.pk])
    expected = {"anonymous": 401, "other_clinician": 404, "qa": 403, "connector": 404}
    for role, status in expected.items():
        client = _client_for(actors[role])
        upload = SimpleUploadedFile("v.mp4", b"not a video", content_type="video/mp4")
        response = client.post(url, {"file": upload})
        assert response.status_code == status, (role, response.status_code)
    assert not session.videos.exists()


@pytest.fixture
def upload(session, media_root):
    from analysis import uploads

    return uploads.upload_create(actor=session.clinician, session=session, length=10, metadata={})


def _client_for(user):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(HTTP_ROUTES))
def test_http_route_access(name, actors, session, frame, finding, video, upload, mark):
    route = HTTP_ROUTES[name]
    placeholders = {"session": session.pk, "frame": frame.pk, "finding": finding.pk, "video": video.pk,
                    "upload": upload.pk, "mark": mark.pk}
    kwargs = {k: placeholders.get(v, v) for k, v in route.kwargs.items()}
    url = reverse(name, kwargs=kwargs)
    for role in ROLES:
        client = _client_for(actors[role])
        extra = {"content_type": route.content_type} if route.content_type else {}
        response = getattr(client, route.method)(url, data=route.data or {}, headers=route.headers, **extra)
        expected = route.expected[role]
        if expected == LOGIN:
            assert response.status_code == 302, (name, role, response.status_code)
            assert response["Location"].startswith(reverse("login")), (name, role, response["Location"])
        else:
            assert response.status_code == expected, (name, role, response.status_code)


@pytest.mark.django_db
def test_session_lists_show_only_what_each_role_may_see(actors, session):
    other_session_title = "Someone else's session"
    from procedures.tests.factories import ProcedureSessionFactory

    ProcedureSessionFactory(clinician=actors["other_clinician"], title=other_session_title)
    for role, sees_owner_session in {"other_clinician": False, "qa": True, "owner": True, "connector": False}.items():
        body = _client_for(actors[role]).get(reverse("procedures:list")).content.decode()
        assert (session.title in body) is sees_owner_session, role
        api = _client_for(actors[role]).get(reverse("api-procedure-list")).json()
        assert (str(session.pk) in {r["id"] for r in api["results"]}) is sees_owner_session, role


ADMIN_STATUS = {"anonymous": LOGIN, "other_clinician": LOGIN, "owner": LOGIN, "connector": LOGIN, "qa": 200}


@pytest.mark.django_db
def test_admin_family_is_staff_only(actors, session):
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        opts = model._meta
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    urls.append(reverse("admin:procedures_proceduresession_change", args=[session.pk]))
    for role in ROLES:
        client = _client_for(actors[role])
        for url in urls:
            response = client.get(url)
            expected = ADMIN_STATUS[role]
            if expected == LOGIN:
                assert response.status_code == 302 and "/admin/login/" in response["Location"], (url, role)
            elif "auth/user" in url or "auth/group" in url or "authtoken" in url or "axes" in url:
                assert response.status_code == 403, (url, role, response.status_code)  # QA: no user admin
            else:
                assert response.status_code == 200, (url, role, response.status_code)


async def _ws_connect(path, user):
    from channels.db import database_sync_to_async

    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if user is not None:
        token = await database_sync_to_async(lambda: Token.objects.get_or_create(user=user)[0].key)()
        headers.append((b"authorization", f"Token {token}".encode()))
    app = WebSocketAuthStack(URLRouter(websocket_urlpatterns))
    communicator = WebsocketCommunicator(app, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    if not connected:
        return f"handshake refused ({code}): the client would never see a close code"
    # A refused socket is accepted, told why, and closed with its code (so that clients
    # can tell "not allowed" from a dropped connection).
    first = json.loads((await communicator.receive_output(timeout=5)).get("text") or "{}")
    if first.get("type") == "error" and first.get("code") in ("not_authenticated", "read_only", "not_found"):
        closed = await communicator.receive_output(timeout=5)
        assert closed["type"] == "websocket.close"
        return closed["code"]
    await communicator.disconnect()
    return True


WS_PATHS = {"ws-session-events": "/ws/procedures/{session}/events/", "ws-session-live": "/ws/procedures/{session}/live/",
            "ws-session-voice": "/ws/procedures/{session}/voice/"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", sorted(WS_ROUTES))
async def test_websocket_route_access(name, actors, session):
    path = WS_PATHS[name].format(session=session.pk)
    for role in ROLES:
        outcome = await _ws_connect(path, actors[role])
        assert outcome == WS_ROUTES[name][role], (name, role, outcome)
