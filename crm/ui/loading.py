"""What a page shows while the store's data loads (first start, after an import): the page's frame
(navigation in the sidebar, the title) and a progress bar naming the step, never a blank page."""

from __future__ import annotations

import streamlit as st

from crm.ui.pages import pages_for
from crm.ui.session import current_user


class LoadingView:
    """A progress callback (crm.dataset.Progress) that draws the frame and a bar on its first call;
    ``close()`` removes them once the data is there. Never called: nothing is drawn (a cache hit)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._main: st.delta_generator.DeltaGenerator | None = None
        self._side: st.delta_generator.DeltaGenerator | None = None
        self._bar: st.delta_generator.DeltaGenerator | None = None
        self._draws = 0  # closed and drawn again (a first start's demo fill, then the sign-in): a new key

    def __call__(self, fraction: float, text: str) -> None:
        if self._bar is None:
            self._side = st.sidebar.empty()
            with self._side.container():
                user = current_user()  # nobody yet on a first start's demo fill: every page
                for page in pages_for(user.role if user else None):
                    st.page_link(page.path, label=page.title, icon=page.icon)
            self._main = st.empty()
            self._draws += 1
            with self._main.container(key=f"loading_{self._draws}"):
                st.title(self.title)
                self._bar = st.progress(0.0, text=text)
        self._bar.progress(min(max(fraction, 0.0), 1.0), text=text)

    def close(self) -> None:
        """Remove the bar and the stand-in frame (the page draws its own)."""
        for slot in (self._main, self._side):
            if slot is not None:
                slot.empty()
        self._main = self._side = self._bar = None
