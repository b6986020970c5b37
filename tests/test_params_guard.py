"""The API server's guard on kaizen_backfill triggers (kaizen.params_guard), around a
stub of Airflow's trigger route that authenticates and authorises with Airflow's own
dependencies, with real JWTs made by Airflow's signer under a test secret:

- a caller Airflow would refuse (no token, a forged, expired or revoked one, a user
  who may not trigger) gets Airflow's 401/403, never a validation detail;
- an authorised caller with a bad form gets the reason: 400 over the REST API (Bearer),
  a status the UI's toast shows the body of over the UI's cookie;
- a body over 64 KiB is refused with 413 without buffering more than the cap.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import Request

from airflow_auth import simple_auth
from kaizen.calendar import IST
from kaizen.params_guard import MAX_BODY_BYTES, UI_REFUSAL_STATUS, BackfillParamsGuard

PATH = "/api/v2/dags/kaizen_backfill/dagRuns"
TODAY = datetime.now(IST).date()
BAD = {"logical_date": None, "conf": {"start": str(TODAY - timedelta(days=3)), "end": str(TODAY - timedelta(days=9))}}
GOOD = {"logical_date": None, "conf": {"start": str(TODAY - timedelta(days=9)), "end": str(TODAY - timedelta(days=3))}}
REASON = f"end: {TODAY - timedelta(days=9)} is before start {TODAY - timedelta(days=3)}"


@pytest.fixture(scope="module")
def auth(tmp_path_factory):
    with simple_auth(tmp_path_factory.mktemp("auth")) as tokens:
        yield tokens


def stub_airflow(reached: list):
    """Airflow's trigger route as far as the guard can tell: Airflow's own get_user and
    requires_access_dag dependencies, then the body it received."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends, FastAPI

    app = FastAPI()

    @app.post("/api/v2/dags/{dag_id}/dagRuns",
              dependencies=[Depends(requires_access_dag(method="POST", access_entity=DagAccessEntity.RUN))])
    async def trigger(dag_id: str, request: Request):
        body = await request.body()
        reached.append(json.loads(body))
        return {"dag_id": dag_id, "state": "queued"}

    app.add_middleware(BackfillParamsGuard)
    return app


@pytest.fixture
def client():
    from starlette.testclient import TestClient

    reached: list = []
    with TestClient(stub_airflow(reached)) as c:
        c.reached = reached
        yield c


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("carrier", ["bearer", "cookie"])
@pytest.mark.parametrize(
    ("token", "status", "detail"),
    [
        (None, 401, "Not authenticated"),
        ("forged", 403, "Invalid JWT token"),
        ("expired", 401, "Token Expired"),
        ("viewer", 403, "Forbidden"),  # authenticated, but may not trigger
    ],
)
def test_a_caller_airflow_refuses_gets_airflows_answer_never_the_form_detail(client, auth, carrier, token, status,
                                                                              detail):
    headers = {}
    if token and carrier == "bearer":
        headers = bearer(auth[token])
    elif token:
        client.cookies.set("_token", auth[token])
    r = client.post(PATH, json=BAD, headers=headers)
    assert (r.status_code, r.json()) == (status, {"detail": detail})
    assert "kaizen_backfill form" not in r.text
    assert client.reached == []


def test_an_unauthenticated_oversized_body_is_airflows_business_too(client):
    r = client.post(PATH, content=b"{" + b" " * (MAX_BODY_BYTES * 2) + b"}", headers={"content-type": "application/json"})
    assert (r.status_code, r.json()) == (401, {"detail": "Not authenticated"})


def test_a_bad_form_over_the_rest_api_is_refused_with_400_naming_the_field(client, auth):
    r = client.post(PATH, json=BAD, headers=bearer(auth["admin"]))
    assert r.status_code == 400
    assert r.json() == {"detail": f"Invalid kaizen_backfill form: {REASON}"}
    assert client.reached == []


def test_a_bad_form_from_the_ui_gets_a_status_whose_body_the_toast_shows(client, auth):
    client.cookies.set("_token", auth["admin"])
    r = client.post(PATH, json=BAD)
    assert r.status_code == UI_REFUSAL_STATUS
    assert r.json() == {"detail": f"Invalid kaizen_backfill form: {REASON}"}
    assert client.reached == []


def test_the_bearer_token_wins_over_the_cookie_as_in_airflow(client, auth):
    client.cookies.set("_token", auth["admin"])
    r = client.post(PATH, json=BAD, headers=bearer(auth["forged"]))
    assert (r.status_code, r.json()) == (403, {"detail": "Invalid JWT token"})


