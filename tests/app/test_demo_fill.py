"""The app's first start on an empty embedded store: demo data and one demo-only user per role."""

from __future__ import annotations

from crm import auth
from crm.store import Store
from crm.ui.loaders import fill_with_demo_if_empty


def test_an_empty_store_is_filled_with_demo_data_and_demo_users(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'crm.db'}")
    assert fill_with_demo_if_empty(store)
    users = auth.list_users(store)
    assert sorted(zip(users["name"], users["role"], strict=True)) == [
        ("admin", "admin"), ("analyst", "analyst"), ("exec", "executive"), ("manager", "manager"), ("rep", "rep")]
    assert auth.authenticate(store, "manager", auth.DEMO_PASSWORD).scope.regions == ("Europe",)
    assert not fill_with_demo_if_empty(store)  # a second start finds data and leaves it alone
    store.close()
