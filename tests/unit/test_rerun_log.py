"""crm.ui.rerun_log: one JSON line per rerun when CRM_RERUN_LOG is set, nothing otherwise."""

from __future__ import annotations

import json
import time

import pytest

from crm.ui.rerun_log import ENV, timed_rerun


class StopException(Exception):  # named like Streamlit's: the log calls it "stop"
    pass


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_off_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with timed_rerun("funnel", {"from": "2026-01-01"}):
        pass
    assert list(tmp_path.iterdir()) == []


def test_one_line_per_rerun_with_its_page_query_and_times(tmp_path, monkeypatch):
    log = tmp_path / "reruns.jsonl"
    monkeypatch.setenv(ENV, str(log))
    before = time.time()
    with timed_rerun("funnel", {"from": "2026-01-01", "region": "North"}):
        sum(i * i for i in range(200_000))  # some CPU in the script's thread
    with pytest.raises(StopException), timed_rerun("", {}):
        raise StopException
    with pytest.raises(ValueError), timed_rerun("service", {}):
        raise ValueError("boom")
    first, stopped, failed = lines(log)
    assert (first["page"], first["query"], first["outcome"]) == ("funnel", {"from": "2026-01-01", "region": "North"},
                                                                 "done")
    assert 0 < first["thread_cpu_s"] and 0 < first["seconds"] < 60 and before <= first["ended"] <= time.time()
    assert first["rss_mb"] > 0 and first["peak_rss_mb"] >= first["rss_mb"] and first["process_cpu_s"] > 0
    assert (stopped["page"], stopped["outcome"]) == ("", "stop")
    assert (failed["page"], failed["outcome"]) == ("service", "ValueError")
    assert stopped["process_cpu_s"] >= first["process_cpu_s"]
