"""Duplicate customers: which pairs are candidates and why, merging them, and undoing a merge exactly.

Scores are worked out by hand: RapidFuzz's ratio is 100 × 2 × (longest common
subsequence) / (sum of the lengths), over the names case-folded, punctuation
as spaces and words sorted.
"""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from crm import schema
from crm.cli import main
from crm.duplicates import (
    CANDIDATE_SCHEMA,
    REFERENCING_TABLES,
    MergeError,
    _email_keys,
    duplicate_candidates,
    merge_customers,
    merge_history,
    normalise_email,
    normalise_phone,
    phone_region,
    undo_merge,
)
from crm.store import Store
from tests.unit.importing import assert_same_state, state


def customers(*rows: tuple[str, str | None, str | None, str | None, str | None, str | None]) -> pl.DataFrame:
    """(customer_id, name, email, phone, country, city) rows."""
    return pl.DataFrame(rows, schema=["customer_id", "name", "email", "phone", "country", "city"], orient="row")


def pairs(frame: pl.DataFrame) -> list[tuple[str, str, float, str]]:
    return sorted(frame.select("customer_id", "other_id", "score", "reason").rows())


# --- candidates -------------------------------------------------------------------


def test_the_same_email_written_with_other_case_and_spaces():
    found = duplicate_candidates(customers(
        ("C2", "Zeta", "  Sales@Acme.COM ", None, "GB", "London"),
        ("C1", "Acme", "sales@acme.com", None, "DE", "Berlin"),
        ("C3", "Other", "sales@acme.co", None, "GB", "London"),
    ))
    assert pairs(found) == [("C1", "C2", 100.0, "same email")]  # lower id first
    row = found.row(0, named=True)
    assert (row["name"], row["other_name"], row["same_email"], row["same_phone"]) == ("Acme", "Zeta", True, False)
    assert row["name_score"] == 25.0  # "acme" / "zeta": one letter in common, 2 × 1 / 8


def test_the_same_phone_with_and_without_the_country_code():
    found = duplicate_candidates(customers(
        ("A", "Northwind", None, "+44 20 7946 0958", "GB", None),
        ("B", "Contoso", None, "020 7946 0958", "GB", None),
        ("C", "Fabrikam", None, "020 7946 0958", "DE", None),  # read in Germany: another number
        ("D", "Tailspin", None, "(020) 7946-0958", "United Kingdom", None),
    ))
    assert pairs(found) == [("A", "B", 95.0, "same phone"), ("A", "D", 95.0, "same phone"), ("B", "D", 95.0, "same phone")]


def test_names_alike_in_one_city_and_not_across_places():
    found = duplicate_candidates(customers(
        ("1", "Acme Ltd", None, None, "GB", "London"),
        ("2", "ACME Ltd.", None, None, "GB", "london "),
        ("3", "Acme Ltd", None, None, "GB", "Leeds"),  # another city
        ("4", "Globex", None, None, "France", None),
        ("5", "Globex", None, None, "Germany", None),  # another country, no city
        ("6", "Initech", None, None, "GB", "London"),
        ("7", "Initech", None, None, "CA", "London"),  # London, Ontario
        ("8", "Hooli", None, None, "GB", None),
        ("9", "Hooli", None, None, "United Kingdom", ""),  # the same country, written two ways
    ))
    assert pairs(found) == [("1", "2", 100.0, "similar name in London"), ("8", "9", 100.0, "similar name in GB")]


def test_the_threshold_decides_on_the_name_score():
    people = customers(
        ("A", "Jonson Plumbing", None, None, "US", "Austin"),
        ("B", "Johnson Plumbing", None, None, "US", "Austin"),
        ("C", "Plumbing Johnson", None, None, "US", "Austin"),
        ("D", "Johnson Electric", None, None, "US", "Austin"),
    )
    # "jonson plumbing" (15) / "johnson plumbing" (16): 15 in common, 2 × 15 / 31 = 96.77; B and C: same words
    assert pairs(duplicate_candidates(people)) == [
        ("A", "B", 96.8, "similar name in Austin"), ("A", "C", 96.8, "similar name in Austin"),
        ("B", "C", 100.0, "similar name in Austin")]
    assert pairs(duplicate_candidates(people, threshold=97)) == [("B", "C", 100.0, "similar name in Austin")]
    # "electric johnson" / "johnson plumbing": 7 in common ("johnson"), 2 × 7 / 32 = 43.75;
    # "electric johnson" / "jonson plumbing": 6 ("jonson"), 2 × 6 / 31 = 38.7
    assert pairs(duplicate_candidates(people, threshold=40)) == [
        ("A", "B", 96.8, "similar name in Austin"), ("A", "C", 96.8, "similar name in Austin"),
        ("B", "C", 100.0, "similar name in Austin"), ("B", "D", 43.8, "similar name in Austin"),
        ("C", "D", 43.8, "similar name in Austin")]
    with pytest.raises(ValueError, match="from 0 to 100"):
        duplicate_candidates(people, threshold=101)