def test_a_good_form_reaches_airflow_with_its_body_intact(client, auth):
    r = client.post(PATH, json=GOOD, headers=bearer(auth["admin"]))
    assert (r.status_code, r.json()) == (200, {"dag_id": "kaizen_backfill", "state": "queued"}), r.text
    assert client.reached == [GOOD]


def test_other_dags_and_methods_pass_untouched(client, auth):
    r = client.post("/api/v2/dags/daily_review/dagRuns", json=BAD, headers=bearer(auth["admin"]))
    assert (r.status_code, client.reached) == (200, [BAD])


def test_an_authorised_body_over_the_cap_is_refused_with_413(client, auth):
    big = {"logical_date": None, "conf": {"start": "2026-11-02", "end": "2026-11-06", "pad": "x" * MAX_BODY_BYTES}}
    r = client.post(PATH, json=big, headers=bearer(auth["admin"]))
    assert r.status_code == 413
    assert r.json() == {"detail": "Request body over 64 KiB: a kaizen_backfill form is a few hundred bytes"}
    assert client.reached == []
    # just under the cap: read and judged as any form
    fits = {"logical_date": None, "conf": dict(BAD["conf"])}
    fits["conf"]["pad"] = "x" * (MAX_BODY_BYTES - len(json.dumps(fits)) - 20)
    assert len(json.dumps(fits).encode()) <= MAX_BODY_BYTES
    assert client.post(PATH, json=fits, headers=bearer(auth["admin"])).status_code == 400


def _drive(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[list[dict], int, bool]:
    """The guard on a raw ASGI request; returns what it sent, the bytes it pulled from
    the client and whether the app behind it ran."""
    pulled, ran, sent = [0], [False], []

    async def app(scope, receive, send):
        ran[0] = True

    async def receive():
        chunk = chunks.pop(0)
        pulled[0] += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": PATH, "headers": headers, "query_string": b""}
    asyncio.run(BackfillParamsGuard(app)(scope, receive, send))
    return sent, pulled[0], ran[0]


def test_the_cap_is_kept_without_buffering_past_it(auth):
    auth_header = (b"authorization", f"Bearer {auth['admin']}".encode())
    chunk = 8 * 1024
    # streamed without a length: stops at the first chunk past the cap
    sent, pulled, ran = _drive([auth_header], [b"x" * chunk for _ in range(128)])  # 1 MiB offered
    assert (sent[0]["status"], ran) == (413, False)
    assert MAX_BODY_BYTES < pulled <= MAX_BODY_BYTES + chunk
    # a declared length over the cap: refused before reading anything
    sent, pulled, ran = _drive([auth_header, (b"content-length", str(10 * MAX_BODY_BYTES).encode())], [b"x" * chunk])
    assert (sent[0]["status"], pulled, ran) == (413, 0, False)


def test_a_revoked_token_is_refused_as_airflow_refuses_it(client, auth, monkeypatch):
    from airflow.models.revoked_token import RevokedToken

    monkeypatch.setattr(RevokedToken, "is_revoked", classmethod(lambda cls, jti: True))
    r = client.post(PATH, json=BAD, headers=bearer(auth["admin"]))
    assert (r.status_code, r.json()) == (403, {"detail": "Invalid JWT token"})


def test_the_ui_status_is_outside_the_status_table_of_the_installed_ui():
    """Measured in Airflow's own UI bundle: a status in the generated client's table
    becomes the toast's whole text ("Bad Request"); any other shows the body."""
    import airflow

    bundle = next((Path(airflow.__file__).parent / "ui" / "dist" / "assets").glob("index-*.js")).read_text("utf-8")
    table = re.search(r"\{400:`Bad Request`,401:`Unauthorized`[^}]*\}", bundle)
    assert table, "the UI's catchErrorCodes table moved: re-check what the trigger toast shows"
    codes = {int(c) for c in re.findall(r"(\d{3}):`", table.group(0))}
    assert {400, 413, 422} <= codes and UI_REFUSAL_STATUS not in codes
    assert "Generic Error: status: ${" in bundle[table.end(): table.end() + 400]


def test_the_refusal_is_the_same_validation_the_first_task_runs():
    from kaizen.backfill import BackfillParamError, validate

    with pytest.raises(BackfillParamError, match=re.escape(REASON)):
        validate(BAD["conf"], today=TODAY)
    assert validate(GOOD["conf"], today=TODAY).start == date.fromisoformat(GOOD["conf"]["start"])
