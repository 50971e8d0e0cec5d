"""Seeded synthetic CRM data for the embedded demo store.

``generate(seed, scale, as_of)`` returns one Polars frame per canonical table.
The same seed and as-of date give the same data on every store. About two
years of history end on ``as_of`` (nothing is stamped later), with growth,
seasonality and groups that really differ:

- Europe converts better; Team Cirrus (APAC/LatAm) sells slower;
- the Technical support team answers and resolves slower, and one Tier 1
  agent is slow; weekend tickets wait for Monday;
- the product "Data Connect" has more tickets and worse CSAT and NPS;
- enterprise customers order less often but more, and churn less; some
  churned customers come back (reactivation); customers with no order in the
  last 180 days are ``churned``, cancelled (churned_at) 90 days after their
  last order;
- deals skip stages now and then and are lost for stated reasons; some tickets
  are never answered, some are still open, some breach their SLA;
- SLA breaches drive active customers away, and order value falls in the
  months before a customer lapses (the churn model's signal); customers who
  buy Data Connect tend to buy Analytics Pro with it, and Service Desk comes
  with Cockpit Core (lift above 1). These effects are planted after every
  table is drawn, from a random stream of their own: they remove or shrink
  orders and add items, and change no other draw.

Default scale: 2,000 customers, 10,000 opportunities, 10,000 tickets (a few
seconds). ``scale`` multiplies every count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from crm import quality, schema
from crm.settings import DEFAULT_SLA_TARGETS

SPAN_DAYS = 730
BASE_CUSTOMERS = 2_000
BASE_OPPORTUNITIES = 10_000
BASE_TICKETS = 10_000

REGIONS = ("North America", "Europe", "Asia Pacific", "Latin America")
REGION_WEIGHTS = (0.40, 0.30, 0.20, 0.10)
COUNTRIES = {
    "North America": (("United States", ("New York", "Austin", "Chicago", "Seattle")), ("Canada", ("Toronto", "Vancouver"))),
    "Europe": (("Germany", ("Berlin", "Munich")), ("France", ("Paris", "Lyon")), ("United Kingdom", ("London", "Leeds"))),
    "Asia Pacific": (("Japan", ("Tokyo", "Osaka")), ("Australia", ("Sydney", "Melbourne")), ("Singapore", ("Singapore",))),
    "Latin America": (("Brazil", ("São Paulo", "Rio de Janeiro")), ("Mexico", ("Mexico City", "Monterrey"))),
}
PHONE_PLANS: dict[str, tuple[int, str]] = {
    "United States": (1, "212"), "Canada": (1, "416"), "Germany": (49, "30"), "France": (33, "14"),
    "United Kingdom": (44, "207"), "Japan": (81, "35"), "Australia": (61, "29"), "Singapore": (65, "6"),
    "Brazil": (55, "113"), "Mexico": (52, "552"),
}
"""Country calling code and a city's area code per demo country: each makes valid landline numbers."""
SEGMENTS = ("Enterprise", "Mid-Market", "SMB")
SEGMENT_WEIGHTS = (0.15, 0.35, 0.50)
INDUSTRIES = ("Software", "Retail", "Manufacturing", "Healthcare", "Finance", "Education")
SOURCES = ("Inbound", "Outbound", "Referral", "Partner", "Events")
SOURCE_WEIGHTS = (0.38, 0.25, 0.15, 0.12, 0.10)
PRODUCTS = ("Cockpit Core", "Analytics Pro", "Service Desk", "Data Connect")
PRODUCT_WEIGHTS = (0.38, 0.24, 0.22, 0.16)
PRODUCT_PRICE = (1.0, 1.6, 0.9, 1.3)
SALES_TEAMS = {
    "Team Atlas": ("Ava Thompson", "Ben Carter", "Chloe Diaz", "Daniel Kim"),
    "Team Borealis": ("Elena Rossi", "Felix Braun", "Greta Nilsen", "Hugo Martin"),
    "Team Cirrus": ("Isha Patel", "Jun Tanaka", "Kai Lopes", "Lina Santos"),
}
REGION_TEAM = {"North America": "Team Atlas", "Europe": "Team Borealis", "Asia Pacific": "Team Cirrus",
               "Latin America": "Team Cirrus"}
SUPPORT_TEAMS = {
    "Tier 1": ("Maya Chen", "Noah Fischer", "Olivia Novak", "Peter Hall"),
    "Tier 2": ("Quinn Baker", "Rosa Lima", "Sam Wright"),
    "Billing": ("Tara Singh", "Umar Haddad"),
    "Technical": ("Victor Ortiz", "Wen Li", "Yara Haddad"),
}
SUPPORT_WEIGHTS = (0.45, 0.25, 0.15, 0.15)
SUPPORT_SLOWNESS = (1.0, 1.3, 0.9, 2.6)
SLOW_AGENT = "Peter Hall"
PRIORITIES = ("urgent", "high", "normal", "low")
PRIORITY_WEIGHTS = (0.05, 0.20, 0.55, 0.20)
PRIORITY_RESPONSE_HOURS = (0.3, 1.2, 2.6, 6.0)
CHANNELS = ("email", "chat", "phone", "web")
CHANNEL_WEIGHTS = (0.45, 0.25, 0.20, 0.10)
CATEGORIES = ("how-to", "bug", "billing", "account", "feature request")
LOST_REASONS = ("Price", "Competitor", "No budget", "Timing", "No decision", "Product fit")
OPEN_STAGES = ("lead", "qualified", "proposal", "negotiation")
PIPELINE = (("lead", 1, 0.10, "open"), ("qualified", 2, 0.25, "open"), ("proposal", 3, 0.50, "open"),
            ("negotiation", 4, 0.75, "open"), ("won", 5, 1.0, "won"), ("lost", 6, 0.0, "lost"))