def test_names_with_different_numbers_are_different_customers():
    found = duplicate_candidates(customers(
        ("A", "Blue Labs Inc 12", None, None, "US", "Austin"),
        ("B", "Blue Labs Inc 13", None, None, "US", "Austin"),
        ("C", "Blue Labs Inc. 12", None, None, "US", "Austin"),
        ("D", "Blue Labs Inc", None, None, "US", "Austin"),  # no number: alike to all of them by score
    ))
    # "blue inc labs" (13) / "12 blue inc labs" (16): 13 in common, 2 × 13 / 29 = 89.66, under 90
    assert pairs(found) == [("A", "C", 100.0, "similar name in Austin")]
    lower = duplicate_candidates(customers(("A", "Blue Labs Inc 12", None, None, "US", "Austin"),
                                           ("D", "Blue Labs Inc", None, None, "US", "Austin")), threshold=89)
    assert pairs(lower) == [("A", "D", 89.7, "similar name in Austin")]


def test_several_signals_make_one_row_with_every_reason():
    found = duplicate_candidates(customers(
        ("K1", "Acme Ltd", "ops@acme.io", "+1 512 555 0100", "US", "Austin"),
        ("K2", "ACME LTD", "OPS@acme.io", "(512) 555-0100", "US", "Austin"),
    ))
    assert pairs(found) == [("K1", "K2", 100.0, "same email; same phone; similar name in Austin")]
    assert found.row(0, named=True)["same_phone"] is True


def test_placeholders_invalid_values_and_empty_input_pair_no_one():
    shared = customers(*[(f"P{i}", f"Person {i}", "none@none.com", "not a number", "US", f"Town {i}") for i in range(3)],
                       ("Q1", "Quinn", "not-an-address", None, "US", "Reno"),
                       ("Q2", "Rhys", "not-an-address", None, "US", "Elko"))
    assert pairs(duplicate_candidates(shared, max_shared=2)) == []  # three share the address: a placeholder
    assert pairs(duplicate_candidates(shared)) == [("P0", "P1", 100.0, "same email"), ("P0", "P2", 100.0, "same email"),
                                                   ("P1", "P2", 100.0, "same email")]
    empty = duplicate_candidates(customers())
    assert empty.height == 0 and empty.schema == CANDIDATE_SCHEMA
    only_names = pl.DataFrame({"customer_id": ["A", "B"], "name": ["Acme", "Acme"], "city": ["Oslo", "Oslo"]})
    assert pairs(duplicate_candidates(only_names)) == [("A", "B", 100.0, "similar name in Oslo")]


def test_normal_forms():
    assert normalise_email("  Sales@Example.COM ") == "sales@example.com"
    assert normalise_email("no-at-sign") is None and normalise_email("   ") is None and normalise_email(None) is None
    assert normalise_phone("+44 20 7946 0958") == normalise_phone("020 7946 0958", "GB") == "+442079460958"
    assert normalise_phone("+44 (0) 20 7946 0958") == "+442079460958"
    assert normalise_phone("020 7946 0958 ext. 12", "United Kingdom") == "+442079460958;ext=12"
    assert normalise_phone("020 7946 0958") is None  # no country to read it in
    assert normalise_phone("123", "US") is None
    assert [phone_region(c) for c in ("gb", "UK", "Germany", "United States", "Narnia", " ", None)] == [
        "GB", "GB", "DE", "US", None, None, None]


def test_the_demo_names_differ_in_their_numbers_so_no_demo_pair_is_a_name_pair():
    from crm import demo

    frame = demo.generate(demo.DemoSpec(seed=7, scale=1))["customers"]
    assert frame.height == 2_000
    found = duplicate_candidates(frame)  # "Blue Analytics Inc 12" / "... 13": 95.2 without the number rule
    assert found.filter(pl.col("reason").str.contains("similar name")).height == 0
    assert found.filter(~pl.col("same_email") & ~pl.col("same_phone")).height == 0  # only chance collisions of numbers
    assert found.height <= 5


