"""The demo data: deterministic, ends on the as-of date, and has the structure the pages rely on."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm import demo
from crm.dataset import enrich
from tests.conftest import AS_OF

END = datetime.combine(AS_OF + timedelta(days=1), datetime.min.time())


@pytest.fixture(scope="module")
def data(demo_frames):
    return demo_frames


def test_same_seed_same_data_other_seed_other_data(data):
    again = demo.generate(demo.DemoSpec(seed=11, scale=0.25, as_of=AS_OF))
    for name, frame in data.items():
        assert_frame_equal(frame, again[name])
    other = demo.generate(demo.DemoSpec(seed=12, scale=0.25, as_of=AS_OF))
    assert not other["opportunities"]["amount"].equals(data["opportunities"]["amount"])


def test_nothing_is_stamped_after_the_as_of_date(data):
    stamps = {
        "opportunities": ["created_at", "closed_at"], "opportunity_stages": ["entered_at"],
        "orders": ["ordered_at"], "tickets": ["created_at", "first_response_at", "resolved_at"],
        "survey_responses": ["responded_at"], "interactions": ["occurred_at", "completed_at"],
    }
    for table, columns in stamps.items():
        for column in columns:
            latest = data[table][column].max()
            assert latest is not None and latest < END, (table, column)
    # and the data reaches the last days, so "last 30 days" is full
    assert data["tickets"]["created_at"].max() >= END - timedelta(days=3)
    assert data["orders"]["ordered_at"].max() >= END - timedelta(days=3)


def test_scale_multiplies_the_size():
    small = demo.generate(demo.DemoSpec(seed=1, scale=0.1, as_of=date(2026, 1, 31)))
    assert small["opportunities"].height == 1_000 and small["tickets"].height == 1_000
    assert small["customers"].height == 200


def _win_rate(frame: pl.DataFrame) -> float:
    closed = frame.filter(pl.col("status").is_in(["won", "lost"]))
    return (closed["status"] == "won").mean()


def test_groups_really_differ(data):
    opps = data["opportunities"]
    europe = _win_rate(opps.filter(pl.col("region") == "Europe"))
    others = _win_rate(opps.filter(pl.col("region") != "Europe"))
    assert europe > others * 1.2

    tickets = enrich(dict(data)).tickets
    median = tickets.group_by("team").agg(pl.col("first_response_hours").median()).sort("first_response_hours")
    assert median["team"][-1] == "Technical"

    csat = data["survey_responses"].filter(pl.col("kind") == "csat").group_by("product").agg(
        (pl.col("score") >= 4).mean().alias("csat")
    ).sort("csat")
    assert csat["product"][0] == "Data Connect"


def test_realistic_messiness(data):
    tickets = data["tickets"]
    never = tickets.filter(pl.col("first_response_at").is_null() & pl.col("resolved_at").is_null())
    assert never.height > 0
    assert tickets.filter(pl.col("resolved_at").is_null()).height > 0
    assert set(tickets["priority"].unique()) == {"urgent", "high", "normal", "low"}
    opps = data["opportunities"]
    assert set(opps["status"].unique()) == {"open", "won", "lost"}
    assert opps.filter(pl.col("status") == "lost")["lost_reason"].null_count() == 0
    # some deals skip a stage: a history that jumps two positions
    positions = {"lead": 1, "qualified": 2, "proposal": 3, "negotiation": 4}
    hist = data["opportunity_stages"].filter(pl.col("stage").is_in(list(positions))).with_columns(
        pos=pl.col("stage").replace_strict(positions)
    ).sort("opportunity_id", "entered_at")
    jumps = hist.with_columns(step=pl.col("pos").diff().over("opportunity_id")).filter(pl.col("step") >= 2)
    assert jumps.height > 0
    # churned customers come back: a gap of more than 90 days between two orders of one customer
    gaps = data["orders"].sort("customer_id", "ordered_at").with_columns(
        gap=pl.col("ordered_at").diff().over("customer_id").dt.total_days()
    )
    assert gaps.filter(pl.col("gap") > 90).height > 0
    # surveys point at real tickets and customers
    csat = data["survey_responses"].filter(pl.col("kind") == "csat")
    assert csat.join(tickets, on="ticket_id", how="anti").height == 0
    # order items add up to their orders
    totals = data["order_items"].group_by("order_id").agg(pl.col("amount").sum())
    joined = data["orders"].join(totals, on="order_id", suffix="_items")
    assert (joined["amount"] - joined["amount_items"]).abs().max() < 0.005