COMMENTS = {
    "bad": ("Took far too long to get an answer.", "The issue came back after it was closed.",
            "Nobody followed up.", "The sync keeps failing.", "Too expensive for what it does."),
    "mid": ("Fine, but slow.", "Answer was OK, docs could be better.", "Works, setup was painful."),
    "good": ("Quick and friendly help!", "Solved on the first call.", "Great product, the team knows it well.",
             "Dashboards save us hours every week."),
}
_NAME_A = ("Blue", "North", "Silver", "Bright", "Prime", "Green", "Rapid", "Clear", "Summit", "Urban", "Atlas",
           "Nova", "Pioneer", "Vertex", "Harbor", "Crest")
_NAME_B = ("Analytics", "Logistics", "Foods", "Health", "Systems", "Labs", "Retail", "Capital", "Energy", "Works",
           "Media", "Robotics", "Learning", "Motors", "Textiles", "Pharma")
_NAME_C = ("Inc", "GmbH", "Ltd", "SA", "Co", "Group", "KK", "Pty")

EFFECTS_STREAM = 15
"""The planted effects (churn, product affinity) draw from ``default_rng([seed, EFFECTS_STREAM])``."""
CHURN_CHECK_DAYS = 14
"""How often a customer at risk may leave: every 14 days, from the first orders to the data's end."""
LEAVE_PER_BREACH = 0.35
"""The chance that an SLA breach (a first response later than its priority's default target) makes an
active customer leave."""
LEAVE_DELAY_DAYS = 10.0
"""A customer who leaves places no order from a moment up to 10 days after the check on."""
LAPSE_DAYS = 90
"""A lapse: no order for more than this many days after one (the default activity window)."""
FADE_CHANCE = 0.8
FADE_DAYS = 150.0
FADE_FLOOR = 0.1
"""Before a lapse (with the chance ``FADE_CHANCE``), order value shrinks over ``FADE_DAYS`` to ``FADE_FLOOR``."""
AFFINITY: tuple[tuple[str, str, float], ...] = (
    ("Data Connect", "Analytics Pro", 0.75),
    ("Service Desk", "Cockpit Core", 0.8),
)
"""Products bought together: of the customers who buy the first product, this share buy the second with it."""
BUNDLE_SPLIT = 0.3
"""The share of an item's amount that becomes the bundled product's item."""

_SEASON = np.array([0.85, 0.90, 1.05, 0.98, 1.00, 0.92, 0.80, 0.82, 1.05, 1.10, 1.18, 1.25])
_US_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True)
class DemoSpec:
    """How much data and where it ends."""

    seed: int = 7
    scale: float = 1.0
    as_of: date | None = None

    def end_date(self) -> date:
        """The last day with data (default: yesterday)."""
        return self.as_of or (date.today() - timedelta(days=1))


class _Clock:
    """Day weights with growth, seasonality and weekday pattern over the span."""

    def __init__(self, as_of: date, rng: np.random.Generator) -> None:
        self.rng = rng
        self.end = datetime.combine(as_of + timedelta(days=1), datetime.min.time())
        self.start = self.end - timedelta(days=SPAN_DAYS)
        self.start64 = np.datetime64(self.start, "us")
        self.end64 = np.datetime64(self.end, "us")
        days = np.arange(SPAN_DAYS)
        dates = self.start64.astype("datetime64[D]") + days
        self.months = dates.astype("datetime64[M]").astype(int) % 12
        self.weekday = (dates.astype(int) + 3) % 7  # 0 = Monday
        self.growth = 1.0 + 0.45 * days / SPAN_DAYS

    def days(self, n: int, weekend: float = 1.0, season: bool = True) -> np.ndarray:
        """``n`` day offsets (0..span-1) drawn with growth x seasonality x weekday weights."""
        w = self.growth * (_SEASON[self.months] if season else 1.0) * np.where(self.weekday >= 5, weekend, 1.0)
        return self.rng.choice(SPAN_DAYS, size=n, p=w / w.sum())

    def stamps(self, day_offsets: np.ndarray, business_hours: bool = True) -> np.ndarray:
        """Timestamps (datetime64[us], whole seconds) on those days at plausible times."""
        n = len(day_offsets)
        if business_hours:
            hours = np.clip(self.rng.normal(13.0, 3.2, n), 0, 23.99)
        else:
            hours = self.rng.uniform(0, 24, n)
        seconds = (hours * 3600).astype(np.int64)
        return self.start64 + day_offsets.astype("timedelta64[D]") + seconds.astype("timedelta64[s]")


def _pick(rng: np.random.Generator, values: tuple[str, ...], n: int, weights: tuple[float, ...] | None = None) -> np.ndarray:
    p = None if weights is None else np.asarray(weights) / np.sum(weights)
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=p)]


def _hours(h: np.ndarray) -> np.ndarray:
    return (h * 3600).astype(np.int64).astype("timedelta64[s]")


def _seconds(ts: np.ndarray) -> np.ndarray:
    return ts.astype("datetime64[s]").astype("datetime64[us]")


