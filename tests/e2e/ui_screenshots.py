"""Screenshots of the operator UI for docs/ui/ (the README shows them): the fraud app's
demo state served with its worker, fed a week of simulated payments after the demo's (the
amounts of a fifth of the terminals multiplied by 2.5, so drift alerts fire), with the
worker stopped for a while (a backlog builds and drains) and a few
malformed events (dead letters); then each page in Chromium.

    streamsense demo apps/fraud --days 35 --customers 300 --terminals 600 --state-dir D
    python -m tests.e2e.ui_screenshots D [--out docs/ui]

Monitoring thresholds are lowered for this small run (``min_rows``: a 6-hour window here
holds about 150 payments, not the 1,000 the shipped rules ask for)."""

from __future__ import annotations

import argparse
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
from playwright.sync_api import Page, sync_playwright

from streamsense.brokers import open_broker
from tests.e2e.ui_deployment import API_KEY, AUTH, ROOT, Deployment, ui_deployment

FRAUD = str(ROOT / "apps" / "fraud")
PAGES = ("overview", "streams", "decisions", "features", "models")
WEEK = timedelta(days=7)


def payments(state_dir: Path, days: int = 7) -> list[dict[str, Any]]:
    """The demo's last ``days`` of payments, a week later, new ids, drift injected."""
    table = pq.read_table(state_dir / "transactions.parquet").to_pylist()
    last = table[-1]["TX_DATETIME"]
    chosen = [row for row in table if row["TX_DATETIME"] > last - timedelta(days=days)]
    return [
        {
            "TRANSACTION_ID": 10_000_000 + row["TRANSACTION_ID"],
            "TX_DATETIME": (row["TX_DATETIME"] + WEEK).isoformat(),
            "CUSTOMER_ID": row["CUSTOMER_ID"],
            "TERMINAL_ID": row["TERMINAL_ID"],
            "TX_AMOUNT": row["TX_AMOUNT"] * (2.5 if row["TERMINAL_ID"] % 5 == 0 else 1.0),
            "TX_FRAUD": row["TX_FRAUD"],
        }
        for row in chosen
    ]


def feed(deployment: Deployment, rows: list[dict[str, Any]], per_second: float) -> None:
    """Posts the payments to the API in batches at about ``per_second``; the worker is
    stopped from a quarter of them to 45 % (a backlog builds, then drains)."""
    batch = 20
    with httpx.Client(base_url=deployment.url, headers=AUTH, timeout=30) as client:
        for start in range(0, len(rows), batch):
            if start == len(rows) // 4 // batch * batch:
                deployment.pause_worker()
            if start == len(rows) * 45 // 100 // batch * batch:
                deployment.resume_worker()
            answer = client.post("/v1/events/transactions", json=rows[start : start + batch])
            answer.raise_for_status()
            time.sleep(batch / per_second)


def dead_letters(state_dir: Path) -> None:
    broker = open_broker(f"embedded://{state_dir / 'broker.db'}")
    producer = broker.producer()
    producer.send("transactions", b"not json at all", b"7")
    producer.send("transactions", b'{"TRANSACTION_ID": 1, "TX_AMOUNT": "lots"}', b"7")
    producer.flush()
    producer.close()
    broker.close()


def shoot(page: Page, base: str, out: Path, payment: dict[str, Any]) -> None:
    customer, at = payment["CUSTOMER_ID"], payment["TX_DATETIME"]
    paths = {
        "streams": "streams?topic=transactions&n=6",
        "features": f"features?view=fraud.customer_id&key={customer}&at={at}",
    }
    for name in PAGES:
        page.goto(f"{base}/ui/{paths.get(name, name)}")
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-chart]')]"
            ".every(e => ['drawn', 'empty'].includes(e.getAttribute('data-state')))",
            timeout=30_000,
        )
        page.wait_for_timeout(2_500)
        page.screenshot(path=str(out / f"{name}.png"), full_page=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    parser.add_argument("--per-second", type=float, default=60.0)
    args = parser.parse_args()
    config = args.state_dir / "ui-monitoring.yaml"
    shipped = (ROOT / "apps" / "fraud" / "monitoring.yaml").read_text()
    config.write_text(shipped.replace("min_rows: 1000", "min_rows: 100"))
    rows = payments(args.state_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    env = {"STREAMSENSE_FRAUD_MONITORING": str(config)}
    with (
        ui_deployment(args.state_dir, FRAUD, env, feed=False) as deployment,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{deployment.url}/ui/streams")  # an open page keeps the UI sampling
        page.fill("input[name=key]", API_KEY)
        page.click("form.login button")
        dead_letters(args.state_dir)
        feeding = threading.Thread(target=feed, args=(deployment, rows, args.per_second))
        feeding.start()
        page.wait_for_timeout(1000 * 0.6 * len(rows) / args.per_second)  # shots while it runs
        shoot(page, deployment.url, args.out, rows[len(rows) // 2])
        feeding.join()
        browser.close()
    print(f"{len(PAGES)} screenshots in {args.out}")


if __name__ == "__main__":
    main()
