"""Prepared snapshots (crm.snapshot): a restart with unchanged data memory-maps the frames it prepared;
any change of the data (a version bump with its new stamp) or of the preparing code is a new snapshot;
a broken or missing snapshot falls back to the store. The page results kept next to a snapshot (crm.results)
are read back by the next process on the same data state and code, and only then."""

from __future__ import annotations

import dataclasses
from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm import digest, results, snapshot
from crm.dataset import Frames, load_frames
from crm.filters import Filters, Period
from crm.metrics import compute_with_previous, monthly_trend
from crm.narrowing import narrow
from crm.scope import Scope
from crm.settings import ChurnBasis, save_churn_basis
from crm.store import Store

Q2 = Period(date(2026, 4, 1), date(2026, 6, 30))


@pytest.fixture
def store(tmp_path, demo_frames) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'crm.db'}")
    store.replace_business_data(demo_frames)
    return store


@pytest.fixture(autouse=True, params=["written at the end", "written as it loads"])
def spill(request, monkeypatch) -> bool:
    """Both ways of writing a snapshot: a small store's (held, written at the end) and a large one's
    (each table written once read or prepared, and mapped back)."""
    spilling = request.param == "written as it loads"
    monkeypatch.setattr(snapshot, "SPILL_ROWS", -1 if spilling else 10**12)
    return spilling


@pytest.fixture
def folder(tmp_path, monkeypatch):
    path = tmp_path / "snapshots"
    monkeypatch.setenv(snapshot.SNAPSHOT_ENV, str(path))
    return path


def tables(frames: Frames) -> dict[str, pl.DataFrame]:
    return {name: getattr(frames, name) for name in snapshot.table_fields()}


def steps(store: Store) -> tuple[Frames, list[str]]:
    said: list[str] = []
    frames = load_frames(store, progress=lambda fraction, text: said.append(text))
    return frames, said


def test_the_second_load_maps_the_snapshot_and_gives_the_same_frames_and_numbers(store, folder):
    first, said_first = steps(store)
    assert any(s.startswith("Reading table 1 of") for s in said_first)
    assert len([p for p in folder.iterdir() if (p / "complete").is_file()]) == 1
    second, said_second = steps(store)
    assert said_second == [f"Ready: {sum(t.height for t in tables(first).values()):,} prepared rows from the snapshot"]
    for name, table in tables(first).items():
        assert_frame_equal(getattr(second, name), table)
    assert (second.version, second.settings, second.churn_basis) == (first.version, first.settings, first.churn_basis)
    q2 = Filters.create(Q2, scope=Scope())
    assert compute_with_previous(narrow(second, q2), Q2) == compute_with_previous(narrow(first, q2), Q2)
    assert set(snapshot.table_fields()) == {f.name for f in dataclasses.fields(Frames)} - {
        "version", "stamp", "settings", "churn_basis", "_memo", "_masks", "_masks_lock"}


def test_a_change_of_the_data_is_read_from_the_store_and_makes_a_new_snapshot(store, folder):
    steps(store)
    save_churn_basis(store, ChurnBasis.SUBSCRIPTION)  # bumps the version (and the stamp)
    frames, said = steps(store)
    assert any(s.startswith("Preparing") for s in said)  # prepared again: the settings shape the frames
    assert not any(s.startswith("Reading table") for s in said)  # but no table changed: none is read
    assert frames.churn_basis is ChurnBasis.SUBSCRIPTION and frames.version == store.data_version()
    assert len([p for p in folder.iterdir() if (p / "complete").is_file()]) == 2


def test_a_recreated_store_with_the_same_version_never_meets_the_old_snapshot(tmp_path, demo_frames, folder):
    path = tmp_path / "again.db"
    first = Store(f"sqlite:///{path}")
    first.replace_business_data(demo_frames)
    steps(first)
    first.close()
    path.unlink()
    again = Store(f"sqlite:///{path}")
    again.replace_business_data({name: frame.head(3) for name, frame in demo_frames.items()})
    assert again.data_version() == 1
    frames, said = steps(again)
    assert any(s.startswith("Reading table") for s in said) and frames.customers.height == 3


