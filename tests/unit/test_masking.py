"""Field masking: email and phone as a role without ``see_contacts`` gets them, values worked out by hand."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm.export import build_manifest, export_bytes, read_back, read_manifest
from crm.filters import Filters, Period
from crm.masking import mask_contacts, masked_columns, masking_note, sees_contacts
from crm.roles import ROLES

JUNE = Filters.create(Period(date(2026, 6, 1), date(2026, 6, 30)))

CONTACTS = pl.DataFrame({
    "customer_id": ["C1", "C2", "C3", "C4", "C5", "C6"],
    "email": ["anna.berg@example.com", " Bo@Shop.io ", "@nolocal.org", "not-an-email", "", None],
    "phone": ["+44 20 7946 0112", "(555) 010-9987", "12", "ext. 7", "", None],
})

MASKED = pl.DataFrame({
    "customer_id": ["C1", "C2", "C3", "C4", "C5", "C6"],
    # first character and the domain; no local part: nothing to keep; no "@": the first character
    "email": ["a***@example.com", "B***@Shop.io", "***@nolocal.org", "n***", "", None],
    # eight bullets and the last two digits: 0112 -> 12, 5550109987 -> 87; under three digits none kept
    "phone": ["••••••••12", "••••••••87", "••••••••", "••••••••", "", None],
})


@pytest.mark.parametrize("role", ["executive", "analyst"])
def test_roles_without_see_contacts_get_email_and_phone_masked(role):
    assert not sees_contacts(role)
    assert_frame_equal(mask_contacts(CONTACTS, role), MASKED)


@pytest.mark.parametrize("role", ["admin", "manager", "rep"])
def test_roles_that_call_customers_see_them_as_stored(role):
    assert sees_contacts(role)
    assert mask_contacts(CONTACTS, role) is CONTACTS


def test_an_unknown_or_empty_role_is_masked_and_no_role_is_the_trusted_cli():
    assert_frame_equal(mask_contacts(CONTACTS, ""), MASKED)
    assert_frame_equal(mask_contacts(CONTACTS, "intern"), MASKED)
    assert mask_contacts(CONTACTS, None) is CONTACTS
    assert {r for r in ROLES if not sees_contacts(r)} == {"executive", "analyst"}


def test_masking_twice_changes_nothing_more():
    once = mask_contacts(CONTACTS, "analyst")
    assert_frame_equal(mask_contacts(once, "analyst"), once)


def test_only_the_contact_columns_present_are_masked():
    frame = pl.DataFrame({"name": ["Ann"], "phone": ["0049 30 1234567"]})
    assert mask_contacts(frame, "analyst").to_dicts() == [{"name": "Ann", "phone": "••••••••67"}]
    assert masked_columns(frame.columns, "analyst") == ("phone",)
    assert masked_columns(["name"], "analyst") == ()
    assert masking_note(["name", "email", "phone"], "analyst") == "email and phone masked for the analyst role"
    assert masking_note(frame.columns, "executive") == "phone masked for the executive role"
    assert masking_note(["email"], "manager") == ""


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet"])
def test_masked_values_are_formula_neutralised_like_every_cell_and_the_manifest_says_so(fmt):
    frame = mask_contacts(pl.DataFrame({"email": ["=cmd|'/C calc'!A0@evil.example", "+1@x.io"],
                                        "phone": ["-1 555 0100", "@5"]}), "analyst")
    # the first character stays, so a formula start survives masking: the export neutralises it
    assert frame.to_dicts() == [{"email": "=***@evil.example", "phone": "••••••••00"},
                                {"email": "+***@x.io", "phone": "••••••••"}]
    note = masking_note(frame.columns, "analyst")
    manifest = build_manifest("Customers", JUNE, 2, 1, masking=note)
    data = export_bytes(frame, fmt, manifest)  # type: ignore[arg-type]
    back = read_back(data, fmt)  # type: ignore[arg-type]
    expected = ["'=***@evil.example", "'+***@x.io"] if fmt != "parquet" else ["=***@evil.example", "+***@x.io"]
    assert back["email"].to_list() == expected  # Parquet keeps types and values exactly: no spreadsheet reads it
    if fmt != "csv":
        assert read_manifest(data, fmt)["masking"] == "email and phone masked for the analyst role"
    assert "masking" in dict(manifest.as_rows()) and '"masking": "email and phone masked' in manifest.to_json()

