"""Generates the validation workload's data: a gazetteer of places and a small local-news feed.

news/gazetteer.json: the places the news tool knows ("City, ST" in the US, "City, Country"
elsewhere), the US state names, and the date range the feed covers. news/items.jsonl: one news
item per line, written from templates for this project. Deterministic; never downloads.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

from .seed_tables import CITIES, US_CITIES, US_STATES, WORLD_TOWNS, rows

SEED = 20240401
OUT = Path(__file__).with_name("news")
FIRST = dt.date(2024, 3, 1)
LAST = dt.date(2024, 4, 30)
BUSY_US = 40  # the first rows of US_CITIES are the largest cities: more news there
FEATURED = dt.date(2024, 4, 1)  # every busy place has news that day (the paper's example)

_STREETS = ["Main Street", "Oak Avenue", "River Road", "Station Road", "Market Street"]
_STREETS += ["Hill Road", "Park Lane", "Church Street", "Harbour Road", "Mill Lane"]
_THINGS = ["new bike lanes", "park renovations", "a library extension", "street lighting"]
_THINGS += ["school repairs", "a new bus depot", "flood defences", "a public swimming pool"]
_EVENTS = ["a food festival", "a jazz night", "a half marathon", "an art fair", "a book fair"]
_EVENTS += ["a farmers' market", "an open-air film screening", "a science week"]
_SHOPS = ["bakery", "bookshop", "bicycle repair shop", "coffee roastery", "hardware store"]
_WARDS = ["children's ward", "stroke unit", "maternity wing", "walk-in clinic"]
_COMPETITIONS = ["the regional cup", "the spring league", "the county championship"]

TEMPLATES = [
    (
        "local government",
        "{city} council approves budget for {thing}",
        "Councillors voted {yes} to {no} to fund {thing}, with work due to start in {month}.",
    ),
    (
        "transport",
        "Road works close {street} in {city} for {n} days",
        "Drivers are asked to use diversions while crews replace the surface of {street}.",
    ),
    (
        "culture",
        "{city} hosts {event} this weekend",
        "Organisers expect about {crowd} visitors; entry is free before noon.",
    ),
    (
        "weather",
        "Storm warning issued for the {city} area",
        "Forecasters expect gusts of up to {gust} km/h and heavy rain overnight.",
    ),
    (
        "sports",
        "{city} team wins {competition}",
        "The final ended {a} to {b} in front of a home crowd of {crowd}.",
    ),
    (
        "business",
        "New {shop} opens in central {city}",
        "The owners say they will hire {n} local staff in the first year.",
    ),
    (
        "education",
        "{city} schools announce longer library hours",
        "From {month}, school libraries will stay open until {hour} pm on weekdays.",
    ),
    (
        "health",
        "Hospital in {city} opens a new {ward}",
        "The {ward} adds {n} beds and was funded by a regional grant.",
    ),
    (
        "environment",
        "Volunteers plant {trees} trees in {city}",
        "The planting along {street} is part of a plan to cool the city in summer.",
    ),
    (
        "transport",
        "Bus fares in {city} to change in {month}",
        "A single ticket will cost {fare} in local currency, the transit authority said.",
    ),
]
_MONTHS = ["May", "June", "July", "August", "September"]


def places() -> list[dict]:
    out = []
    for city, st in rows(US_CITIES):
        out.append(
            {"name": f"{city}, {st}", "city": city, "region": st, "country": "United States"}
        )
    seen = {p["name"] for p in out}
    world = [(c[0], c[1]) for c in rows(CITIES) if c[1] != "United States"]
    world += [(c[0], c[1]) for c in rows(WORLD_TOWNS)]
    for city, country in world:
        name = f"{city}, {country}"
        if name not in seen:
            seen.add(name)
            out.append({"name": name, "city": city, "region": None, "country": country})
    return out


def items(places_: list[dict], rng: random.Random) -> list[dict]:
    busy = {p["name"] for p in places_[:BUSY_US]}
    busy |= {f"{c[0]}, {c[1]}" for c in rows(CITIES) if c[1] != "United States"}
    out = []
    day = FIRST
    while day <= LAST:
        for p in places_:
            rate = 0.2 if p["name"] in busy else 0.03
            if day == FEATURED and p["name"] in busy:
                rate = 1.0
            if rng.random() >= rate:
                continue
            category, title, summary = rng.choice(TEMPLATES)
            fill = {
                "city": p["city"],
                "thing": rng.choice(_THINGS),
                "street": rng.choice(_STREETS),
                "event": rng.choice(_EVENTS),
                "shop": rng.choice(_SHOPS),
                "ward": rng.choice(_WARDS),
                "competition": rng.choice(_COMPETITIONS),
                "month": rng.choice(_MONTHS),
                "n": rng.randint(3, 40),
                "yes": rng.randint(9, 30),
                "no": rng.randint(0, 8),
                "crowd": f"{rng.randint(2, 90) * 100:,}",
                "gust": rng.randint(70, 130),
                "a": rng.randint(1, 5),
                "b": rng.randint(0, 3),
                "hour": rng.randint(5, 8),
                "trees": rng.randint(2, 30) * 50,
                "fare": f"{rng.randint(15, 45) / 10:.2f}",
            }
            out.append(
                {
                    "location": p["name"],
                    "date": day.isoformat(),
                    "category": category,
                    "title": title.format(**fill),
                    "summary": summary.format(**fill),
                }
            )
        day += dt.timedelta(days=1)
    return out


def main(out: Path = OUT) -> list[Path]:
    rng = random.Random(SEED)
    ps = places()
    gazetteer = {
        "coverage": {"first": FIRST.isoformat(), "last": LAST.isoformat()},
        "states": {name: code for name, code in rows(US_STATES)},
        "places": ps,
    }
    out.mkdir(parents=True, exist_ok=True)
    g = out / "gazetteer.json"
    g.write_text(json.dumps(gazetteer, ensure_ascii=False, indent=1) + "\n")
    n = out / "items.jsonl"
    n.write_text(
        "".join(json.dumps(i, ensure_ascii=False, sort_keys=True) + "\n" for i in items(ps, rng))
    )
    return [g, n]


if __name__ == "__main__":
    for p in main():
        print(p)
