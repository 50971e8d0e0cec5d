"""Duplicate customers: candidate pairs with a score and a reason, merging them, and undoing a merge exactly.

Candidates come from three signals: the same email address (normalised by
email-validator, then lower-cased), the same phone number (E.164 via
phonenumbers, read in the customer's country when it has no + prefix) and
similar names (RapidFuzz ``token_sort_ratio`` of case-folded names) among
customers of the same city, or of the same country where the city is empty.
Name matching is blocked by place, so it compares n²/k pairs for k places
instead of n², in RapidFuzz's C++ matrix code.

A merge keeps one customer id, repoints every business row that names a
merged id (opportunities, orders, tickets, survey responses, interactions)
and deletes the merged customer rows, in one transaction that bumps the data
version. The rows it deleted and every (table, key, old customer id) it
changed are kept in ``customer_merges``, so ``undo_merge`` puts the store back
exactly as it was, also in one transaction, or refuses with nothing changed.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np
import polars as pl
import sqlalchemy as sa
from rapidfuzz import fuzz, process, utils

from crm import quality, schema
from crm.auth import audit
from crm.roles import require
from crm.store import Store

DEFAULT_THRESHOLD = 90.0
"""Name similarity (0–100) from which two customers of one place are candidates."""
EMAIL_SCORE = 100.0
"""The score of a pair that shares an email address: the strongest sign of one customer entered twice."""
PHONE_SCORE = 95.0
"""The score of a pair that shares a phone number (a switchboard can serve two companies)."""
MAX_SHARED = 20
"""An email or phone shared by more customers than this is a placeholder (noemail@…, +1 000 000 0000), not a sign."""

_MATRIX_CELLS = 4_000_000
"""Scores computed in one RapidFuzz call (16 MB of float32): a large place is matched in slices of rows."""
_KEYS_PER_STATEMENT = 10_000

CANDIDATE_SCHEMA = pl.Schema({
    "customer_id": pl.String(), "other_id": pl.String(), "score": pl.Float64(), "reason": pl.String(),
    "name": pl.String(), "other_name": pl.String(), "same_email": pl.Boolean(), "same_phone": pl.Boolean(),
    "name_score": pl.Float64(),
})
"""The columns of ``duplicate_candidates``."""

REFERENCING_TABLES: tuple[str, ...] = tuple(
    name for name in schema.BUSINESS_TABLES if name != "customers" and "customer_id" in schema.table(name).c)
"""Business tables whose rows name a customer: a merge repoints them (each has a one-column primary key)."""


class MergeError(Exception):
    """A merge or an undo that cannot be done; the message (one line) is meant for a person. Nothing was changed."""


# --- normal forms -------------------------------------------------------------------


def normalise_email(text: str | None) -> str | None:
    """An address in the form two spellings of it share: email-validator's normal form, lower-cased.

    Leading and trailing spaces are dropped; None when empty or not a valid address
    (those are data-quality findings, not matches).
    """
    if text is None or not text.strip():
        return None
    normal = quality.normal_email(text)  # the form imports store (crm.quality), lower-cased to compare
    return normal.lower() if normal is not None else None


@lru_cache(maxsize=1)
def _region_names() -> dict[str, str]:
    """Case-folded English country name -> ISO 3166 alpha-2 region, from phonenumbers' own region names."""
    import phonenumbers
    from phonenumbers.geodata.locale import LOCALE_DATA

    names: dict[str, str] = {}
    for region in phonenumbers.SUPPORTED_REGIONS:
        by_language = LOCALE_DATA.get(region, {})
        name = by_language.get("en")
        while name is not None and name.startswith("*"):  # "*aa": the same name as in language "aa"
            name = by_language.get(name[1:])
        if name:
            names[name.casefold()] = region
    names.update({"uk": "GB", "great britain": "GB", "england": "GB", "usa": "US", "united states of america": "US"})
    return names


@lru_cache(maxsize=4096)
def phone_region(country: str | None) -> str | None:
    """The phonenumbers region of a country given as an ISO alpha-2 code ("GB") or an English name
    ("United Kingdom", "UK"); None when empty or unknown."""
    if country is None or not country.strip():
        return None
    import phonenumbers

    text = country.strip()
    if text.upper() in phonenumbers.SUPPORTED_REGIONS:
        return text.upper()
    return _region_names().get(text.casefold())


