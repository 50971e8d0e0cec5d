"""Who is signed in to this browser: the login page, the session cookie, sign-out, the "not permitted" page.

Every page run goes through :func:`require_user` (``page_frame`` calls it once the store is reached): it
turns the browser's session token back into the user (crm.auth.check_session, so a disabled user, a new
role or scope, or a session idle past ``CRM_SESSION_IDLE_HOURS`` counts at once), or draws the login page
and stops the run, so a visitor never gets a page's data.

Why a cookie, set from a script. ``st.session_state`` lives as long as one websocket connection: a reload,
a link opened in a new tab or a typed URL starts a new one, empty. The token must live in the browser.
Streamlit 1.67 reads cookies (``st.context.cookies``, sent with the websocket's opening request) but has no
API to write one (streamlit/streamlit#861, #14730 are open), so after a sign-in the token is written by a
few lines of JavaScript in ``st.html(..., unsafe_allow_javascript=True)``: ``document.cookie`` with
``Path=/``, ``SameSite=Strict`` (no other site's link or form sends it) and ``Secure`` over HTTPS, no
expiry date (a browser session's cookie; the server ends idle sessions). Set from a script, the cookie
cannot be ``HttpOnly``: a script injected into the page could read it. What limits that: the token is 256
random bits that name one server-side session (the store keeps only its SHA-256), ending it at sign-out or
after the idle hours makes it worthless, and every value the app draws from data goes through
crm.format.plain (no HTML or script from data). The alternative, a server route that sets an ``HttpOnly``
cookie, needs Streamlit's ASGI mode (``st.App`` with custom routes) instead of ``streamlit run app.py``.
The same websocket session keeps the token in ``st.session_state`` too, because ``st.context.cookies``
still shows what the browser sent when the connection opened.
"""

from __future__ import annotations

import streamlit as st

from crm import auth
from crm.config import oidc_providers
from crm.format import plain
from crm.roles import ROLES, may_open
from crm.store import Store, StoreError
from crm.ui import loaders
from crm.ui.pages import PAGES, pages_for
from crm.ui.url import page_link

USER_KEY = "crm_user"
"""st.session_state key holding the signed-in crm.auth.User (re-read from the store on every run)."""
TOKEN_KEY = "crm_session_token"
"""st.session_state key holding this browser's session token (crm.auth.create_session)."""
COOKIE = "crm_session"
"""The browser cookie holding the session token."""

_ERROR_KEY = "login_error"
_SIGNED_OUT_KEY = "login_signed_out"
_OIDC_REFUSED_KEY = "login_oidc_refused"
_COOKIE_BOX = "crm_cookie"
"""Key of the invisible container of the cookie script (hidden by its own CSS: no gap in the layout)."""


def current_user() -> auth.User | None:
    """The person signed in to this session, or None."""
    user = st.session_state.get(USER_KEY)
    return user if isinstance(user, auth.User) else None


def require_user(store: Store, page_path: str) -> auth.User:
    """The signed-in user, with their name, role and scope and a "Sign out" button in the sidebar; or the
    login page and ``st.stop()``. A sign-in keeps the page and the URL (its query) the person opened."""
    sent = _cookie_token()
    token = st.session_state.get(TOKEN_KEY) or sent
    ended = None
    if token:
        check = auth.check_session(store, token)
        if check.user is not None:
            return _signed_in(store, check.user, token, sent)
        ended = check.ended
        _forget()
    providers = oidc_providers()
    if providers and _oidc_signed_in():
        if ended == "idle":  # the provider's sign-in outlives ours: end it too, then ask again
            st.logout()
            st.stop()
        user = _from_oidc(store)
        if user is not None:
            return _signed_in(store, user, st.session_state[TOKEN_KEY], sent)
    _login_page(store, page_path, providers, idle=ended == "idle", clear_cookie=bool(sent))
    st.stop()