def test_a_broken_snapshot_falls_back_to_the_store_and_off_means_off(store, folder, monkeypatch):
    first, _ = steps(store)
    (made,) = [p for p in folder.iterdir() if (p / "complete").is_file()]
    # replaced, not written over: the frames of the first load are mapped from these files, and a file
    # rewritten in place under a mapping kills its reader (SIGBUS); crm never changes one in place
    (made / "broken").write_bytes(b"not arrow")
    (made / "broken").replace(made / "opportunities.arrow")
    frames, said = steps(store)
    assert any(s.startswith("Preparing") for s in said)  # the prepared tables are not used
    assert_frame_equal(frames.opportunities, first.opportunities)
    monkeypatch.setenv(snapshot.SNAPSHOT_ENV, "off")
    assert snapshot.snapshot_dir() is None
    _, said = steps(store)
    assert any(s.startswith("Reading table") for s in said)


def test_the_snapshot_name_changes_with_the_preparing_code(monkeypatch):
    before = snapshot.snapshot_name(3, "abc")
    monkeypatch.setattr(snapshot, "_PREPARING_CODE", (*snapshot._PREPARING_CODE, "narrowing.py"))
    assert snapshot.snapshot_name(3, "abc") != before
    assert snapshot.snapshot_name(3, "../../etc") .startswith("v3-etc-")


def test_after_a_change_of_one_table_only_that_table_is_read_again(store, folder):
    first, _ = steps(store)
    tickets = first.tickets.head(0)  # a change of the tickets only: drop the last ticket
    last = store.read("tickets").sort("ticket_id").tail(1)["ticket_id"].item()
    with store.transaction() as conn:
        from crm import schema

        for name in ("survey_responses",):
            conn.execute(schema.table(name).update().where(schema.table(name).c.ticket_id == last).values(ticket_id=None))
        conn.execute(schema.tickets.delete().where(schema.tickets.c.ticket_id == last))
        store.bump_version(conn, ["tickets", "survey_responses"])
    frames, said = steps(store)
    read = [s.split(": ")[1].split(" ")[0] for s in said if s.startswith("Reading table")]
    reused = [s.split(": ")[1].split(" ")[0] for s in said if " unchanged (" in s]
    assert read == ["tickets", "survey_responses"]
    assert set(reused) == set(snapshot_tables_read()) - {"tickets", "survey_responses"}
    fresh = load_frames(store, snapshots=False)
    for name, table in tables(fresh).items():
        assert_frame_equal(getattr(frames, name), table)
    assert frames.tickets.height == first.tickets.height - 1 and tickets.height == 0


def snapshot_tables_read() -> list[str]:
    from crm.dataset import COLUMNS

    return list(COLUMNS)


def test_a_first_load_keeps_every_table_in_the_snapshot_and_links_what_preparing_leaves_unchanged(store, folder, spill):
    frames, _ = steps(store)
    fresh = load_frames(store, snapshots=False)
    for name, table in tables(fresh).items():  # the mapped tables hold the same rows as a load in memory
        assert_frame_equal(getattr(frames, name), table)
    (made,) = [p for p in folder.iterdir() if (p / "complete").is_file()]
    assert sorted(p.name for p in made.glob("*.arrow")) == sorted(f"{n}.arrow" for n in snapshot.table_fields())
    raw = sorted(p.name for p in (made / "raw").glob("*.arrow"))
    assert raw == sorted(f"{n}.arrow" for n in snapshot_tables_read())
    # spilling, customers and order items are prepared as read: one file on disk, two names
    for name in ("customers", "order_items"):
        linked = (made / f"{name}.arrow").stat().st_ino == (made / "raw" / f"{name}.arrow").stat().st_ino
        assert linked == spill
    assert (made / "tickets.arrow").stat().st_ino != (made / "raw" / "tickets.arrow").stat().st_ino
    assert not list(folder.glob(".tmp-*"))