def normalise_phone(text: str | None, country: str | None = None) -> str | None:
    """A phone number in E.164 (``+442079460958``, with ``;ext=12`` when it has an extension).

    A number without a + prefix is read in ``country`` (see ``phone_region``). None when empty,
    unreadable, or not a possible length for its country. Validity (an allocated range) is not
    required: two records with the same digits are the same phone whether or not the range exists.
    """
    if text is None or not text.strip():
        return None
    import phonenumbers

    try:
        number = phonenumbers.parse(text, phone_region(country))
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    e164 = str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return f"{e164};ext={number.extension}" if number.extension else e164


def normalise_name(text: str | None) -> str:
    """A name as it is compared: Unicode NFKC, case-folded, punctuation as spaces, spaces collapsed."""
    if text is None:
        return ""
    return " ".join(utils.default_process(unicodedata.normalize("NFKC", text).casefold()).split())


# --- candidates ---------------------------------------------------------------------


def duplicate_candidates(
    customers: pl.DataFrame,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    max_shared: int = MAX_SHARED,
) -> pl.DataFrame:
    """Pairs of customers that may be one customer entered twice, best first.

    ``customers`` has ``customer_id`` and any of ``name``, ``email``, ``phone``, ``country``, ``city``
    (missing columns count as empty). A pair is a candidate when the two share a normalised email
    (score ``EMAIL_SCORE``), a normalised phone (``PHONE_SCORE``), or, within one place (the same
    city, or the same country where the city is empty; never two different countries), names whose
    ``token_sort_ratio`` is at least ``threshold`` (0–100; the score is that ratio). Names that both
    hold numbers and differ in them ("Store 12", "Store 13") are not similar. An email or phone
    shared by more than ``max_shared`` customers is a placeholder and pairs no one.

    Returns one row per pair, ``customer_id`` < ``other_id``, with columns ``CANDIDATE_SCHEMA``:
    ``score`` the strongest signal (0–100), ``reason`` the signals in words ("same email; similar
    name in London"), both names, ``same_email`` / ``same_phone`` and ``name_score`` (the names'
    similarity, 0–100, for every pair), sorted by score (highest first), then ids.
    """
    if not 0 <= threshold <= 100:
        raise ValueError(f"the name threshold is a similarity from 0 to 100, not {threshold:g}")
    frame = _prepared(customers)
    pairs = _shared("email", frame, max_shared).join(
        _shared("phone", frame, max_shared), on=["customer_id", "other_id"], how="full", coalesce=True).join(
        _similar_names(frame, threshold), on=["customer_id", "other_id"], how="full", coalesce=True)
    if pairs.height == 0:
        return pl.DataFrame(schema=CANDIDATE_SCHEMA)
    names = frame.select("customer_id", "name", "name_key")
    pairs = (pairs
             .join(names, on="customer_id", how="left")
             .join(names.rename({"customer_id": "other_id", "name": "other_name", "name_key": "other_key"}),
                   on="other_id", how="left"))
    similarity = process.cpdist(pairs["name_key"].to_list(), pairs["other_key"].to_list(), scorer=fuzz.ratio,
                                dtype=np.float64, workers=-1)
    same_email = pl.col("same_email").fill_null(False)
    same_phone = pl.col("same_phone").fill_null(False)
    return (pairs
            .with_columns(same_email, same_phone, pl.Series("name_score", similarity).round(1))
            .with_columns(
                pl.max_horizontal(pl.when(same_email).then(EMAIL_SCORE), pl.when(same_phone).then(PHONE_SCORE),
                                  pl.col("similar").round(1)).alias("score"),
                pl.concat_list(pl.when(same_email).then(pl.lit("same email")),
                               pl.when(same_phone).then(pl.lit("same phone")),
                               pl.lit("similar name in ") + pl.col("place")).list.drop_nulls().list.join("; ").alias("reason"))
            .select(list(CANDIDATE_SCHEMA))
            .cast(CANDIDATE_SCHEMA)
            .sort(["score", "customer_id", "other_id"], descending=[True, False, False]))