def not_permitted(user: auth.User, page_path: str) -> None:
    """Instead of a page the user's role may not open: say so, who may, and link to the Cockpit; stop."""
    title = next((p.title for p in PAGES if p.path == page_path), page_path)
    who = [f"{role}s" for role in ROLES if may_open(role, page_path)]
    allowed = " and ".join(who) if who else "nobody"
    page_links(user)
    st.title(title)
    st.error(f"Not permitted: only {allowed} may open the {title} page (you are signed in as "
             f"{_article(user.role)} {user.role}).", icon=":material/block:")
    page_link("pages/cockpit.py", label="Go to the Cockpit", icon=":material/dashboard:")
    st.stop()


def page_links(user: auth.User | None) -> None:
    """The sidebar's links to the pages ``user`` may open (every page when nobody is known)."""
    with st.sidebar:
        for page in pages_for(user.role if user else None):
            page_link(page.path, label=page.title, icon=page.icon)


# --- the signed-in session ----------------------------------------------------------------------------


def _signed_in(store: Store, user: auth.User, token: str, sent: str | None) -> auth.User:
    st.session_state[USER_KEY] = user
    st.session_state[TOKEN_KEY] = token
    for key in (_ERROR_KEY, _SIGNED_OUT_KEY, _OIDC_REFUSED_KEY):
        st.session_state.pop(key, None)
    if sent != token:  # a sign-in in this connection: the browser does not hold the token yet
        _cookie_script(f"'{COOKIE}=' + {token!r} + '; Path=/; SameSite=Strict' + secure")
    with st.sidebar.container(key="account"):
        st.markdown(f"**{plain(user.display_name)}**")
        st.caption(plain(f"{user.role.capitalize()} · sees {user.scope.in_words()}"))
        st.button("Sign out", key="account_sign_out", icon=":material/logout:", on_click=_sign_out, args=(store,))
        st.divider()
    return user


def _sign_out(store: Store) -> None:
    auth.end_session(store, st.session_state.get(TOKEN_KEY))
    oidc = bool(oidc_providers()) and _oidc_signed_in()
    for key in list(st.session_state):  # the next person at this browser starts afresh (filters, choices)
        del st.session_state[key]
    st.session_state[_SIGNED_OUT_KEY] = True
    if oidc:
        st.logout()


def _forget() -> None:
    st.session_state.pop(USER_KEY, None)
    st.session_state.pop(TOKEN_KEY, None)


def _cookie_token() -> str | None:
    """The session token the browser sent when this connection opened (None in AppTest or without one)."""
    value = st.context.cookies.get(COOKIE)
    return value if isinstance(value, str) and value else None  # AppTest's client answers with a mock object


def _cookie_script(assignment: str) -> None:
    """Run ``document.cookie = <assignment>`` in the browser, in a container that takes no room."""
    with st.container(key=_COOKIE_BOX):
        st.html(f"<style>.st-key-{_COOKIE_BOX} {{ display: none; }}</style><script>"
                "const secure = window.location.protocol === 'https:' ? '; Secure' : '';"
                f"document.cookie = {assignment};</script>", unsafe_allow_javascript=True)


# --- signing in ------------------------------------------------------------------------------------------


def _start(store: Store, name: str, password: str) -> None:
    """Check a name and password (crm.auth.authenticate audits the attempt); on success start a session."""
    try:
        user = auth.authenticate(store, name, password)
        st.session_state[TOKEN_KEY] = auth.create_session(store, user.name)
    except auth.AuthError as exc:
        st.session_state[_ERROR_KEY] = str(exc)
        return
    except StoreError:
        st.session_state[_ERROR_KEY] = "the database cannot be reached right now; try again in a moment"
        return
    st.session_state[USER_KEY] = user
    st.session_state.pop(_ERROR_KEY, None)


def _submit(store: Store) -> None:
    name, password = st.session_state.get("login_name", ""), st.session_state.get("login_password", "")
    st.session_state["login_password"] = ""  # never kept in the session, whatever the outcome
    _start(store, name, password)


def _sign_in_demo(store: Store, name: str) -> None:
    _start(store, name, auth.DEMO_PASSWORD)