def _ids(prefix: str, n: int, width: int = 7) -> list[str]:
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def generate(spec: DemoSpec) -> dict[str, pl.DataFrame]:
    """Every canonical business table as a Polars frame (see the module docstring)."""
    rng = np.random.default_rng(spec.seed)
    clock = _Clock(spec.end_date(), rng)
    customers = _customers(rng, clock, max(20, round(BASE_CUSTOMERS * spec.scale)))
    orders, items = _orders(rng, clock, customers)
    opportunities, stages = _opportunities(rng, clock, customers, max(50, round(BASE_OPPORTUNITIES * spec.scale)))
    tickets = _tickets(rng, clock, customers, max(50, round(BASE_TICKETS * spec.scale)))
    surveys = _surveys(rng, clock, customers, tickets)
    interactions = _interactions(rng, clock, opportunities)
    # the planted effects draw from a stream of their own, after every table: the main stream's draws stay
    # as they were, so every table they do not touch is the same as without them
    effects = np.random.default_rng([spec.seed, EFFECTS_STREAM])
    orders, items = _plant_churn(effects, clock, orders, items, tickets)
    orders, items = _plant_fading(effects, clock, orders, items)
    items = _plant_affinity(effects, orders, items)
    last_order = orders.group_by("customer_id").agg(pl.col("ordered_at").max().alias("last_order"))
    lapsed = pl.col("last_order") < pl.lit(clock.end - timedelta(days=180))
    customers = (
        customers.join(last_order, on="customer_id", how="left")
        .with_columns(
            lifecycle_stage=pl.when(pl.col("last_order").is_null()).then(pl.lit("lead"))
            .when(lapsed).then(pl.lit("churned"))
            .otherwise(pl.lit("customer")),
            # a churned customer's cancellation, for the subscription churn basis: 90 days after the last order
            churned_at=pl.when(lapsed).then(pl.col("last_order") + timedelta(days=90)),
        )
        .drop("last_order", "primary_product")
    )
    frames = {
        "customers": customers,
        "opportunities": opportunities,
        "opportunity_stages": stages,
        "pipeline_stages": pl.DataFrame(
            PIPELINE, schema=["stage", "position", "win_probability", "kind"], orient="row"
        ),
        "orders": orders,
        "order_items": items,
        "tickets": tickets,
        "survey_responses": surveys,
        "interactions": interactions,
    }
    # the same rules as every import (crm.quality): a generator bug fails here, not in a chart
    return quality.checked({name: _conform(name, frame) for name, frame in frames.items()})


def _conform(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    target = schema.polars_schema(name)
    return frame.select([pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c) for c, t in target.items()])


def _customers(rng: np.random.Generator, clock: _Clock, n: int) -> pl.DataFrame:
    region = _pick(rng, REGIONS, n, REGION_WEIGHTS)
    countries = np.empty(n, dtype=object)
    cities = np.empty(n, dtype=object)
    for r, options in COUNTRIES.items():
        idx = np.flatnonzero(region == r)
        which = rng.integers(0, len(options), len(idx))
        for k, (country, towns) in enumerate(options):
            sel = idx[which == k]
            countries[sel] = country
            cities[sel] = np.asarray(towns, dtype=object)[rng.integers(0, len(towns), len(sel))]
    segment = _pick(rng, SEGMENTS, n, SEGMENT_WEIGHTS)
    # a quarter of the customers existed before the two years of history
    offsets = clock.days(n, weekend=0.3).astype(np.int64) - np.where(rng.random(n) < 0.25, rng.integers(30, 365, n), 0)
    created = _seconds(clock.stamps(offsets))
    owner = np.array([SALES_TEAMS[REGION_TEAM[r]][rng.integers(0, 4)] for r in region], dtype=object)
    a, b, c = (rng.integers(0, len(x), n) for x in (_NAME_A, _NAME_B, _NAME_C))
    names = [f"{_NAME_A[i]} {_NAME_B[j]} {_NAME_C[k]} {num}" for num, (i, j, k) in enumerate(zip(a, b, c, strict=True), 1)]
    slugs = [f"{_NAME_A[i]}{_NAME_B[j]}{num}".lower() for num, (i, j) in enumerate(zip(a, b, strict=True), 1)]
    bad_email = rng.random(n) < 0.02
    emails = [f"info@{s}" if bad else f"info@{s}.example" for s, bad in zip(slugs, bad_email, strict=True)]
    digits = [(rng.integers(100, 999), rng.integers(1000, 9999)) for _ in range(n)]
    phones = [f"+{PHONE_PLANS[c][0]} {PHONE_PLANS[c][1]} {200 + d3 % 700}{d4}"
              for c, (d3, d4) in zip(countries, digits, strict=True)]
    return pl.DataFrame({
        "customer_id": _ids("C", n),
        "name": names,
        "email": emails,
        "phone": phones,
        "region": region.tolist(),
        "country": countries.tolist(),
        "city": cities.tolist(),
        "industry": _pick(rng, INDUSTRIES, n).tolist(),
        "segment": segment.tolist(),
        "source": _pick(rng, SOURCES, n, SOURCE_WEIGHTS).tolist(),
        "owner": owner.tolist(),
        "created_at": created,
        "primary_product": _pick(rng, PRODUCTS, n, PRODUCT_WEIGHTS).tolist(),
    })


