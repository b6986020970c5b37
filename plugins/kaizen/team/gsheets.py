"""Reading the team's tabs from Google Sheets through connection ``kaizen_gsheets``
(gspread, with the connection handling, retries and error messages of
:mod:`kaizen.delivery.sheets`): the transport of :mod:`kaizen.sources.team_sheets`.

Values are read as people see them (``FORMATTED_VALUE``), with the spreadsheet's
locale (which says the date order) and time zone (the one Google Forms writes its
Timestamp in). Per spreadsheet: its metadata (gspread reads it once on opening, Kaizen
once more for the locale, time zone and tab titles), then one ``values.batchGet`` of the
tabs it holds."""

from __future__ import annotations

import logging
from dataclasses import replace

from kaizen import config

log = logging.getLogger(__name__)


def _read(conn: config.Conn, titles: list[str], what: str) -> tuple[dict, dict]:
    """({title: values} of the ``titles`` the spreadsheet has, its properties)."""
    import requests
    from google.auth.exceptions import GoogleAuthError
    from gspread.exceptions import APIError

    from kaizen.delivery import sheets

    def failed(err):
        return type(err)(f"Reading {what} (connection {conn.conn_id!r}): {err}", transient=err.transient)

    try:
        spreadsheet = sheets.open_spreadsheet(conn)
    except sheets.SheetsDeliveryError as err:
        raise failed(err) from err
    account = getattr(spreadsheet.client, "account", None)

    def call(operation: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (APIError, requests.RequestException) as exc:
            raise failed(sheets._explain(exc, spreadsheet.id, operation, conn.conn_id, account)) from exc
        except GoogleAuthError as exc:
            raise failed(sheets._token_failure(exc, conn.conn_id)) from None

    meta = call("spreadsheets.get", spreadsheet.fetch_sheet_metadata,
                params={"includeGridData": "false", "fields": "properties(locale,timeZone),sheets.properties.title"})
    have = [s["properties"]["title"] for s in meta.get("sheets", [])]
    found = [t for t in titles if t in have]
    for t in titles:
        if t not in have:
            log.info("%s: spreadsheet %s (connection %r) has no tab %r: not read", what, spreadsheet.id,
                     conn.conn_id, t)
    values = {}
    if found:
        got = call("values.batchGet", spreadsheet.values_batch_get, [sheets.quote_title(t) for t in found],
                   params={"valueRenderOption": "FORMATTED_VALUE", "dateTimeRenderOption": "FORMATTED_STRING"})
        for t, vr in zip(found, got.get("valueRanges", []), strict=True):
            values[t] = {"values": vr.get("values") or [], "location": f"spreadsheet {spreadsheet.id} tab {t!r}"}
    return values, meta.get("properties") or {}


def read_team_tabs(forms_tab: str, team_tab: str, forms_spreadsheet_id: str = "") -> dict:
    """``{"forms": Tab | None, "team": Tab | None}`` (see :mod:`kaizen.sources.team_sheets`);
    both None when connection ``kaizen_gsheets`` is not configured."""
    conn = config.get_connection(config.GSHEETS_CONN_ID)
    if conn is None:
        log.info("team sheets: connection %r is not configured: no survey responses or Team tab read",
                 config.GSHEETS_CONN_ID)
        return {"forms": None, "team": None}
    own = str((conn.extra or {}).get("spreadsheet_id") or "").strip()
    forms_conn = conn if not forms_spreadsheet_id or forms_spreadsheet_id == own else replace(
        conn, extra={**(conn.extra or {}), "spreadsheet_id": forms_spreadsheet_id})
    out = {"forms": None, "team": None}
    plans = [(forms_conn, [("forms", forms_tab)])]
    if forms_conn is conn:
        plans[0][1].append(("team", team_tab))
    else:
        plans.append((conn, [("team", team_tab)]))
    for c, wanted in plans:
        values, props = _read(c, [t for _, t in wanted], "the team's tabs")
        for kind, title in wanted:
            if title in values:
                out[kind] = {**values[title], "locale": props.get("locale", ""), "time_zone": props.get("timeZone")}
    return out