def _oidc_signed_in() -> bool:
    try:
        return bool(st.user.is_logged_in)
    except (AttributeError, KeyError):
        return False


def _from_oidc(store: Store) -> auth.User | None:
    """The local user named by the provider's e-mail address (crm.auth.authenticate_oidc), with a new session;
    None (and the reason kept for the login page) when there is none. One try per address and connection."""
    email = str(st.user.get("email") or "")
    if st.session_state.get(_OIDC_REFUSED_KEY) == email:
        return None
    try:
        user = auth.authenticate_oidc(store, email)
    except auth.AuthError as exc:
        st.session_state[_ERROR_KEY] = str(exc)
        st.session_state[_OIDC_REFUSED_KEY] = email
        return None
    st.session_state[TOKEN_KEY] = auth.create_session(store, user.name)
    return user


def _login_page(store: Store, page_path: str, providers: tuple[tuple[str | None, str], ...], idle: bool,
                clear_cookie: bool) -> None:
    if clear_cookie:  # the token the browser sent is over: forget it there too
        _cookie_script(f"'{COOKIE}=; Path=/; Max-Age=0; SameSite=Strict' + secure")
    opened = next((p.title for p in PAGES if p.path == page_path), None)
    _, middle, _ = st.columns([1, 3, 1])
    with middle:
        st.title("Sign in")
        st.caption(f"CRM Cockpit: sign in to open the {opened} page." if opened else "CRM Cockpit")
        if idle:
            hours = auth.session_idle_hours()
            st.info(f"Your session ended after {hours:g} idle hour{'s' if hours != 1 else ''}; sign in again.",
                    icon=":material/schedule:")
        elif st.session_state.get(_SIGNED_OUT_KEY):
            st.info("You are signed out.", icon=":material/logout:")
        error = st.session_state.get(_ERROR_KEY)
        if error:
            st.error(plain(error[:1].upper() + error[1:] + "."), icon=":material/lock:")
        with st.form("login_form", enter_to_submit=True):
            st.text_input("User name", key="login_name", autocomplete="username")
            st.text_input("Password", type="password", key="login_password", autocomplete="current-password")
            st.form_submit_button("Sign in", key="login_submit", type="primary", icon=":material/login:", on_click=_submit,
                                 args=(store,))
        for provider, label in providers:
            st.button(f"Sign in with {label}", key=f"login_oidc_{provider or 'default'}", icon=":material/badge:",
                      on_click=st.login, args=(provider,) if provider else ())
        if st.session_state.get(_OIDC_REFUSED_KEY):
            st.button("Sign out of the provider", key="login_oidc_logout", on_click=st.logout)
        _demo_users(store)


def _demo_users(store: Store) -> None:
    """On a demo store (the embedded one, or any the app fills with demo data: CRM_DEMO_ON_EMPTY=1): the demo
    users it has, one button per role, so the README's first command leads in one click to a full cockpit."""
    if not loaders.should_fill_with_demo(loaders.database_url()):
        return
    users = auth.list_users(store).filter(disabled=False)
    present = {row["name"]: row for row in users.to_dicts()}
    demo = [(name, role, scope) for name, role, scope, _ in auth.DEMO_USERS if name in present]
    if not demo:
        return
    st.subheader("Demo users")
    st.caption(plain(f"This is a demo store. One user per role, all with the demo-only password: "
                     f"{auth.DEMO_PASSWORD}. Never keep them on a store with real data."))
    for name, role, scope in demo:
        button, words = st.columns([2, 3], vertical_alignment="center")
        with button:
            st.button(f"Sign in as {role}", key=f"login_demo_{name}", on_click=_sign_in_demo, args=(store, name),
                      width="stretch")
        with words:
            st.markdown(plain(f"{name} · {role} · sees {scope.in_words()}"))


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


__all__ = ["COOKIE", "TOKEN_KEY", "USER_KEY", "current_user", "not_permitted", "page_links", "require_user"]