def _prepared(customers: pl.DataFrame) -> pl.DataFrame:
    """customer_id, name, name_key (normalised, words sorted), digits, email_key, phone_key, place, block and
    country_key of every customer with an id."""
    def text(name: str) -> pl.Expr:
        if name not in customers.columns:
            return pl.lit(None, dtype=pl.String).alias(name)
        return pl.col(name).cast(pl.String).str.strip_chars().replace("", None).alias(name)

    frame = customers.select(text("customer_id"), text("name"), text("email"), text("phone"), text("country"),
                             text("city")).filter(pl.col("customer_id").is_not_null()).unique("customer_id", keep="first")
    email_keys = _email_keys(frame["email"].drop_nulls())
    phones = frame.select("phone", "country").drop_nulls("phone").unique()
    phone_keys = phones.with_columns(pl.Series("phone_key", [normalise_phone(p, c) for p, c in phones.iter_rows()],
                                               dtype=pl.String))
    name_keys = frame["name"].drop_nulls().unique().to_list()
    names = pl.DataFrame({"name": name_keys, "name_key": [" ".join(sorted(normalise_name(n).split())) for n in name_keys]},
                         schema={"name": pl.String, "name_key": pl.String})
    countries = frame["country"].drop_nulls().unique().to_list()
    country_keys = pl.DataFrame({"country": countries, "country_key": [phone_region(c) or c.casefold() for c in countries]},
                                schema={"country": pl.String, "country_key": pl.String})
    city_key = pl.col("city").str.to_lowercase()
    return (frame
            .join(country_keys, on="country", how="left")
            .join(email_keys, on="email", how="left")
            .join(phone_keys, on=["phone", "country"], how="left", nulls_equal=True)
            .join(names, on="name", how="left")
            .with_columns(
                pl.col("name_key").fill_null(""),
                pl.col("name_key").str.extract_all(r"\d+").list.sort().list.join(" ").fill_null("").alias("digits"),
                pl.coalesce("city", "country").alias("place"),
                pl.when(city_key.is_not_null()).then(pl.lit("city:") + city_key)
                .otherwise(pl.lit("country:") + pl.col("country_key")).alias("block")))


def _email_keys(emails: pl.Series) -> pl.DataFrame:
    """email, email_key (``normalise_email``) for the distinct ``emails`` (one per customer) whose normal form
    can be another customer's.

    email-validator costs about 35 µs an address, most of the time of a large store, so it runs only where
    its answer can make a pair. A *plain* address (ASCII letters, digits, ``._+-`` and one @, no ``xn--``)
    that is valid has its lower-cased text as normal form; so a plain address whose lower-cased text no
    other address shares, and that no other address's normal form equals, pairs with no one whatever the
    library says. Every other address is normalised by the library.
    """
    lowered = pl.col("email").str.to_lowercase()
    plain = pl.col("email").str.contains(r"^[A-Za-z0-9._+\-]+@[A-Za-z0-9.\-]+$") & ~lowered.str.contains("xn--", literal=True)
    frame = pl.DataFrame({"email": emails}, schema={"email": pl.String}).group_by("email").len().with_columns(
        lowered.alias("lowered"), plain.alias("plain"))
    frame = frame.with_columns(need=~pl.col("plain") | (pl.col("len").sum().over("lowered") > 1))

    def normalised(rows: pl.DataFrame) -> pl.DataFrame:
        texts = rows["email"].to_list()
        return pl.DataFrame({"email": texts, "email_key": [normalise_email(e) for e in texts]},
                            schema={"email": pl.String, "email_key": pl.String})

    first = normalised(frame.filter("need"))
    unusual = set(first.join(frame.filter(~pl.col("plain")).select("email"), on="email")["email_key"].drop_nulls())
    second = normalised(frame.filter(~pl.col("need") & pl.col("lowered").is_in(unusual)))
    return pl.concat([first, second])


def _shared(column: str, frame: pl.DataFrame, max_shared: int) -> pl.DataFrame:
    """customer_id, other_id, same_<column> for customers whose <column>_key is the same."""
    key = f"{column}_key"
    keyed = (frame.select("customer_id", key).drop_nulls(key)
             .filter(pl.len().over(key).is_between(2, max_shared)))
    return (keyed.join(keyed.rename({"customer_id": "other_id"}), on=key)
            .filter(pl.col("customer_id") < pl.col("other_id"))
            .select("customer_id", "other_id", pl.lit(True).alias(f"same_{column}"))
            .unique(["customer_id", "other_id"]))


