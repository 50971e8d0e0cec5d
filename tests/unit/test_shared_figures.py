"""crm.charts.shared: a figure is built once for the same inputs and handed to every session after; other
inputs build their own; inputs it cannot digest exactly are built every time."""

from __future__ import annotations

import plotly.io as pio
import polars as pl

from crm import charts, digest


def counting() -> tuple[list[object], object]:
    calls: list[object] = []

    @charts.shared
    def build(frame: pl.DataFrame, title: str, picked: set[str] | None = None) -> dict:
        calls.append((frame, title))
        return {"rows": frame.height, "title": title}

    return calls, build


def test_equal_inputs_share_one_figure_and_different_ones_do_not():
    calls, build = counting()
    first = build(pl.DataFrame({"a": [1, 2]}), "Deals")
    again = build(pl.DataFrame({"a": [1, 2]}), title="Deals")  # another session's copy of the same result
    assert len(calls) == 1 and again is first
    assert build(pl.DataFrame({"a": [1, 3]}), "Deals") is not first  # one value differs
    assert build(pl.DataFrame({"a": [1.0, 2.0]}), "Deals") is not first  # same numbers, another type
    assert build(pl.DataFrame({"b": [1, 2]}), "Deals") is not first  # another column
    assert build(pl.DataFrame({"a": [1, 2]}), "Deals", {"x"}) is not first
    assert build(pl.DataFrame({"a": [1, 2]}), "Deals", {"x"}) is build(pl.DataFrame({"a": [1, 2]}), "Deals", {"x"})
    assert len(calls) == 5


def test_a_large_collection_is_not_digested_and_builds_each_time():
    calls, build = counting()
    many = {f"C{i}" for i in range(digest.LARGEST_DIGESTED + 1)}
    one = build(pl.DataFrame({"a": [1]}), "Deals", many)
    two = build(pl.DataFrame({"a": [1]}), "Deals", many)
    assert one == two and one is not two and len(calls) == 2


def test_only_the_newest_figures_are_kept(monkeypatch):
    monkeypatch.setattr(charts, "SHARED_FIGURES", 2)
    calls, build = counting()
    for n in (1, 2, 3):
        build(pl.DataFrame({"a": [n]}), "x")
    build(pl.DataFrame({"a": [3]}), "x")
    assert len(calls) == 3  # the newest is still kept
    build(pl.DataFrame({"a": [1]}), "x")
    assert len(calls) == 4  # the oldest was dropped


def test_a_shared_builder_draws_what_the_builder_draws():
    trend = pl.DataFrame({"stage": ["lead", "qualified"], "median_days": [3.5, 7.0], "p75_days": [5.0, 9.5]})
    built = charts.build_velocity_chart.__wrapped__(trend)
    assert pio.to_json(charts.build_velocity_chart(trend.clone())) == pio.to_json(built)


def test_a_frame_is_written_out_once_while_it_lives_and_equal_frames_digest_alike(monkeypatch):
    writes = []
    real = pl.DataFrame.write_ipc

    def counting(self, *args, **kwargs):
        writes.append(self.shape)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_ipc", counting)
    frame = pl.DataFrame({"month": ["2026-01", "2026-02"], "revenue": [10.0, 12.5]})
    first = digest.digest({"frame": frame, "title": "x"})
    assert digest.digest({"frame": frame, "title": "x"}) == first
    assert len(writes) == 1  # the second digest of the same live frame is a lookup
    assert digest.digest({"frame": frame.clone(), "title": "x"}) == first  # a copy: written, same digest
    assert digest.digest({"frame": frame.with_columns(pl.col("revenue") + 1), "title": "x"}) != first
    assert len(writes) == 3


def test_a_frame_that_is_gone_leaves_no_digest_behind():
    import gc

    frame = pl.DataFrame({"a": [1, 2, 3]})
    key = id(frame)
    digest.digest(frame)
    assert (key, "digest") in digest._PER_FRAME
    del frame
    gc.collect()
    assert (key, "digest") not in digest._PER_FRAME


def test_the_stages_of_one_configuration_frame_are_read_once_and_another_frame_reads_its_own():
    from crm.metrics.funnel import stage_set

    config = pl.DataFrame({"stage": ["qualify", "won", "propose", "lost"], "position": [1, 4, 2, 5],
                           "kind": ["open", "won", "open", "lost"], "win_probability": [0.1, 1.0, 0.4, 0.0]})
    first = stage_set(config)
    assert stage_set(config) is first  # the same live frame: worked out once
    assert first.open == ("qualify", "propose") and first.won == "won"
    other = config.with_columns(pl.when(pl.col("stage") == "won").then(pl.lit("signed")).otherwise(pl.col("stage"))
                                .alias("stage"))
    assert stage_set(other).won == "signed" and stage_set(other).steps == ("qualify", "propose", "signed")