_ADDRESS = st.builds(  # spellings whose normal forms meet: case, NFC, the Kelvin sign, full-width letters, punycode
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.sampled_from(["a", "A", "k", "K", "\u212a", "\u00e9", "e\u0301", "a.b", "a..b", '"a"', "ä"]),
    st.sampled_from(["b", "B", "\uff42", "xn--bcher-kva", "bücher", "BÜCHER", "b-", "xn--b"]),
    st.sampled_from(["com", "COM", "\uff43om"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(_ADDRESS, min_size=2, max_size=6))
def test_the_email_shortcut_finds_the_pairs_that_normalising_everything_finds(addresses):
    """Only addresses whose normal form can equal another customer's go through email-validator; the same
    customers share a key as when every address is normalised."""
    def groups(keys: dict[str, str | None]) -> set[frozenset[int]]:
        by_key: dict[str, set[int]] = {}
        for customer, address in enumerate(addresses):
            key = keys.get(address)
            if key is not None:
                by_key.setdefault(key, set()).add(customer)
        return {frozenset(g) for g in by_key.values() if len(g) > 1}

    quick = dict(_email_keys(pl.Series(addresses, dtype=pl.String)).iter_rows())
    assert groups(quick) == groups({a: normalise_email(a) for a in addresses})


# --- merge and undo ------------------------------------------------------------------


def _frames() -> dict[str, pl.DataFrame]:
    t = datetime(2026, 3, 2, 9, 30, 15, 123456)
    return {
        "customers": pl.DataFrame({
            "customer_id": ["A", "B", "C", "D"],
            "name": ["Acme Ltd", "ACME Ltd.", 'Acme "North" 北京', "Delta"],
            "email": ["ops@acme.io", "OPS@acme.io", None, "d@delta.example"],
            "phone": ["+1 512 555 0100", None, "", "+49 30 1234567"],
            "country": ["US", "US", "US", "DE"], "city": ["Austin", "Austin", None, "Berlin"],
            "segment": ["SMB", None, "SMB", "Enterprise"],
            "created_at": [datetime(2025, 1, 1), t, None, datetime(2024, 5, 6, 7, 8, 9)],
            "import_batch": [None, 7, None, None],
        }, schema_overrides={"import_batch": pl.Int64}),
        "pipeline_stages": pl.DataFrame({"stage": ["lead", "won", "lost"], "position": [1, 2, 3],
                                         "win_probability": [0.1, 1.0, 0.0], "kind": ["open", "won", "lost"]}),
        "opportunities": pl.DataFrame({"opportunity_id": ["O1", "O2", "O3", "O4"], "customer_id": ["A", "B", "C", None],
                                       "amount": [100.0, 250.5, 0.0, 7.25], "created_at": [t] * 4,
                                       "status": ["won", "open", "lost", "open"]}),
        "opportunity_stages": pl.DataFrame({"opportunity_id": ["O1", "O2"], "stage": ["won", "lead"], "entered_at": [t, t]}),
        "orders": pl.DataFrame({"order_id": ["R1", "R2", "R3"], "customer_id": ["B", "C", "A"], "ordered_at": [t] * 3,
                                "amount": [10.0, 20.0, 30.0]}),
        "order_items": pl.DataFrame({"order_id": ["R1", "R2"], "product": ["Suite", "Suite"], "quantity": [1, 2],
                                     "amount": [10.0, 20.0]}),
        "tickets": pl.DataFrame({"ticket_id": ["T1", "T2"], "customer_id": ["B", "D"], "created_at": [t, t],
                                 "priority": ["high", "low"]}),
        "survey_responses": pl.DataFrame({"response_id": ["S1", "S2"], "customer_id": ["B", "C"], "ticket_id": ["T1", None],
                                          "kind": ["nps", "csat"], "score": [9.0, 4.0], "responded_at": [t, t]}),
        "interactions": pl.DataFrame({"interaction_id": ["I1", "I2", "I3"], "customer_id": ["C", "B", "D"],
                                      "opportunity_id": ["O3", None, None], "kind": ["call", "email", "meeting"],
                                      "occurred_at": [t] * 3}),
    }


def _owners(store: Store) -> dict[str, dict[str, str | None]]:
    """table -> row key -> customer id, for every table that names customers."""
    out = {}
    for name in REFERENCING_TABLES:
        key = schema.primary_key(name)
        assert key is not None
        out[name] = dict(store.read_table(name, [key, "customer_id"], path="sqlalchemy").frame.rows())
    return out


AFTER_MERGE = {  # A keeps; B's and C's rows are A's now; O4 has no customer, D is not involved
    "opportunities": {"O1": "A", "O2": "A", "O3": "A", "O4": None},
    "orders": {"R1": "A", "R2": "A", "R3": "A"},
    "tickets": {"T1": "A", "T2": "D"},
    "survey_responses": {"S1": "A", "S2": "A"},
    "interactions": {"I1": "A", "I2": "A", "I3": "D"},
}


def _merge_and_undo(store: Store) -> None:
    store.replace_business_data(_frames())
    before = state(store)
    merged = merge_customers(store, "A", ["B", "C", "B"], actor="ana")
    assert (merged.kept_id, merged.merged_ids, merged.data_version) == ("A", ("B", "C"), before[1] + 1)
    assert merged.repointed == {"opportunities": 2, "orders": 2, "tickets": 1, "survey_responses": 2, "interactions": 2}
    assert _owners(store) == AFTER_MERGE
    assert sorted(store.read("customers")["customer_id"]) == ["A", "D"]
    after_merge = state(store)
    for name in ("pipeline_stages", "opportunity_stages", "order_items"):
        assert_frame_equal(after_merge[0][name], before[0][name])
    assert_frame_equal(after_merge[0]["customers"].filter(pl.col("customer_id") == "A"),
                       before[0]["customers"].filter(pl.col("customer_id") == "A"))  # the kept row is untouched
    history = merge_history(store)
    assert history.select("id", "actor", "kept_id", "merged_ids", "repointed", "undone_at").rows() == [
        (merged.merge_id, "ana", "A", "B, C", 9, None)]

    undone = undo_merge(store, merged.merge_id, actor="ben")
    assert (undone.restored_ids, undone.repointed, undone.data_version) == (("B", "C"), merged.repointed, before[1] + 2)
    after = state(store)
    assert after[1] == before[1] + 2
    assert_same_state(before, (after[0], before[1]))  # every table row for row, values and dtypes
    assert merge_history(store).select("undone_at", "undone_by").row(0)[1] == "ben"


def test_a_merge_repoints_every_row_and_its_undo_restores_the_store_exactly(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'crm.db'}") as store:
        _merge_and_undo(store)


@pytest.mark.postgres
def test_a_merge_and_its_undo_on_postgresql(new_pg_url, tmp_path):
    with Store(new_pg_url()) as pg, Store(f"sqlite:///{tmp_path / 'crm.db'}") as lite:
        _merge_and_undo(pg)
        _merge_and_undo(lite)
        pg_state, lite_state = state(pg), state(lite)
        for name, frame in lite_state[0].items():
            assert_frame_equal(pg_state[0][name], frame)
        assert_frame_equal(pg.read("customers").sort("customer_id"), lite.read("customers").sort("customer_id"))


def test_refused_merges_change_nothing(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'crm.db'}") as store:
        store.replace_business_data(_frames())
        before = state(store)
        for keep, others, message in [
            ("A", ["B", "Z", "Y"], "no customer Z, Y; nothing was merged"),
            ("Q", ["B"], "no customer Q; nothing was merged"),
            ("A", ["B", "A"], "customer A cannot be merged into itself"),
            ("A", [], "name at least one customer to merge into A"),
        ]:
            with pytest.raises(MergeError, match=f"^{message}$"):
                merge_customers(store, keep, others)
        assert_same_state(before, state(store))
        assert merge_history(store).height == 0


def test_undo_in_order_and_refusals(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'crm.db'}") as store:
        store.replace_business_data(_frames())
        original = state(store)
        first = merge_customers(store, "A", ["B"])
        second = merge_customers(store, "D", ["A"])  # moves B's former rows on to D
        assert _owners(store)["orders"] == {"R1": "D", "R2": "C", "R3": "D"}
        held = state(store)
        with pytest.raises(MergeError, match=f"^merge {second.merge_id} changed the same customers after merge "
                                             f"{first.merge_id}: undo it first$"):
            undo_merge(store, first.merge_id)
        assert_same_state(held, state(store))
        undo_merge(store, second.merge_id)
        with pytest.raises(MergeError, match=f"^merge {second.merge_id} was already undone on "):
            undo_merge(store, second.merge_id)
        with pytest.raises(MergeError, match=r"^there is no merge 99$"):
            undo_merge(store, 99)
        undo_merge(store, first.merge_id)
        assert_same_state(original, (state(store)[0], original[1]))


def test_undo_refuses_when_the_store_changed_under_the_merge(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'crm.db'}") as store:
        store.replace_business_data(_frames())
        merged = merge_customers(store, "A", ["B", "C"])
        with store.transaction() as conn:  # an order of C's was given to D since
            conn.execute(schema.orders.update().where(schema.orders.c.order_id == "R2").values(customer_id="D"))
        moved = state(store)
        with pytest.raises(MergeError, match=f"^1 of the 2 orders rows merge {merged.merge_id} moved to A were deleted or "
                                             r"moved since; it cannot be undone exactly \(nothing was changed\)$"):
            undo_merge(store, merged.merge_id)
        assert_same_state(moved, state(store))
        with store.transaction() as conn:
            conn.execute(schema.orders.update().where(schema.orders.c.order_id == "R2").values(customer_id="A"))
            conn.execute(schema.customers.insert().values(customer_id="C", name="C again"))
        with pytest.raises(MergeError, match=f"^customer C exists again since merge {merged.merge_id}; it cannot be undone$"):
            undo_merge(store, merged.merge_id)
        store.replace_business_data(_frames())  # a demo reload brings every id back
        with pytest.raises(MergeError, match=r"^customers B, C exist again"):
            undo_merge(store, merged.merge_id)


def test_every_table_that_names_customers_has_a_key_to_record_a_merge():
    assert set(REFERENCING_TABLES) == {"opportunities", "orders", "tickets", "survey_responses", "interactions"}
    assert all(schema.primary_key(name) for name in REFERENCING_TABLES)
    assert all("customer_id" not in schema.table(name).c for name in ("opportunity_stages", "order_items", "pipeline_stages"))


# --- command line -------------------------------------------------------------------------


def test_the_customers_commands(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    with Store(db) as store:
        store.replace_business_data(_frames())
    assert main(["--db", db, "customers", "duplicates"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "customer_id,other_id,score,reason,name,other_name,same_email,same_phone,name_score",
        "A,B,100.0,same email; similar name in Austin,Acme Ltd,ACME Ltd.,true,false,100.0"]
    assert err == "1 candidate pair(s) among 4 customer(s) (names alike from 90)\n"
    assert main(["--db", db, "customers", "duplicates", "--json", "--threshold", "0"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["customer_id"], r["other_id"]) for r in rows] == [("A", "B")]  # C has no city, D is in Berlin

    assert main(["--db", db, "customers", "merges"]) == 0
    assert capsys.readouterr() == ("", "no merges yet\n")
    assert main(["--db", db, "customers", "merge", "A", "B", "C"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("merge 1: kept A, merged B, C; repointed 2 opportunities, 2 orders, 1 tickets, "
                          "2 survey_responses, 2 interactions; data version ")
    assert main(["--db", db, "customers", "merges"]) == 0
    history = capsys.readouterr().out.splitlines()
    assert history[0] == "id,at,actor,kept_id,merged_ids,repointed,undone_at,undone_by"
    assert history[1].startswith("1,") and history[1].endswith(',A,"B, C",9,,')
    assert main(["--db", db, "customers", "unmerge", "1"]) == 0
    assert capsys.readouterr().err.startswith("merge 1 undone: restored B, C; pointed back 2 opportunities")

    for argv, code, message in [
        (["customers", "unmerge", "1"], 1, "error: merge 1 was already undone on "),
        (["customers", "merge", "A", "NOPE"], 1, "error: no customer NOPE; nothing was merged"),
        (["customers", "merge", "A", "A"], 1, "error: customer A cannot be merged into itself"),
        (["customers", "unmerge", "7"], 1, "error: there is no merge 7"),
    ]:
        assert main(["--db", db, *argv]) == code
        captured = capsys.readouterr()
        assert captured.err.startswith(message) and len(captured.err.strip().splitlines()) == 1, captured.err
    for argv in (["customers", "duplicates", "--threshold", "150"], ["customers", "merge", "A"],
                 ["customers", "unmerge", "x"], ["customers"]):
        with pytest.raises(SystemExit) as exit_:
            main(["--db", db, *argv])
        assert exit_.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


def test_duplicates_on_a_store_without_tables(tmp_path, capsys):
    assert main(["--db", f"sqlite:///{tmp_path / 'new.db'}", "customers", "duplicates"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == ",".join(CANDIDATE_SCHEMA) and err.startswith("0 candidate pair(s) among 0 customer(s)")


def test_a_refused_write_is_a_merge_error(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'crm.db'}") as store:
        store.replace_business_data(_frames())
        with store.transaction() as conn:
            conn.execute(sa.text("CREATE TRIGGER no_moves BEFORE UPDATE ON orders "
                                 "BEGIN SELECT RAISE(ABORT, 'orders are frozen'); END"))
        before = state(store)
        with pytest.raises(MergeError, match=r"^the database refused the merge \(orders are frozen\); nothing was changed$"):
            merge_customers(store, "A", ["B"])
        assert_same_state(before, state(store))