def _similar_names(frame: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """customer_id, other_id, similar (the names' score), place: pairs of one place whose names are alike."""
    named = (frame.filter((pl.col("name_key") != "") & pl.col("block").is_not_null())
             .filter(pl.len().over("block") > 1)
             .sort("customer_id"))  # in a block, a row before another has the lower id: pairs come out in order
    found: list[pl.DataFrame] = []
    for block in named.partition_by("block", maintain_order=True):
        keys = block["name_key"].to_list()
        for rows, cols, scores in _upper_triangle(keys, threshold):
            found.append(pl.DataFrame({"left": block["customer_id"].gather(rows), "right": block["customer_id"].gather(cols),
                                       "similar": scores, "place": block["place"].gather(rows),
                                       "left_digits": block["digits"].gather(rows), "right_digits": block["digits"].gather(cols),
                                       "left_country": block["country_key"].gather(rows),
                                       "right_country": block["country_key"].gather(cols)}))
    if not found:
        return pl.DataFrame(schema={"customer_id": pl.String, "other_id": pl.String, "similar": pl.Float64,
                                    "place": pl.String})
    pairs = pl.concat(found)
    different_numbers = ((pl.col("left_digits") != "") & (pl.col("right_digits") != "")
                         & (pl.col("left_digits") != pl.col("right_digits")))
    different_countries = pl.col("left_country").is_not_null() & pl.col("right_country").is_not_null() & (
        pl.col("left_country") != pl.col("right_country"))
    return (pairs.filter(~different_numbers & ~different_countries)
            .select(pl.col("left").alias("customer_id"), pl.col("right").alias("other_id"), pl.col("similar").cast(pl.Float64),
                    "place"))


def _upper_triangle(keys: list[str], threshold: float) -> Iterator[tuple[pl.Series, pl.Series, np.ndarray]]:
    """(row positions, column positions, scores) of every pair i < j of ``keys`` (names with their words sorted)
    whose ``fuzz.ratio`` is at least ``threshold``: their names' ``token_sort_ratio``, about seven times faster
    than asking RapidFuzz for that scorer, which sorts the words again for every pair. Computed in slices of
    rows, so that one call holds at most ``_MATRIX_CELLS`` scores."""
    n = len(keys)
    step = max(1, _MATRIX_CELLS // n)
    for start in range(0, n - 1, step):
        stop = min(n, start + step)
        matrix = process.cdist(keys[start:stop], keys[start:], scorer=fuzz.ratio,
                               score_cutoff=threshold, dtype=np.float32, workers=-1)
        # cdist writes 0 below the cutoff; only the part right of the diagonal is a new pair
        upper = np.triu(np.ones(matrix.shape, dtype=bool), k=1)
        rows, cols = np.nonzero(upper & (matrix >= threshold) & (matrix > 0))
        if len(rows):
            yield (pl.Series(rows + start, dtype=pl.UInt32), pl.Series(cols + start, dtype=pl.UInt32),
                   matrix[rows, cols].astype(np.float64))


# --- merge and undo -------------------------------------------------------------------


@dataclass(frozen=True)
class MergeResult:
    """What a merge did: its id in ``merge_history``, the kept and merged ids, rows repointed per table."""

    merge_id: int
    kept_id: str
    merged_ids: tuple[str, ...]
    repointed: dict[str, int]
    data_version: int


@dataclass(frozen=True)
class UnmergeResult:
    """What undoing a merge did: the customers put back and the rows pointed back at them, per table."""

    merge_id: int
    kept_id: str
    restored_ids: tuple[str, ...]
    repointed: dict[str, int]
    data_version: int


def merge_customers(store: Store, keep_id: str, merge_ids: Sequence[str], actor: str | None = None,
                    role: str | None = None) -> MergeResult:
    """Merge the customers ``merge_ids`` into ``keep_id`` in one transaction; new data version.

    Every row of ``REFERENCING_TABLES`` that names a merged id names ``keep_id`` afterwards, and the
    merged customer rows are deleted; the kept customer's own row is left as it is. The deleted rows
    and each changed (table, key, old customer id) are stored in ``customer_merges`` for
    ``undo_merge``. Raises MergeError, with nothing changed, when an id does not exist, ``keep_id``
    is among ``merge_ids``, no id is given to merge, or the database refuses. Audited as
    ``customers.merged`` (by ``actor``) in the same transaction; with ``role``, NotPermitted (nothing
    changed) unless that role may merge (crm.roles).
    """
    if role is not None:
        require(role, "merge")
    others = tuple(dict.fromkeys(merge_ids))
    if not others:
        raise MergeError(f"name at least one customer to merge into {keep_id}")
    if keep_id in others:
        raise MergeError(f"customer {keep_id} cannot be merged into itself")
    store.ensure_schema()
    try:
        return _merge(store, keep_id, others, actor)
    except _database_errors(store) as exc:
        raise MergeError(f"the database refused the merge ({_reason(exc)}); nothing was changed") from None


def _merge(store: Store, keep_id: str, others: tuple[str, ...], actor: str | None) -> MergeResult:
    c = schema.customers
    with store.transaction() as conn:
        wanted = [keep_id, *others]
        present = set(conn.execute(sa.select(c.c.customer_id).where(c.c.customer_id.in_(wanted)).with_for_update()).scalars())
        missing = [i for i in wanted if i not in present]
        if missing:
            raise MergeError(f"no customer {', '.join(missing)}; nothing was merged")
        removed = pl.read_database(sa.select(c).where(c.c.customer_id.in_(others)), conn,
                                   schema_overrides=schema.polars_schema("customers"), infer_schema_length=None)
        repointed: dict[str, dict[str, list[str]]] = {}
        counts: dict[str, int] = {}
        for name in REFERENCING_TABLES:
            table, key = schema.table(name), _key(name)
            rows = conn.execute(sa.select(table.c[key], table.c.customer_id).where(table.c.customer_id.in_(others))).all()
            if not rows:
                continue
            by_old: dict[str, list[str]] = {}
            for row_key, old in rows:
                by_old.setdefault(old, []).append(row_key)
            repointed[name] = by_old
            counts[name] = conn.execute(table.update().where(table.c.customer_id.in_(others))
                                        .values(customer_id=keep_id)).rowcount
        conn.execute(c.delete().where(c.c.customer_id.in_(others)))
        merge_id = conn.execute(schema.customer_merges.insert().values(
            at=datetime.now().replace(microsecond=0), actor=actor, kept_id=keep_id, merged_ids=json.dumps(list(others)),
            rows=json.dumps(counts), customers=removed.write_ndjson(), repointed=json.dumps(repointed),
        )).inserted_primary_key
        assert merge_id is not None
        version = store.bump_version(conn, ("customers", *REFERENCING_TABLES))
        audit(conn, actor, "customers.merged", {"merge": int(merge_id[0]), "kept": keep_id, "merged": list(others),
                                                "repointed": counts, "data_version": version})
    return MergeResult(int(merge_id[0]), keep_id, others, counts, version)


def undo_merge(store: Store, merge_id: int, actor: str | None = None, role: str | None = None) -> UnmergeResult:
    """Put back the customers a merge deleted and point their rows back at them, in one transaction; new data version.

    The result is the store as before the merge, except for what was changed since by other means
    (rows added to the kept customer stay with it). Raises MergeError, with nothing changed, when
    the merge does not exist or was undone, when a later merge still in force merged the kept
    customer or involves the restored ones (undo that one first), when a restored id exists again,
    or when a repointed row has since been deleted or moved to another customer. Audited as
    ``customers.unmerged`` (by ``actor``) in the same transaction; with ``role``, NotPermitted (nothing
    changed) unless that role may merge (crm.roles).
    """
    if role is not None:
        require(role, "merge")
    store.ensure_schema()
    try:
        return _undo(store, merge_id, actor)
    except _database_errors(store) as exc:
        raise MergeError(f"merge {merge_id} could not be undone ({_reason(exc)}); nothing was changed") from None


def _undo(store: Store, merge_id: int, actor: str | None) -> UnmergeResult:
    m, c = schema.customer_merges, schema.customers
    with store.transaction() as conn:
        record = conn.execute(sa.select(m).where(m.c.id == merge_id).with_for_update()).mappings().first()
        if record is None:
            raise MergeError(f"there is no merge {merge_id}")
        if record["undone_at"] is not None:
            raise MergeError(f"merge {merge_id} was already undone on {record['undone_at']:%Y-%m-%d %H:%M}")
        kept: str = record["kept_id"]
        merged: tuple[str, ...] = tuple(json.loads(record["merged_ids"]))
        involved = {kept, *merged}
        later = conn.execute(sa.select(m.c.id, m.c.kept_id, m.c.merged_ids).where(
            m.c.id > merge_id, m.c.undone_at.is_(None)).order_by(m.c.id)).all()
        blocking = [row.id for row in later if row.kept_id in merged or involved & set(json.loads(row.merged_ids))]
        if blocking:
            raise MergeError(f"merge {', '.join(map(str, blocking))} changed the same customers after merge {merge_id}: "
                             "undo it first")
        back = sorted(conn.execute(sa.select(c.c.customer_id).where(c.c.customer_id.in_(merged))).scalars())
        if back:
            which = f"customer {back[0]} exists" if len(back) == 1 else f"customers {', '.join(back)} exist"
            raise MergeError(f"{which} again since merge {merge_id}; it cannot be undone")
        if conn.execute(sa.select(c.c.customer_id).where(c.c.customer_id == kept)).first() is None:
            raise MergeError(f"customer {kept}, kept by merge {merge_id}, no longer exists; the merge cannot be undone")
        counts: dict[str, int] = {}
        for name, by_old in json.loads(record["repointed"]).items():
            table, key = schema.table(name), _key(name)
            expected = done = 0
            for old, keys in by_old.items():
                expected += len(keys)
                for chunk in _chunks(keys):
                    done += conn.execute(table.update().where(table.c[key].in_(chunk), table.c.customer_id == kept)
                                         .values(customer_id=old)).rowcount
            if done != expected:
                raise MergeError(f"{expected - done:,} of the {expected:,} {name} rows merge {merge_id} moved to {kept} "
                                 "were deleted or moved since; it cannot be undone exactly (nothing was changed)")
            counts[name] = done
        store.insert_frame(conn, "customers", _customer_rows(record["customers"]))
        conn.execute(m.update().where(m.c.id == merge_id).values(undone_at=datetime.now().replace(microsecond=0),
                                                                 undone_by=actor))
        version = store.bump_version(conn, ("customers", *REFERENCING_TABLES))
        audit(conn, actor, "customers.unmerged", {"merge": merge_id, "kept": kept, "restored": list(merged),
                                                  "repointed": counts, "data_version": version})
    return UnmergeResult(merge_id, kept, merged, counts, version)


def merge_history(store: Store) -> pl.DataFrame:
    """Every merge, newest first: id, at, actor, kept_id, merged_ids (comma-separated), repointed (rows),
    undone_at, undone_by. Empty (no columns) for a store without the schema."""
    if not store.has_schema():
        return pl.DataFrame()
    store.ensure_schema()
    m = schema.customer_merges
    with store.connect() as conn:
        records = conn.execute(sa.select(m.c.id, m.c.at, m.c.actor, m.c.kept_id, m.c.merged_ids, m.c.rows, m.c.undone_at,
                                         m.c.undone_by).order_by(m.c.id.desc())).all()
    return pl.DataFrame(
        [(r.id, r.at, r.actor, r.kept_id, ", ".join(json.loads(r.merged_ids)), sum(json.loads(r.rows or "{}").values()),
          r.undone_at, r.undone_by) for r in records],
        schema={"id": pl.Int64, "at": pl.Datetime("us"), "actor": pl.String, "kept_id": pl.String, "merged_ids": pl.String,
                "repointed": pl.Int64, "undone_at": pl.Datetime("us"), "undone_by": pl.String},
        orient="row")


def _key(name: str) -> str:
    key = schema.primary_key(name)
    assert key is not None, f"{name} names customers, so it has a one-column key to record what a merge changed"
    return key


def _chunks(keys: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), _KEYS_PER_STATEMENT):
        yield keys[start:start + _KEYS_PER_STATEMENT]


def _customer_rows(ndjson: str) -> pl.DataFrame:
    """The customer rows a merge deleted, from their NDJSON, in the canonical dtypes (columns added to the
    schema since are empty)."""
    target = schema.polars_schema("customers")
    as_text = {k: (pl.String() if isinstance(v, pl.Datetime | pl.Date) else v) for k, v in target.items()}
    frame = pl.read_ndjson(ndjson.encode("utf-8"), schema=as_text)
    return frame.with_columns(
        [pl.col(k).str.to_datetime(time_unit="us", strict=True) for k, v in target.items() if isinstance(v, pl.Datetime)]
        + [pl.col(k).str.to_date(strict=True) for k, v in target.items() if isinstance(v, pl.Date)])


def _database_errors(store: Store) -> tuple[type[BaseException], ...]:
    """What a refused write raises: SQLAlchemy's wrapper, or the driver's own error (bulk writes use its cursor)."""
    return sa.exc.DBAPIError, store.engine.dialect.loaded_dbapi.Error


def _reason(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig else exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__
