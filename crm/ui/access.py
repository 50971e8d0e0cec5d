"""What the signed-in person may do here: their name for the audit log, their role for writes and masking.

The UI hides or disables a control a role may not use and says who may (``only_for``); the crm function
behind it checks again (crm.roles.NotPermitted), so a crafted request changes nothing either.
"""

from __future__ import annotations

import streamlit as st

from crm.roles import may, who_may
from crm.ui.session import current_user


def actor_name() -> str | None:
    """Who the audit log names for what this session does: the signed-in user's name, else None."""
    user = current_user()
    return user.name if user is not None else None


def actor_role() -> str:
    """The signed-in user's role; "" when nobody is signed in (then every check refuses and contacts are
    masked: an unknown person is treated as the least trusted)."""
    user = current_user()
    return user.role if user is not None else ""


def allowed(action: str) -> bool:
    """True when the signed-in person may do ``action`` (a key of crm.roles.ACTIONS)."""
    return may(actor_role(), action)


def only_for(action: str, what: str) -> None:
    """A caption in place of a control the person may not use: "Only managers and admins may change …
    (you are signed in as a rep)."."""
    role = actor_role()
    st.caption(f"Only {who_may(action)} may {what} "
               f"({f'you are signed in as {_article(role)} {role}' if role else 'nobody is signed in'}).")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


__all__ = ["actor_name", "actor_role", "allowed", "only_for"]
