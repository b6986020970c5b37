"""Reading the team's tabs from Google Sheets through connection ``kaizen_gsheets``
(gspread, with the connection handling, retries and error messages of
:mod:`kaizen.delivery.sheets`): the transport of :mod:`kaizen.sources.team_sheets`.

Values are read as people see them (``FORMATTED_VALUE``), with the spreadsheet's
locale (which says the date order) and time zone (the one Google Forms writes its
Timestamp in). Per spreadsheet: its metadata (gspread reads it once on opening, Kaizen
once more for the locale, time zone and tab titles), then one read of the tabs it holds
(``values.batchGet``; ``values.get`` when it holds one): :func:`kaizen.delivery.sheets.read_tabs`."""

from __future__ import annotations

import logging
from dataclasses import replace

from kaizen import config

log = logging.getLogger(__name__)


def read_team_tabs(forms_tab: str, team_tab: str, forms_spreadsheet_id: str = "") -> dict:
    """``{"forms": Tab | None, "team": Tab | None}`` (see :mod:`kaizen.sources.team_sheets`);
    both None when connection ``kaizen_gsheets`` is not configured."""
    from kaizen.delivery import sheets

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
        got = sheets.read_tabs(c, [t for _, t in wanted], "the team's tabs")
        for kind, title in wanted:
            if title not in got.values:
                log.info("the team's tabs: spreadsheet %s (connection %r) has no tab %r: not read",
                         got.spreadsheet_id, c.conn_id, title)
                continue
            out[kind] = {"values": got.values[title], "location": got.location(title),
                         "locale": got.properties.get("locale", ""), "time_zone": got.properties.get("timeZone")}
    return out
