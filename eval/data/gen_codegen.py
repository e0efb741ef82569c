"""Generates the data files of the codegen workload (eval/data/codegen/), read by generated code
through the REPL's predefined DATA_DIR.

sales.csv, temperatures.csv, stocks.csv, products.json and server.log: synthetic, seeded, with
enough structure (seasons, trends, error bursts) that the tasks have real answers. Deterministic;
never downloads.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import random
from pathlib import Path

SEED = 20240501
OUT = Path(__file__).with_name("codegen")

REGIONS = {"North": 1.0, "South": 1.25, "East": 0.9, "West": 1.1}
PRODUCTS = {"Widget": 12.5, "Gadget": 24.0, "Gizmo": 7.25, "Doohickey": 45.0, "Sprocket": 3.1}

# city: (mean temperature, seasonal amplitude, day of the year of the warmest day, wet days share)
CLIMATES = {
    "Oslo": (6.5, 10.5, 200, 0.45),
    "Madrid": (15.0, 9.5, 205, 0.2),
    "Cairo": (22.5, 7.0, 210, 0.03),
    "Tokyo": (16.0, 9.5, 220, 0.35),
    "Sydney": (18.0, 4.5, 20, 0.35),
    "Toronto": (8.5, 13.0, 200, 0.4),
}

TICKERS = {"ACME": (120.0, 0.0004, 0.014), "BOLT": (45.0, 0.0010, 0.025)}
TICKERS |= {"CRUX": (310.0, -0.0002, 0.011), "DYNA": (18.0, 0.0006, 0.032)}

ENDPOINTS = ["/api/items", "/api/items/{id}", "/api/orders", "/api/orders/{id}", "/api/users/{id}"]
ENDPOINTS += ["/login", "/logout", "/search", "/health"]
SERVICES = ["api", "auth", "db", "cache", "worker"]
WARNINGS = [
    "slow query took {ms} ms",
    "retrying request to payment gateway (attempt {n})",
    "cache miss rate above 30%",
    "disk usage at {pct}%",
]
ERRORS = [
    "database connection timed out after {ms} ms",
    "upstream returned 502 for /api/orders",
    "failed to parse request body: unexpected end of JSON",
    "worker {n} crashed: out of memory",
]


def _csv(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def sales(rng: random.Random) -> str:
    rows = []
    for year in (2023, 2024):
        for month in range(1, 13):
            season = 1.0 + 0.25 * math.sin(2 * math.pi * (month - 3) / 12)
            trend = 1.0 + 0.08 * (year - 2023) + 0.005 * month
            for region, weight in REGIONS.items():
                for product, price in PRODUCTS.items():
                    base = 400 / math.sqrt(price)
                    units = max(0, round(base * weight * season * trend * rng.uniform(0.8, 1.2)))
                    revenue = f"{units * price:.2f}"
                    rows.append([region, f"{year}-{month:02d}", product, units, revenue])
    return _csv(["region", "month", "product", "units", "revenue"], rows)


def temperatures(rng: random.Random) -> str:
    rows = []
    for city, (mean, amp, peak, wet) in CLIMATES.items():
        day = dt.date(2024, 1, 1)
        while day.year == 2024:
            doy = day.timetuple().tm_yday
            t = mean + amp * math.cos(2 * math.pi * (doy - peak) / 366) + rng.gauss(0, 2.2)
            rain = round(rng.expovariate(1 / 6.0), 1) if rng.random() < wet else 0.0
            rows.append([city, day.isoformat(), f"{t:.1f}", rain])
            day += dt.timedelta(days=1)
    return _csv(["city", "date", "temp_c", "precip_mm"], rows)


def stocks(rng: random.Random) -> str:
    rows = []
    prices = {t: p for t, (p, _, _) in TICKERS.items()}
    day = dt.date(2024, 1, 2)
    while day <= dt.date(2024, 12, 31):
        if day.weekday() < 5:
            for ticker, (_, drift, vol) in TICKERS.items():
                prices[ticker] *= math.exp(drift + vol * rng.gauss(0, 1))
                volume = int(rng.lognormvariate(13, 0.4))
                rows.append([day.isoformat(), ticker, f"{prices[ticker]:.2f}", volume])
        day += dt.timedelta(days=1)
    return _csv(["date", "ticker", "close", "volume"], rows)


def products(rng: random.Random) -> str:
    adjectives = ["Compact", "Deluxe", "Eco", "Classic", "Smart", "Rugged", "Mini", "Pro"]
    nouns = ["Kettle", "Lamp", "Backpack", "Speaker", "Blender", "Chair", "Drill", "Tent"]
    categories = {"Kettle": "kitchen", "Blender": "kitchen", "Lamp": "home", "Chair": "home"}
    categories |= {"Speaker": "electronics", "Drill": "tools", "Backpack": "outdoor"}
    categories |= {"Tent": "outdoor"}
    tag_pool = ["bestseller", "new", "sale", "eco", "gift", "limited"]
    items, seen = [], set()
    while len(items) < 60:
        name = f"{rng.choice(adjectives)} {rng.choice(nouns)}"
        if name in seen:
            continue
        seen.add(name)
        noun = name.split()[1]
        items.append(
            {
                "id": len(items) + 1,
                "name": name,
                "category": categories[noun],
                "price": round(rng.uniform(9, 250), 2),
                "rating": round(rng.uniform(2.5, 5.0), 1),
                "reviews": rng.randint(0, 2500),
                "stock": rng.randint(0, 300),
                "tags": sorted(rng.sample(tag_pool, rng.randint(0, 3))),
            }
        )
    return json.dumps(items, indent=1) + "\n"


def server_log(rng: random.Random) -> str:
    lines = []
    t = dt.datetime(2024, 5, 1, 8, 0, 0)
    burst_until = None
    for _ in range(2200):
        t += dt.timedelta(seconds=rng.expovariate(1 / 9.0))
        if burst_until is None and rng.random() < 0.004:
            burst_until = t + dt.timedelta(minutes=rng.randint(3, 10))  # an incident
        in_burst = burst_until is not None and t < burst_until
        if burst_until is not None and t >= burst_until:
            burst_until = None
        stamp = t.strftime("%Y-%m-%dT%H:%M:%SZ")
        r = rng.random()
        if r < (0.25 if in_burst else 0.015):
            msg = rng.choice(ERRORS).format(ms=rng.randint(3000, 30000), n=rng.randint(1, 8))
            lines.append(f"{stamp} ERROR {rng.choice(SERVICES):<6} {msg}")
        elif r < (0.4 if in_burst else 0.06):
            msg = rng.choice(WARNINGS).format(
                ms=rng.randint(800, 5000), n=rng.randint(1, 4), pct=rng.randint(80, 97)
            )
            lines.append(f"{stamp} WARN  {rng.choice(SERVICES):<6} {msg}")
        else:
            path = rng.choice(ENDPOINTS).format(id=rng.randint(1, 999))
            method = "POST" if path in ("/login", "/api/orders") and rng.random() < 0.6 else "GET"
            status = rng.choices([200, 201, 304, 400, 401, 404, 500], [80, 4, 6, 3, 2, 4, 1])[0]
            if in_burst and rng.random() < 0.3:
                status = 503
            ms = max(1, int(rng.lognormvariate(3.3, 0.7) * (4 if in_burst else 1)))
            lines.append(f"{stamp} INFO  api    {method} {path} {status} {ms}ms")
    return "\n".join(lines) + "\n"


FILES = {
    "sales.csv": sales,
    "temperatures.csv": temperatures,
    "stocks.csv": stocks,
    "products.json": products,
    "server.log": server_log,
}


def main(out: Path = OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in FILES.items():
        # One generator per file: changing one file's recipe leaves the others as they are.
        rng = random.Random(f"{SEED}:{name}")
        p = out / name
        p.write_text(make(rng))
        written.append(p)
    return written


if __name__ == "__main__":
    for p in main():
        print(p)
