"""ASGI middleware on Airflow's API server (registered by ``kaizen_plugin.py``): a
trigger of ``kaizen_backfill`` whose form is wrong in ways JSON Schema cannot say
(end before start, dates in the future, a range over the limit) is answered 400 with
a message naming the field, and no run is created. Per-field types, enums and date
formats are already enforced by the DAG's Params."""

from __future__ import annotations

import json
import re
from datetime import datetime

from kaizen.backfill import BackfillParamError, validate
from kaizen.calendar import IST

GUARDED = re.compile(r"^/api/v2/dags/kaizen_backfill/dagRuns/?$")


class BackfillParamsGuard:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http" or scope.get("method") != "POST" or not GUARDED.match(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            conf = (json.loads(body or b"{}") or {}).get("conf") or {}
            validate(conf, today=datetime.now(IST).date())
        except BackfillParamError as exc:
            await _reply(send, 400, {"detail": f"Invalid kaizen_backfill form: {exc}"})
            return
        except (ValueError, AttributeError):
            pass  # not our business: let Airflow answer malformed JSON as it does

        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


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