def _orders(rng: np.random.Generator, clock: _Clock, customers: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = customers.height
    segment = customers["segment"].to_numpy()
    created = customers["created_at"].to_numpy().astype("datetime64[us]")
    seg_idx = np.select([segment == "Enterprise", segment == "Mid-Market"], [0, 1], 2)
    rate_per_day = np.array([0.050, 0.045, 0.035])[seg_idx] * rng.lognormal(0, 0.45, n)
    lifetime_mean = np.array([1100.0, 700.0, 420.0])[seg_idx]
    ticket_size = np.array([4_800.0, 1_400.0, 320.0])[seg_idx] * rng.lognormal(0, 0.35, n)

    # up to two active spells: some customers churn and come back
    first = created + _hours(rng.exponential(14 * 24, n))
    life1 = rng.exponential(lifetime_mean)
    comeback = rng.random(n) < 0.18
    gap = rng.exponential(150, n) + 60
    life2 = rng.exponential(lifetime_mean)
    spell_start = np.concatenate([first, first + _hours((life1 + gap) * 24)])
    spell_len = np.concatenate([life1, np.where(comeback, life2, 0.0)])
    owner_idx = np.concatenate([np.arange(n), np.arange(n)])
    spell_end = np.minimum(spell_start + _hours(spell_len * 24), clock.end64)
    days = np.clip((spell_end - spell_start).astype("timedelta64[s]").astype(np.float64) / 86400, 0, None)
    counts = rng.poisson(rate_per_day[owner_idx] * days) + ((spell_len > 0) & (spell_start < clock.end64)).astype(int)
    cust = np.repeat(owner_idx, counts)
    start = np.repeat(spell_start, counts)
    length = np.repeat(days, counts)
    ordered = start + _hours(rng.random(cust.size) * length * 24)
    keep = (ordered < clock.end64) & (ordered >= clock.start64 - np.timedelta64(365, "D"))
    month = ordered.astype("datetime64[M]").astype(int) % 12
    keep &= rng.random(cust.size) < _SEASON[month] / _SEASON.max()
    cust, ordered = cust[keep], _seconds(ordered[keep])
    order_sort = np.lexsort((cust, ordered))
    cust, ordered = cust[order_sort], ordered[order_sort]
    m = cust.size
    amount = np.round(ticket_size[cust] * rng.lognormal(0, 0.5, m), 2)
    order_ids = _ids("O", m, 8)

    n_items = rng.integers(1, 5, m)
    item_order = np.repeat(np.arange(m), n_items)
    primary = customers["primary_product"].to_numpy()
    item_product = np.where(
        rng.random(item_order.size) < 0.55, primary[cust[item_order]], _pick(rng, PRODUCTS, item_order.size, PRODUCT_WEIGHTS)
    )
    weights = rng.random(item_order.size) + 0.2
    totals = np.bincount(item_order, weights=weights)
    item_amount = np.round(amount[item_order] * weights / totals[item_order], 2)
    # put the rounding remainder on each order's first item, so items sum to the order
    first_item = np.r_[0, np.cumsum(n_items)[:-1]]
    item_amount[first_item] += np.round(amount - np.bincount(item_order, weights=item_amount), 2)
    customer_ids = np.asarray(customers["customer_id"].to_list(), dtype=object)
    orders = pl.DataFrame({
        "order_id": order_ids,
        "customer_id": customer_ids[cust].tolist(),
        "ordered_at": ordered,
        "amount": amount,
        "channel": _pick(rng, ("web", "sales", "partner"), m, (0.55, 0.30, 0.15)).tolist(),
    })
    items = pl.DataFrame({
        "order_id": np.asarray(order_ids, dtype=object)[item_order].tolist(),
        "product": item_product.tolist(),
        "quantity": rng.integers(1, 6, item_order.size),
        "amount": np.round(item_amount, 2),
    })
    return orders, items


def _plant_churn(rng: np.random.Generator, clock: _Clock, orders: pl.DataFrame, items: pl.DataFrame,
                 tickets: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """SLA breaches drive customers away: every ``CHURN_CHECK_DAYS`` days, an active customer (an order in the
    last 90 days) leaves with the chance ``LEAVE_PER_BREACH`` for each of their tickets that breached its
    first-response target (the default per priority) since the check before. A customer who leaves places
    no order from a moment up to ``LEAVE_DELAY_DAYS`` after the check on: those orders and their items are
    removed, nothing else changes. Orders come sorted by time (``_orders``)."""
    customer = orders["customer_id"].rank("dense").cast(pl.Int64).to_numpy() - 1
    n = int(customer.max()) + 1 if customer.size else 0
    day = _days(orders["ordered_at"], clock)
    codes = orders.select("customer_id").unique().with_columns(code=pl.col("customer_id").rank("dense").cast(pl.Int64) - 1)
    target = pl.col("priority").fill_null("normal").replace_strict(DEFAULT_SLA_TARGETS, default=DEFAULT_SLA_TARGETS["normal"])
    due = pl.col("created_at") + pl.duration(seconds=(target * 3600).cast(pl.Int64))
    breaches = (
        tickets.join(codes, on="customer_id", how="inner")
        .filter(pl.when(pl.col("first_response_at").is_null()).then(due < clock.end)
                .otherwise(pl.col("first_response_at") > due))
        .select("code", due=due)
    )
    breach_day, breach_customer = _days(breaches["due"], clock), breaches["code"].to_numpy()
    departed = np.full(n, np.inf)
    previous = -np.inf
    for check in np.arange(day.min() + 90 if day.size else SPAN_DAYS, SPAN_DAYS, CHURN_CHECK_DAYS):
        lo, hi = np.searchsorted(day, [check - 90, check], side="right")
        recent = customer[lo:hi][day[lo:hi] < departed[customer[lo:hi]]]
        active = np.bincount(recent, minlength=n) > 0
        fresh = (breach_day > previous) & (breach_day <= check)
        stay = (1 - LEAVE_PER_BREACH) ** np.bincount(breach_customer[fresh], minlength=n)
        leave = active & np.isinf(departed) & (rng.random(n) >= stay)
        departed[leave] = check + rng.uniform(0, LEAVE_DELAY_DAYS, int(leave.sum()))
        previous = check
    kept = day < departed[customer]
    removed = orders.filter(pl.Series(~kept))["order_id"]
    return orders.filter(pl.Series(kept)), items.filter(~pl.col("order_id").is_in(removed.implode()))


def _days(stamps: pl.Series, clock: _Clock) -> np.ndarray:
    """Timestamps as fractional days since the span's start."""
    return (stamps.to_numpy().astype("datetime64[us]") - clock.start64).astype(np.float64) / _US_PER_DAY


def _plant_fading(rng: np.random.Generator, clock: _Clock, orders: pl.DataFrame, items: pl.DataFrame
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Order value falls before a customer lapses: before an order followed by no other for more than
    ``LAPSE_DAYS`` (up to the data's end, or for a wait not over at the end: drawn as often as earlier waits
    that long became lapses), with the chance ``FADE_CHANCE`` the orders of the ``FADE_DAYS`` up to it
    shrink, linearly in time from their amount to ``FADE_FLOOR`` of it at that last order. Items shrink with
    their order (the rounding remainder on its first item); which orders exist does not change."""
    day = _days(orders["ordered_at"], clock)
    frame = pl.DataFrame({"customer_id": orders["customer_id"], "day": day}).with_row_index("row")
    # the wait after an order: to the customer's next order, or (none yet) to the data's end
    frame = frame.sort("customer_id", "day", "row").with_columns(
        wait=(pl.col("day").shift(-1).over("customer_id") - pl.col("day")).fill_null(SPAN_DAYS - pl.col("day")),
        last=pl.col("day").shift(-1).over("customer_id").is_null())
    open_ended = pl.col("last") & (pl.col("wait") <= LAPSE_DAYS)
    # whether a wait not over at the end becomes a lapse is not in the data yet: as often as an earlier wait of
    # at least that long did
    waits = np.sort(frame.filter(pl.col("day") <= SPAN_DAYS - LAPSE_DAYS)["wait"].to_numpy())
    ending = frame.filter(open_ended)
    longer = waits.size - np.searchsorted(waits, [LAPSE_DAYS, *ending["wait"].to_numpy()], side="right")
    chance = longer[0] / np.maximum(longer[1:], 1)
    lapses = pl.concat([frame.filter(pl.col("wait") > LAPSE_DAYS), ending.filter(pl.Series(rng.random(ending.height) < chance))])
    lapses = lapses.filter(pl.Series(rng.random(lapses.height) < FADE_CHANCE)).select("customer_id", lapse=pl.col("day"))
    factor = (
        frame.join(lapses, on="customer_id", how="inner")
        .filter((pl.col("lapse") - pl.col("day")).is_between(0, FADE_DAYS, closed="left"))
        .group_by("row")
        .agg(factor=(1 - (1 - FADE_FLOOR) * (1 - (pl.col("lapse") - pl.col("day")) / FADE_DAYS)).min())
    )
    scale = np.ones(orders.height)
    scale[factor["row"].to_numpy()] = factor["factor"].to_numpy()
    amount = np.round(orders["amount"].to_numpy() * scale, 2)
    orders = orders.with_columns(amount=pl.Series(amount))
    by_order = pl.DataFrame({"order_id": orders["order_id"], "_scale": scale, "_total": amount})
    items = (
        items.join(by_order, on="order_id", how="left", maintain_order="left")
        .with_columns(amount=(pl.col("amount") * pl.col("_scale")).round(2), _first=pl.int_range(pl.len()).over("order_id") == 0)
    )
    remainder = pl.col("_total") - pl.col("amount").sum().over("order_id")
    return orders, items.with_columns(
        amount=pl.when(pl.col("_first")).then((pl.col("amount") + remainder).round(2)).otherwise(pl.col("amount"))
    ).drop("_scale", "_total", "_first")


def _plant_affinity(rng: np.random.Generator, orders: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """Products bought together (``AFFINITY``): a share of the customers who buy the first product of a pair
    buy the second with it. Every order of theirs holding the first product and not the second gets an item
    of the second, split off its first item of the first (``BUNDLE_SPLIT`` of its amount, quantity 1): the
    order's amount and every other table stay as they were."""
    customers = orders["customer_id"].unique().sort()
    for antecedent, consequent, share in AFFINITY:
        bundled = customers.filter(pl.Series(rng.random(customers.len()) < share))
        indexed = items.with_row_index("_row")
        targets = (
            indexed.group_by("order_id")
            .agg(has_a=(pl.col("product") == antecedent).any(), has_b=(pl.col("product") == consequent).any(),
                 _row=pl.col("_row").filter(pl.col("product") == antecedent).min())
            .filter(pl.col("has_a") & ~pl.col("has_b"))
            .join(orders.select("order_id", "customer_id"), on="order_id", how="inner")
            .filter(pl.col("customer_id").is_in(bundled.implode()))
            .select("_row")
        )
        split = pl.col("_row").is_in(targets["_row"].implode())
        part = (pl.col("amount") * BUNDLE_SPLIT).round(2)
        added = indexed.filter(split).with_columns(product=pl.lit(consequent), quantity=pl.lit(1, pl.Int64), amount=part)
        items = (
            pl.concat([
                indexed.with_columns(amount=pl.when(split).then(pl.col("amount") - part).otherwise(pl.col("amount"))),
                added.cast(indexed.schema),  # type: ignore[arg-type]
            ])
            .sort("_row", maintain_order=True)
            .drop("_row")
        )
    return items


def _customers_before(rng: np.random.Generator, customers: pl.DataFrame, stamps: np.ndarray) -> np.ndarray:
    """For each stamp, a random customer created before it (the oldest one if none)."""
    created = customers["created_at"].to_numpy().astype("datetime64[us]")
    order = np.argsort(created, kind="stable")
    available = np.searchsorted(created[order], stamps, side="right")
    pick = np.floor(rng.random(stamps.size) * np.maximum(available, 1)).astype(np.int64)
    return order[pick]


def _opportunities(
    rng: np.random.Generator, clock: _Clock, customers: pl.DataFrame, n: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    created = _seconds(clock.stamps(clock.days(n, weekend=0.15)))
    created.sort()
    cust = _customers_before(rng, customers, created)
    region = customers["region"].to_numpy()[cust]
    segment = customers["segment"].to_numpy()[cust]
    team = np.array([REGION_TEAM[r] for r in region], dtype=object)
    rep = rng.integers(0, 4, n)
    owner = np.array([SALES_TEAMS[t][k] for t, k in zip(team, rep, strict=True)], dtype=object)
    skill = np.array([1.06, 0.97, 1.0, 0.93])[rep]
    product_idx = rng.choice(len(PRODUCTS), size=n, p=np.asarray(PRODUCT_WEIGHTS))
    seg_idx = np.select([segment == "Enterprise", segment == "Mid-Market"], [0, 1], 2)
    amount = np.round(
        np.array([42_000.0, 12_000.0, 3_200.0])[seg_idx] * np.asarray(PRODUCT_PRICE)[product_idx] * rng.lognormal(0, 0.55, n),
        2,
    )
    region_factor = np.where(region == "Europe", 1.16, np.where(region == "Latin America", 0.95, 1.0))
    pace = np.array([1.6, 1.15, 0.8])[seg_idx] * np.where(team == "Team Cirrus", 1.35, 1.0)
    advance = np.array([0.58, 0.62, 0.66, 0.60])
    dwell = np.array([8.0, 14.0, 20.0, 16.0])

    stage = np.zeros(n, dtype=np.int64)
    t = created.copy()
    alive = np.ones(n, dtype=bool)
    outcome = np.full(n, "open", dtype=object)
    closed = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    hist_id = [np.arange(n)]
    hist_stage = [np.zeros(n, dtype=np.int64)]
    hist_at = [created.copy()]
    for k in range(len(OPEN_STAGES)):
        here = alive & (stage == k)
        idx = np.flatnonzero(here)
        t_next = _seconds(t[idx] + _hours(rng.exponential(dwell[k] * pace[idx]) * 24 + 1))
        p = np.clip(advance[k] * region_factor[idx] * skill[idx], 0, 0.97)
        moves = rng.random(idx.size) < p
        skip = rng.random(idx.size) < 0.08
        nxt = stage[idx] + 1 + (moves & skip)
        won = moves & (nxt >= len(OPEN_STAGES))
        lost = ~moves
        for flag, name in ((won, "won"), (lost, "lost")):
            sel = idx[flag]
            outcome[sel] = name
            closed[sel] = t_next[flag]
            alive[sel] = False
        go = moves & ~won
        sel = idx[go]
        stage[sel] = nxt[go]
        t[sel] = t_next[go]
        hist_id.append(sel)
        hist_stage.append(nxt[go])
        hist_at.append(t_next[go])
    # what happens after the data ends has not happened yet
    future = closed >= clock.end64
    outcome[future] = "open"
    closed[future] = np.datetime64("NaT")
    h_id, h_stage, h_at = np.concatenate(hist_id), np.concatenate(hist_stage), np.concatenate(hist_at)
    seen = h_at < clock.end64
    h_id, h_stage, h_at = h_id[seen], h_stage[seen], h_at[seen]
    current = np.zeros(n, dtype=np.int64)
    np.maximum.at(current, h_id, h_stage)
    stage_name = np.asarray(OPEN_STAGES, dtype=object)[current]
    stage_name[outcome == "won"] = "won"
    stage_name[outcome == "lost"] = "lost"
    final = np.flatnonzero(outcome != "open")
    h_id = np.concatenate([h_id, final])
    h_names = np.concatenate([np.asarray(OPEN_STAGES, dtype=object)[h_stage], outcome[final]])
    h_at = np.concatenate([h_at, closed[final]])
    reason_w = np.array([0.26, 0.22, 0.16, 0.14, 0.14, 0.08])
    lost_reason = np.where(outcome == "lost", _pick(rng, LOST_REASONS, n, tuple(reason_w)), np.array(None, dtype=object))
    expected = created.astype("datetime64[D]") + np.round(rng.normal(55, 15, n) * pace).astype("timedelta64[D]")
    expected_close = np.where(rng.random(n) < 0.85, expected, np.datetime64("NaT"))
    ids = np.asarray(_ids("D", n), dtype=object)
    customer_ids = np.asarray(customers["customer_id"].to_list(), dtype=object)
    opportunities = pl.DataFrame({
        "opportunity_id": ids.tolist(),
        "customer_id": customer_ids[cust].tolist(),
        "owner": owner.tolist(),
        "team": team.tolist(),
        "region": region.tolist(),
        "product": np.asarray(PRODUCTS, dtype=object)[product_idx].tolist(),
        "source": _pick(rng, SOURCES, n, SOURCE_WEIGHTS).tolist(),
        "amount": amount,
        "created_at": created,
        "expected_close_date": pl.Series(expected_close.astype("datetime64[D]")).cast(pl.Date),
        "closed_at": closed,
        "stage": stage_name.tolist(),
        "status": outcome.tolist(),
        "lost_reason": lost_reason.tolist(),
    })
    stages = pl.DataFrame({
        "opportunity_id": ids[h_id].tolist(),
        "stage": h_names.tolist(),
        "entered_at": h_at,
    }).sort("opportunity_id", "entered_at", maintain_order=True)
    return opportunities, stages


def _tickets(rng: np.random.Generator, clock: _Clock, customers: pl.DataFrame, n: int) -> pl.DataFrame:
    created = _seconds(clock.stamps(clock.days(n, weekend=0.35, season=False), business_hours=True))
    created.sort()
    cust = _customers_before(rng, customers, created)
    team_idx = rng.choice(len(SUPPORT_TEAMS), size=n, p=np.asarray(SUPPORT_WEIGHTS))
    teams = tuple(SUPPORT_TEAMS)
    team = np.asarray(teams, dtype=object)[team_idx]
    agent = np.array([SUPPORT_TEAMS[t][rng.integers(0, len(SUPPORT_TEAMS[t]))] for t in team], dtype=object)
    priority_idx = rng.choice(4, size=n, p=np.asarray(PRIORITY_WEIGHTS))
    product_w = np.array([0.33, 0.20, 0.20, 0.27])  # Data Connect: more tickets than its share of sales
    product = np.where(
        rng.random(n) < 0.5, customers["primary_product"].to_numpy()[cust], _pick(rng, PRODUCTS, n, tuple(product_w))
    )
    category = np.where(team == "Billing", "billing", _pick(rng, CATEGORIES, n, (0.35, 0.30, 0.05, 0.15, 0.15)))
    slowness = np.asarray(SUPPORT_SLOWNESS)[team_idx] * np.where(agent == SLOW_AGENT, 1.8, 1.0)
    response_h = np.asarray(PRIORITY_RESPONSE_HOURS)[priority_idx] * slowness * rng.lognormal(0, 0.85, n)
    weekday = (created.astype("datetime64[D]").astype(np.int64) + 3) % 7
    wait_monday = (weekday >= 5) & (rng.random(n) < 0.7)
    response_h += np.where(wait_monday, (7 - weekday) * 24 - 12, 0)
    first = _seconds(created + _hours(response_h))
    never = rng.random(n) < 0.03
    resolve_h = response_h + np.array([3.0, 8.0, 20.0, 40.0])[priority_idx] * slowness * rng.lognormal(0, 1.0, n)
    resolve_h *= np.where(product == "Data Connect", 1.5, 1.0)
    resolved = _seconds(created + _hours(resolve_h))
    resolved = np.where(never & (rng.random(n) < 0.5), np.datetime64("NaT"), resolved)
    first = np.where(never, np.datetime64("NaT"), first)
    abandoned = rng.random(n) < 0.01  # a few tickets fall through the cracks and stay open
    resolved = np.where(abandoned, np.datetime64("NaT"), resolved)
    first = np.where(first >= clock.end64, np.datetime64("NaT"), first)
    resolved = np.where(resolved >= clock.end64, np.datetime64("NaT"), resolved)
    is_resolved = ~np.isnat(resolved)
    status = np.where(is_resolved, np.where(rng.random(n) < 0.6, "closed", "resolved"),
                      np.where(np.isnat(first), "new", "open"))
    reopened = np.where(is_resolved, rng.choice(3, size=n, p=[0.925, 0.06, 0.015]), 0)
    customer_ids = np.asarray(customers["customer_id"].to_list(), dtype=object)
    return pl.DataFrame({
        "ticket_id": _ids("T", n),
        "customer_id": customer_ids[cust].tolist(),
        "created_at": created,
        "first_response_at": first,
        "resolved_at": resolved,
        "status": status.tolist(),
        "priority": np.asarray(PRIORITIES, dtype=object)[priority_idx].tolist(),
        "channel": _pick(rng, CHANNELS, n, CHANNEL_WEIGHTS).tolist(),
        "team": team.tolist(),
        "agent": agent.tolist(),
        "product": product.tolist(),
        "category": category.tolist(),
        "reopened": reopened,
    })


def _comments(rng: np.random.Generator, band: np.ndarray) -> list[str | None]:
    out: list[str | None] = []
    draws = rng.random(band.size)
    picks = rng.integers(0, 100, band.size)
    for b, d, k in zip(band, draws, picks, strict=True):
        options = COMMENTS[b]
        out.append(options[k % len(options)] if d < 0.4 else None)
    return out


def _surveys(rng: np.random.Generator, clock: _Clock, customers: pl.DataFrame, tickets: pl.DataFrame) -> pl.DataFrame:
    # CSAT after a share of resolved tickets
    resolved = tickets.filter(pl.col("resolved_at").is_not_null())
    asked = resolved.filter(pl.Series(rng.random(resolved.height) < 0.38))
    m = asked.height
    res_at = asked["resolved_at"].to_numpy().astype("datetime64[us]")
    hours = (res_at - asked["created_at"].to_numpy().astype("datetime64[us]")).astype(np.float64) / 3.6e9
    quality = (
        4.6
        - 0.55 * (asked["product"].to_numpy() == "Data Connect")
        - 0.25 * (asked["team"].to_numpy() == "Technical")
        - 0.18 * np.log1p(hours / 24)
        - 0.35 * (asked["reopened"].to_numpy() > 0)
    )
    csat_score = np.clip(np.round(rng.normal(quality, 0.85)), 1, 5)
    csat_at = _seconds(res_at + _hours(rng.lognormal(1.8, 0.9, m)))
    csat_band = np.where(csat_score <= 2, "bad", np.where(csat_score == 3, "mid", "good"))
    csat = pl.DataFrame({
        "customer_id": asked["customer_id"],
        "ticket_id": asked["ticket_id"],
        "kind": ["csat"] * m,
        "score": csat_score,
        "responded_at": csat_at,
        "comment": _comments(rng, csat_band),
        "product": asked["product"],
        "team": asked["team"],
        "agent": asked["agent"],
    })
    # relationship NPS: each customer answers about twice a year while they exist
    created = customers["created_at"].to_numpy().astype("datetime64[us]")
    since = np.maximum(created, clock.start64)
    days = np.clip((clock.end64 - since).astype(np.float64) / 8.64e10, 0, None)
    counts = rng.poisson(days / 200)
    owner = np.repeat(np.arange(customers.height), counts)
    at = _seconds(np.repeat(since, counts) + _hours(rng.random(owner.size) * np.repeat(days, counts) * 24))
    segment = customers["segment"].to_numpy()[owner]
    product = customers["primary_product"].to_numpy()[owner]
    latent = (
        8.3 + 0.5 * (segment == "Enterprise") - 0.3 * (segment == "SMB") - 1.5 * (product == "Data Connect")
        + 0.35 * ((at.astype("datetime64[D]") - clock.start64.astype("datetime64[D]")).astype(np.float64) / SPAN_DAYS)
    )
    nps_score = np.clip(np.round(rng.normal(latent, 2.1)), 0, 10)
    nps_band = np.where(nps_score <= 6, "bad", np.where(nps_score <= 8, "mid", "good"))
    nps = pl.DataFrame({
        "customer_id": np.asarray(customers["customer_id"].to_list(), dtype=object)[owner].tolist(),
        "ticket_id": pl.Series([None] * owner.size, dtype=pl.String),
        "kind": ["nps"] * owner.size,
        "score": nps_score,
        "responded_at": at,
        "comment": _comments(rng, nps_band),
        "product": product.tolist(),
        "team": pl.Series([None] * owner.size, dtype=pl.String),
        "agent": pl.Series([None] * owner.size, dtype=pl.String),
    })
    both = pl.concat([csat, nps], how="vertical_relaxed")
    both = both.filter(pl.col("responded_at") < clock.end).sort("responded_at", "customer_id", "kind")
    return both.with_columns(response_id=pl.Series(_ids("R", both.height)))


def _interactions(rng: np.random.Generator, clock: _Clock, opportunities: pl.DataFrame) -> pl.DataFrame:
    n = opportunities.height
    counts = rng.poisson(2.2, n)
    idx = np.repeat(np.arange(n), counts)
    created = opportunities["created_at"].to_numpy().astype("datetime64[us]")[idx]
    closed = opportunities["closed_at"].to_numpy().astype("datetime64[us]")[idx]
    until = np.where(np.isnat(closed), clock.end64, closed)
    span_h = np.clip((until - created).astype(np.float64) / 3.6e9, 1, None)
    occurred = _seconds(created + _hours(rng.random(idx.size) * span_h))
    due = _seconds(occurred + _hours(rng.exponential(48, idx.size)))
    done = rng.random(idx.size) < 0.9
    completed = np.where(done, _seconds(occurred + _hours(rng.exponential(20, idx.size))), np.datetime64("NaT"))
    completed = np.where(completed >= clock.end64, np.datetime64("NaT"), completed)
    keep = occurred < clock.end64
    return pl.DataFrame({
        "interaction_id": _ids("I", int(keep.sum()), 8),
        "customer_id": opportunities["customer_id"].to_numpy()[idx][keep].tolist(),
        "opportunity_id": opportunities["opportunity_id"].to_numpy()[idx][keep].tolist(),
        "kind": _pick(rng, ("call", "email", "meeting", "chat"), int(keep.sum()), (0.35, 0.40, 0.15, 0.10)).tolist(),
        "occurred_at": occurred[keep],
        "owner": opportunities["owner"].to_numpy()[idx][keep].tolist(),
        "due_at": due[keep],
        "completed_at": completed[keep],
    })
