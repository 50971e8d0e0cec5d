"""AppTest: what each role may see and change — masked contacts in the segments grid and its exports, the
Service settings only for the roles that may save them, and the admin's audit log listing an export."""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
import pyarrow as pa
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from crm import auth
from crm.export import read_back, read_manifest
from tests.app.conftest import open_page, shown

Q2 = {"from": "2026-04-01", "to": "2026-06-30"}
SAVE_SETTINGS = "FormSubmitter:svc_settings-Save calendar and targets"


def grid_rows(at: AppTest) -> pl.DataFrame:
    """The rows the page sent to its AG Grid (the component's data argument, an Arrow stream)."""
    grid = next(c for c in at.get("component_instance") if c.proto.component_name.endswith("agGrid"))
    data = next(a for a in grid.proto.special_args if a.key == "data").arrow_dataframe.data.data
    return pl.from_arrow(pa.ipc.open_stream(data).read_all())  # type: ignore[return-value]


@pytest.fixture
def downloads(monkeypatch) -> dict[str, object]:
    """What each download button would send (key -> its data: bytes, text or the function building them)."""
    sent: dict[str, object] = {}
    real = st.download_button

    def spy(label, data=None, *args, **kwargs):
        sent[kwargs.get("key")] = data
        return real(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", spy)
    return sent


def built(data: object) -> bytes:
    value = data() if callable(data) else data
    return value if isinstance(value, bytes) else str(value).encode()


def test_an_analyst_sees_and_exports_masked_contacts(app_store, downloads):
    at = open_page("pages/segments.py", Q2, role="analyst")
    assert not at.exception, at.exception
    rows = grid_rows(at)
    assert rows.height > 0 and rows["email"].null_count() < rows.height
    assert rows["email"].drop_nulls().str.contains(r"^[^@*]?\*\*\*@").all()  # a***@domain
    assert rows["phone"].drop_nulls().str.contains(r"^•{8}\d{0,2}$").all()
    assert all(not e.startswith("info@") for e in rows["email"].drop_nulls())
    for fmt in ("csv", "xlsx", "parquet"):
        data = built(downloads[f"seg_export_{fmt}"])
        exported = read_back(data, fmt)  # type: ignore[arg-type]
        assert exported.height == rows.height
        assert exported["email"].drop_nulls().str.contains(r"^[^@*]?\*\*\*@").all(), fmt
        assert set(exported["customer_id"]) == set(rows["customer_id"])
        if fmt != "csv":
            assert read_manifest(data, fmt)["masking"] == "email and phone masked for the analyst role"  # type: ignore[arg-type]
    manifest = json.loads(built(downloads["seg_export_manifest"]))
    assert manifest["masking"] == "email and phone masked for the analyst role"


def test_a_manager_sees_the_contacts_as_stored(app_store):
    at = open_page("pages/segments.py", Q2, role="manager")
    assert not at.exception, at.exception
    emails = grid_rows(at)["email"].drop_nulls()
    assert emails.len() > 0 and emails.str.starts_with("info@").all()  # the demo's addresses, unmasked


@pytest.mark.parametrize(("role", "may"), [("rep", False), ("analyst", False), ("executive", False),
                                          ("manager", True), ("admin", True)])
def test_only_managers_and_admins_get_the_service_settings_save_button(app_store, role, may):
    at = open_page("pages/service.py", Q2, role=role)
    assert not at.exception, at.exception
    assert any(b.key == SAVE_SETTINGS for b in at.button) == may
    said = " ".join(shown(c.value) for c in at.caption)
    assert ("Only managers and admins may change the business calendar and SLA targets" in said) != may
    if not may:
        assert any("First-response targets" in shown(m.value) for m in at.markdown)  # read, not edited


def test_a_rep_cannot_save_segments_and_is_told_who_may(app_store):
    at = open_page("pages/segments.py", Q2, role="rep")
    assert not at.exception, at.exception
    assert not any(b.label == "Save segment" for b in at.button)
    assert any("Only managers, analysts and admins may save segments" in shown(c.value) for c in at.caption)


def test_the_audit_page_lists_an_export_made_just_before(app_store, downloads):
    started = datetime.now()  # audit rows keep microseconds: the exports of tests before are earlier
    at = open_page("pages/segments.py", Q2, role="analyst")
    assert not at.exception, at.exception
    assert auth.read_audit(app_store, since=started).filter(pl.col("action") == "data.exported").is_empty()
    built(downloads["seg_export_csv"])  # what the server does when the browser asks for the file
    made = auth.read_audit(app_store, since=started).filter(pl.col("action") == "data.exported")
    assert made.height == 1
    entry = made.row(0, named=True)
    detail = json.loads(entry["detail"])
    assert entry["actor"] == "analyst"
    assert {k: detail[k] for k in ("via", "grid", "format", "masking")} == {
        "via": "app", "grid": "customers", "format": "csv", "masking": "email and phone masked for the analyst role"}
    assert detail["rows"] == grid_rows(at).height and detail["filters"].startswith("2026-04-01 – 2026-06-30")

    page = open_page("pages/audit.py", {}, role="admin")
    assert not page.exception, page.exception
    assert [t.value for t in page.title] == ["Audit log"]
    table = page.dataframe[0].value
    assert list(table.columns) == ["When", "Who", "What", "Details"]
    first = table.iloc[0]  # newest first
    assert (first["Who"], first["What"]) == ("analyst", "Exported data")
    assert first["Details"].startswith(f"from: app · table: customers · title: Customers of a segment · format: csv · "
                                       f"rows: {detail['rows']:,} · filters: 2026-04-01 – 2026-06-30")
    page.multiselect(key="audit_actions").set_value(["data.exported"]).run()
    assert set(page.dataframe[0].value["What"]) == {"Exported data"}
    assert {b.key for b in page.get("download_button")} >= {"audit_export_csv", "audit_export_xlsx"}


def test_only_admins_read_the_audit_log(app_store):
    at = open_page("pages/audit.py", {}, role="analyst")
    assert not at.exception, at.exception
    assert not at.dataframe
    assert any("Not permitted" in shown(e.value) for e in at.error) or any(
        "Only admins may read the audit log" in shown(c.value) for c in at.caption)
