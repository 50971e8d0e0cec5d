"""The server's compute slots (crm.ui.loaders): at most N page computations at once, the rest wait; a thread
holding a slot may compute nested parts without waiting for a second one; the number comes from
CRM_COMPUTE_SLOTS or the cores."""

from __future__ import annotations

import threading
import time

import pytest

from crm.ui.loaders import _Slots, compute_slots


def test_at_most_n_computations_run_at_once():
    slots = _Slots(2)
    running, most = 0, 0
    lock = threading.Lock()
    started = threading.Barrier(6)

    def work() -> None:
        nonlocal running, most
        started.wait()
        with slots.slot():
            with lock:
                running += 1
                most = max(most, running)
            time.sleep(0.05)
            with lock:
                running -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert most == 2
    assert running == 0


def test_a_thread_holding_a_slot_does_not_wait_for_another():
    slots = _Slots(1)
    done = threading.Event()

    def nested() -> None:
        with slots.slot(), slots.slot(), slots.slot():
            pass
        with slots.slot():  # and the slot is free again afterwards
            done.set()

    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert done.is_set()


def test_a_failed_computation_gives_its_slot_back():
    slots = _Slots(1)
    with pytest.raises(RuntimeError), slots.slot():
        raise RuntimeError("boom")
    acquired = threading.Event()

    def take() -> None:
        with slots.slot():
            acquired.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert acquired.is_set()


@pytest.mark.parametrize(("value", "cores", "expected"), [
    ("3", 8, 3), ("1", 8, 1), ("0", 8, 1), ("", 8, 8), ("", 1, 2), ("many", 4, 4),
])
def test_slots_from_the_environment_or_the_cores(monkeypatch, value, cores, expected):
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    assert compute_slots({"CRM_COMPUTE_SLOTS": value}) == expected