def test_a_change_while_loading_leaves_no_snapshot_and_the_load_still_serves(store, folder):
    def bump_while_reading(fraction: float, text: str) -> None:
        if text.startswith("Reading table 3 of"):
            with store.transaction() as conn:
                store.bump_version(conn, ["tickets"])

    frames = load_frames(store, progress=bump_while_reading)
    assert not [p for p in folder.iterdir() if (p / "complete").is_file()] and not list(folder.glob(".tmp-*"))
    fresh = load_frames(store, snapshots=False)
    for name, table in tables(fresh).items():
        assert_frame_equal(getattr(frames, name), table)


def test_a_snapshot_that_cannot_be_written_ends_quietly_and_the_load_serves_from_memory(store, folder, monkeypatch, caplog):
    real = pl.DataFrame.write_ipc
    calls: list[object] = []

    def full_disk(self, file, **kwargs):
        calls.append(file)
        if len(calls) == 4:  # the fourth table: some are mapped already, the rest stay in memory
            raise OSError(28, "No space left on device")
        return real(self, file, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_ipc", full_disk)
    frames, said = steps(store)
    assert said[-1].startswith("Ready: ")
    assert "could not write the snapshot" in caplog.text and "No space left" in caplog.text
    assert not folder.exists() or not any(folder.iterdir())
    monkeypatch.setattr(pl.DataFrame, "write_ipc", real)
    fresh = load_frames(store, snapshots=False)
    for name, table in tables(fresh).items():
        assert_frame_equal(getattr(frames, name), table)


def test_the_unfinished_snapshot_of_a_stopped_server_is_removed_by_the_next_one(store, folder):
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    stale = folder / f".tmp-v1-abc-0123456789ab-{gone.stdout.strip()}-42"
    stale.mkdir(parents=True)
    (stale / "tickets.arrow").write_bytes(b"half written")
    steps(store)
    assert not stale.exists()
    assert len([p for p in folder.iterdir() if (p / "complete").is_file()]) == 1


def test_the_app_gets_its_frames_before_a_small_store_s_snapshot_is_on_disk(store, folder, spill):
    import threading

    frames = load_frames(store, save_in_background=True)
    writers = [t for t in threading.enumerate() if t.name.startswith("crm-snapshot-v")]
    assert bool(writers) != spill  # a large store's snapshot is written while loading, before the frames return
    for thread in writers:
        thread.join(timeout=60)
    assert len([p for p in folder.iterdir() if (p / "complete").is_file()]) == 1
    again, said = steps(store)
    assert said[-1].endswith("prepared rows from the snapshot")
    for name, table in tables(frames).items():
        assert_frame_equal(getattr(again, name), table)


# --- page results kept next to the snapshot (crm.results): a restart on unchanged data reads the numbers an
# earlier process computed; a change of the data, of the code or of the view computes again; anything
# unreadable or unkeepable is computed, as without them.

VIEW = Filters.create(Q2, scope=Scope())
EUROPE = Filters.create(Q2, regions=["Europe"], scope=Scope())


class Counted:
    """A computation that counts its calls."""

    def __init__(self, frames: Frames, filters: Filters, what: str = "kpis") -> None:
        self.frames, self.filters, self.what, self.calls = frames, filters, what, 0

    def __call__(self) -> object:
        self.calls += 1
        ds = narrow(self.frames, self.filters)
        if self.what == "kpis":
            return compute_with_previous(ds, self.filters.period)
        return monthly_trend(ds, self.filters.period, 12)


def keep(frames: Frames, filters: Filters, what: str = "kpis") -> tuple[object, int]:
    compute = Counted(frames, filters, what)
    value = results.kept(frames.version, frames.stamp, what, (filters,), compute)
    return value, compute.calls


def test_a_restart_reads_the_numbers_the_last_process_computed(store, folder):
    first = load_frames(store)
    assert first.stamp == store.data_state()[1]
    kpis, calls = keep(first, VIEW)
    trend, trend_calls = keep(first, VIEW, "trend")
    assert (calls, trend_calls) == (1, 1)
    kept_files = sorted(p.suffix for p in folder.glob("*/results-*/*"))
    assert kept_files == [".arrow", ".json"]

    restarted = load_frames(store)  # maps the snapshot, as a restarted server does
    again, calls = keep(restarted, VIEW)
    trend_again, trend_calls = keep(restarted, VIEW, "trend")
    assert (calls, trend_calls) == (0, 0)
    assert again == kpis == compute_with_previous(narrow(restarted, VIEW), Q2)
    assert isinstance(trend, pl.DataFrame) and isinstance(trend_again, pl.DataFrame)
    assert_frame_equal(trend_again, trend)
    assert_frame_equal(trend_again, monthly_trend(narrow(restarted, VIEW), Q2, 12))

    _, calls = keep(restarted, EUROPE)  # another view: computed
    assert calls == 1


def test_a_change_of_the_data_computes_again(store, folder):
    before = load_frames(store)
    keep(before, VIEW)
    save_churn_basis(store, ChurnBasis.SUBSCRIPTION)  # a settings change bumps the data version
    after = load_frames(store)
    assert (after.version, after.stamp) != (before.version, before.stamp)
    value, calls = keep(after, VIEW)
    assert calls == 1
    assert value == compute_with_previous(narrow(after, VIEW), Q2)


def test_a_change_of_the_code_computes_again(store, folder, monkeypatch):
    frames = load_frames(store)
    keep(frames, VIEW)
    monkeypatch.setattr(results, "code_fingerprint", lambda: "another-release")
    _, calls = keep(frames, VIEW)
    assert calls == 1


def test_nothing_is_kept_without_a_complete_snapshot(store, folder, monkeypatch):
    monkeypatch.setenv(snapshot.SNAPSHOT_ENV, "off")
    frames = load_frames(store)
    assert frames.stamp is None
    assert [keep(frames, VIEW)[1] for _ in range(2)] == [1, 1]
    monkeypatch.setenv(snapshot.SNAPSHOT_ENV, str(folder))
    older = load_frames(store, version=store.data_version() - 1)  # another state than the store's: no snapshot
    assert older.stamp is None


def test_an_unreadable_result_is_computed_again_and_replaced(store, folder, caplog):
    frames = load_frames(store)
    kpis, _ = keep(frames, VIEW)
    (kept_file,) = folder.glob("*/results-*/kpis-*.json")
    kept_file.write_text('{"not": "a pair"')
    value, calls = keep(frames, VIEW)
    assert (value, calls) == (kpis, 1)
    assert "could not be read" in caplog.text
    assert keep(frames, VIEW) == (kpis, 0)


def test_large_tables_and_unkeyable_arguments_are_computed_each_time(store, folder, monkeypatch):
    frames = load_frames(store)
    monkeypatch.setattr(results, "LARGEST_KEPT_ROWS", 5)
    counts = []
    for _ in range(2):
        compute = Counted(frames, VIEW, "trend")  # 12 rows
        results.kept(frames.version, frames.stamp, "trend", (VIEW,), compute)
        counts.append(compute.calls)
        compute = Counted(frames, VIEW)
        results.kept(frames.version, frames.stamp, "kpis", (object(),), compute)  # no exact key
        counts.append(compute.calls)
    assert counts == [1, 1, 1, 1]
    assert not list(folder.glob("*/results-*/*"))


def test_keys_tell_views_and_options_apart():
    canonical = digest.digest
    assert canonical((VIEW,)) == canonical((Filters.create(Q2, scope=Scope()),))
    assert canonical((VIEW,)) != canonical((EUROPE,))
    assert canonical((VIEW,)) != canonical((Filters.create(Q2, scope=Scope(regions=("Europe",))),))
    assert canonical((1,)) != canonical((1.0,)) != canonical(("1",))
    with pytest.raises(digest.Undigestable):
        canonical((object(),))
