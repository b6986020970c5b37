"""ASGI middleware on Airflow's API server (registered by ``kaizen_plugin.py``): a
trigger of ``kaizen_backfill`` whose form is wrong in ways JSON Schema cannot say
(end before start, dates in the future, a range over the limit) is refused with a
message naming the field, and no run is created. Per-field types, enums and date
formats are already enforced by the DAG's Params.

Who gets an answer. Airflow adds plugin root middlewares *inside* its own (the JWT
cookie refresh, the auth manager's) but *before* routing, so no route dependency has
authenticated the request yet. The guard therefore authenticates it itself, with
Airflow's own code (:func:`airflow.api_fastapi.core_api.security.get_user`: the
``Authorization: Bearer`` token first, else the UI's ``_token`` cookie, each checked by
the auth manager's JWT validator, revocation included) and authorises it as the
trigger route does (``requires_access_dag("POST", RUN)`` on ``kaizen_backfill``). A
request that fails either passes through untouched: Airflow answers it with its usual
401/403, never with a validation detail. Nothing of the body is read before that.

Bodies. An authorised request's body is read up to :data:`MAX_BODY_BYTES` (64 KiB; a
form is a few hundred bytes): a larger ``Content-Length`` is refused with 413 before
anything is read, and a body that streams past the cap is refused with 413 as soon as
it does, never buffering more than the cap plus one chunk.

The refusal's shape. What the Airflow 3.3 UI shows for a refused trigger (measured in
the 3.3.2 bundle, ``airflow/ui/dist/assets/index-*.js``; sources under
``airflow-core/src/airflow/ui/``):

- ``src/queries/useTrigger.ts`` ``onError``: a toast titled "Failed to Trigger Dag"
  whose description is ``error.message`` (and nothing for a 403);
- ``openapi-gen/requests/core/request.ts`` ``catchErrorCodes``: for a status in its
  table (400 "Bad Request" … 511, 422 included) ``error.message`` is that status text
  alone, so a 400's ``detail`` never reaches the toast; for any other non-2xx status it
  is ``"Generic Error: status: <n>; status text: <t>; body: <the JSON body>"``;
- ``src/components/ErrorAlert.tsx`` at the top of the dialog: ``status message`` and the
  body's ``detail`` (the part often scrolled out of view).

So the UI — which authenticates with the ``_token`` cookie and sends no
``Authorization`` header (its OpenAPI client has no ``TOKEN``) — gets the refusal with
status :data:`UI_REFUSAL_STATUS`, a 4xx outside that table: its toast then carries the
body, ``{"detail": "Invalid kaizen_backfill form: end: … is before start …"}``. RFC 9110
§15 has clients treat an unregistered 4xx as 400. A caller with a Bearer token (the
REST API, ``airflowctl``, scripts) gets the standard 400 with the same body.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from kaizen.backfill import BackfillParamError, validate
from kaizen.calendar import IST

DAG_ID = "kaizen_backfill"
GUARDED = re.compile(rf"(?:^|/)api/v2/dags/{DAG_ID}/dagRuns/?$")
MAX_BODY_BYTES = 64 * 1024
API_REFUSAL_STATUS = 400
UI_REFUSAL_STATUS = 432  # unregistered 4xx, absent from the UI's status table (see the docstring)


class BackfillParamsGuard:
    def __init__(self, app, max_body_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http" or scope.get("method") != "POST" or not GUARDED.search(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        via = await authorised_via(scope)
        if via is None:  # Airflow answers it (401/403) as it answers every unauthenticated caller
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _too_large(send, self.max_body_bytes)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _too_large(send, self.max_body_bytes)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            conf = (json.loads(body or b"{}") or {}).get("conf") or {}
            validate(conf, today=datetime.now(IST).date())
        except BackfillParamError as exc:
            status = UI_REFUSAL_STATUS if via == "cookie" else API_REFUSAL_STATUS
            await _reply(send, status, {"detail": f"Invalid {DAG_ID} form: {exc}"})
            return
        except (ValueError, AttributeError):
            pass  # not our business: Airflow answers malformed JSON as it does

        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def authorised_via(scope) -> str | None:
    """``"bearer"`` or ``"cookie"`` — how the caller proved who it is — when Airflow
    would let it trigger ``kaizen_backfill``; None when Airflow would answer 401/403."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api import security
    from fastapi import HTTPException
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request

    request = Request(scope)
    credentials = await security.bearer_scheme(request)
    try:
        user = await security.get_user(request, None, credentials)
        # the trigger route's own check; it reads the DAG's team from the metadata DB
        await run_in_threadpool(
            security.requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=DAG_ID), request, user
        )
    except HTTPException:
        return None
    return "bearer" if credentials is not None and credentials.scheme.lower() == "bearer" else "cookie"


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send, cap: int) -> None:
    await _reply(send, 413, {"detail": f"Request body over {cap // 1024} KiB: a {DAG_ID} form is a few hundred bytes"})


async def _reply(send, status: int, doc: dict) -> None:
    payload = json.dumps(doc).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})
