"""Field masking: customer email and phone hidden from roles that do not call customers.

Who sees contacts unmasked is crm.roles' ``see_contacts`` action (admin, manager, rep); everyone else
(executive, analyst) gets them masked in the grid, in every export format and in the manifest's note.
Pure functions over Polars frames; no Streamlit here.

- email: the first character and the domain stay, ``anna.berg@example.com`` → ``a***@example.com``;
  a text without ``@`` keeps its first character (``a***``).
- phone: the last two digits stay behind eight bullets, ``+44 20 7946 0112`` → ``••••••••12``;
  a number with fewer than three digits keeps none (``••••••••``).
- an empty cell stays empty (null stays null, ``""`` stays ``""``).

Masking a masked value gives the same value, so masking twice (grid, then export) is harmless.
"""

from __future__ import annotations

import polars as pl

from crm.roles import may

CONTACT_COLUMNS: tuple[str, ...] = ("email", "phone")
"""The columns masked wherever they appear in a frame."""

BULLETS = "•" * 8
"""What a phone number's hidden digits become (always eight: the length tells nothing)."""


def sees_contacts(role: str | None) -> bool:
    """True when ``role`` sees email and phone as stored. ``None`` is a trusted caller with no person
    behind it (the CLI without ``--as``: whoever holds the store's URL); an unknown role is masked."""
    return role is None or may(role, "see_contacts")


def mask_email(column: str = "email") -> pl.Expr:
    """The email column masked: first character, ``***``, then ``@domain`` when there is one."""
    text = pl.col(column).cast(pl.String).str.strip_chars()
    return (
        pl.when(text.is_null() | (text == "")).then(text)
        .when(text.str.contains("@", literal=True))
        .then(text.str.replace(r"^([^@*]?)[^@]*@", "${1}***@"))  # a first "*" is a mask already
        .otherwise(text.str.replace(r"^([^*]?)(?s:.*)$", "${1}***"))
        .alias(column)
    )


def mask_phone(column: str = "phone") -> pl.Expr:
    """The phone column masked: eight bullets and the last two digits (none kept under three digits)."""
    text = pl.col(column).cast(pl.String).str.strip_chars()
    digits = text.str.replace_all(r"\D", "")
    return (
        pl.when(text.is_null() | (text == "") | text.str.starts_with(BULLETS)).then(text)  # masked already
        .when(digits.str.len_chars() >= 3).then(pl.lit(BULLETS) + digits.str.slice(-2))
        .otherwise(pl.lit(BULLETS))
        .alias(column)
    )


_MASKS = {"email": mask_email, "phone": mask_phone}


def masked_columns(columns: list[str] | tuple[str, ...], role: str | None) -> tuple[str, ...]:
    """The contact columns among ``columns`` that ``role`` gets masked (empty when it sees them)."""
    if sees_contacts(role):
        return ()
    return tuple(c for c in CONTACT_COLUMNS if c in columns)


def mask_contacts(frame: pl.DataFrame, role: str | None) -> pl.DataFrame:
    """``frame`` with its email and phone columns masked for ``role`` (unchanged for roles that see
    contacts, and for frames without those columns); other columns and the row order are untouched."""
    hidden = masked_columns(frame.columns, role)
    if not hidden:
        return frame
    return frame.with_columns(_MASKS[c](c) for c in hidden)


def masking_note(columns: list[str] | tuple[str, ...], role: str | None) -> str:
    """What an export's manifest says about masking: ``email and phone masked for the analyst role``,
    or "" when nothing was masked."""
    hidden = masked_columns(columns, role)
    if not hidden:
        return ""
    return f"{' and '.join(hidden)} masked for the {role or 'unknown'} role"


__all__ = ["BULLETS", "CONTACT_COLUMNS", "mask_contacts", "mask_email", "mask_phone", "masked_columns", "masking_note",
           "sees_contacts"]
