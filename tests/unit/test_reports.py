"""Report tables behind the cockpit panels, on hand-made frames."""

from __future__ import annotations

from datetime import date, datetime

from crm.dataset import frames_from_rows
from crm.filters import Filters, Period
from crm.reports import build_report
from crm.scope import Scope


def test_revenue_a_year_earlier_is_a_gap_before_the_data_begins_and_zero_after():
    deals = [
        # the store's first deal: created 10 March 2025, won in April 2025
        {"opportunity_id": "D1", "amount": 100.0, "created_at": datetime(2025, 3, 10), "closed_at": datetime(2025, 4, 2),
         "status": "won"},
        {"opportunity_id": "D2", "amount": 40.0, "created_at": datetime(2026, 1, 5), "closed_at": datetime(2026, 4, 20),
         "status": "won"},
    ]
    frames = frames_from_rows({"opportunities": deals})
    table = build_report("revenue_by_month", frames, Filters.create(Period(date(2026, 4, 1), date(2026, 6, 30)), scope=Scope()))
    months = [m.isoformat() for m in table["month"]]
    assert months[0] == "2025-07-01" and months[-1] == "2026-06-01"
    by_month = dict(zip(months, table["revenue_won_previous_year"].to_list(), strict=True))
    # a year earlier: Jul 2024 .. Feb 2025 ended before the first deal -> no data; Mar 2025 on -> real values
    assert all(by_month[m] is None for m in months[:8])
    assert by_month["2026-03-01"] == 0.0 and by_month["2026-04-01"] == 100.0
    assert dict(zip(months, table["revenue_won"].to_list(), strict=True))["2026-04-01"] == 40.0
