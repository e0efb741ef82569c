"""The `get_local_news` tool: each argument is checked the moment it is complete (a place the
gazetteer knows, a real date the feed covers, a sane number of days), so a bad call is rejected
while the model is still writing it; the news feed of a valid place is fetched early.

Rejections are `ArgumentRejectedError`s whose message says what to write instead (close matches
for a place). The feed is bundled data behind a simulated API latency; nothing leaves the process.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgl_conveyor.errors import ArgumentRejectedError
from sgl_conveyor.tools.base import CallContext, Tool, UnitResult
from sgl_conveyor.tools.builtin.bundled import data_path, missing_data
from sgl_conveyor.tools.builtin.search_service import (
    DEFAULT_LATENCY_MS,
    DEFAULT_LATENCY_SIGMA,
    Latency,
)
from sgl_conveyor.tools.spec import ToolSpec
from sgl_conveyor.units.base import Unit

GAZETTEER = "news/gazetteer.json"
ITEMS = "news/items.jsonl"
MAX_DAYS = 7

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_US_ALIASES = {"us", "usa", "u s a", "united states", "united states of america", "america"}
_COUNTRY_ALIASES = {
    "uk": "united kingdom",
    "great britain": "united kingdom",
    "uae": "united arab emirates",
}


def _norm(text: str) -> str:
    t = text.casefold().replace(".", " ").replace("’", "'")
    return " ".join(t.split())


class Gazetteer:
    """The places the news feed covers, with forgiving look-up and close-match suggestions."""

    def __init__(self, path: str | Path | None = None):
        p = data_path(path or GAZETTEER)
        if not p.exists():
            raise missing_data(p, "sgl_conveyor.eval.data.gen_news")
        data = json.loads(p.read_text())
        self.first = dt.date.fromisoformat(data["coverage"]["first"])
        self.last = dt.date.fromisoformat(data["coverage"]["last"])
        self.places: list[dict[str, Any]] = data["places"]
        self._states = {_norm(k): v for k, v in data["states"].items()}
        self._codes = set(self._states.values())
        self._by_key: dict[str, dict[str, Any]] = {}
        self._by_city: dict[str, list[dict[str, Any]]] = {}
        for place in self.places:
            self._by_key[_norm(place["name"])] = place
            self._by_city.setdefault(_norm(place["city"]), []).append(place)

    def __len__(self) -> int:
        return len(self.places)

    def resolve(self, text: str) -> dict[str, Any] | None:
        """The place `text` names ("Portland, OR", "portland, oregon", "Lyon, France"), or None
        if it names none or more than one."""
        if "," not in text:
            return None
        city, _, region = (part.strip() for part in text.rpartition(","))
        c, r = _norm(city), _norm(region)
        if not c or not r:
            return None
        code = self._states.get(r, r.upper() if r.upper() in self._codes else None)
        if code is not None:
            return self._by_key.get(f"{c}, {code.casefold()}")
        if r in _US_ALIASES:
            us = [p for p in self._by_city.get(c, []) if p["country"] == "United States"]
            return us[0] if len(us) == 1 else None
        return self._by_key.get(f"{c}, {_COUNTRY_ALIASES.get(r, r)}")

    def suggest(self, text: str, n: int = 5) -> list[str]:
        """Places `text` may have meant: same city name first, then close spellings."""
        city = _norm(text.rpartition(",")[0] if "," in text else text)
        out: list[str] = [p["name"] for p in self._by_city.get(city, [])]
        for c in difflib.get_close_matches(city, list(self._by_city), n=n, cutoff=0.75):
            out.extend(p["name"] for p in self._by_city[c])
        names = {_norm(p["name"]): p["name"] for p in self.places}
        for key in difflib.get_close_matches(_norm(text), list(names), n=n, cutoff=0.6):
            out.append(names[key])
        region = _norm(text.rpartition(",")[2]) if "," in text else ""
        region = self._states.get(region, region).casefold()
        ranked = sorted(
            dict.fromkeys(out), key=lambda name: _norm(name).rpartition(", ")[2] != region
        )
        return ranked[:n]


def parse_date(text: Any) -> dt.date:
    """A strict YYYY-MM-DD date; ValueError with a readable reason otherwise."""
    m = _DATE.match(str(text))
    if m is None:
        raise ValueError(f"{text!r} is not a date in the form YYYY-MM-DD")
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise ValueError(f"{text!r} is not a real date") from None


@dataclass
class _CallState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    date: dt.date | None = None
    days: int | None = None


class LocalNewsTool(Tool):
    """`{"location", "date", "days"}`: checks each argument as it completes; the location's
    feed is fetched as soon as the location is known.

    limits: `latency_ms`, `latency_sigma`, `latency_seed` (the simulated news API), `max_items`,
    `suggestions`, `gazetteer`, `items` (data files, relative to eval/data/).
    """

    def __init__(self, spec: ToolSpec | None = None):
        super().__init__(spec)
        self._lock = threading.Lock()
        self._gazetteer: Gazetteer | None = None
        self._feeds: dict[str, list[dict[str, Any]]] | None = None
        self._latency: Latency | None = None

    # --- data --------------------------------------------------------------------------------

    @property
    def gazetteer(self) -> Gazetteer:
        with self._lock:
            if self._gazetteer is None:
                self._gazetteer = Gazetteer(self.spec.limits.get("gazetteer"))
            return self._gazetteer

    def _feed(self, place: str) -> list[dict[str, Any]]:
        with self._lock:
            if self._feeds is None:
                p = data_path(self.spec.limits.get("items", ITEMS))
                if not p.exists():
                    raise missing_data(p, "sgl_conveyor.eval.data.gen_news")
                feeds: dict[str, list[dict[str, Any]]] = {}
                with p.open(encoding="utf-8") as f:
                    for line in f:
                        item = json.loads(line)
                        feeds.setdefault(item["location"], []).append(item)
                for items in feeds.values():
                    items.sort(key=lambda i: i["date"])
                self._feeds = feeds
            if self._latency is None:
                lim = self.spec.limits
                self._latency = Latency(
                    float(lim.get("latency_ms", DEFAULT_LATENCY_MS)),
                    float(lim.get("latency_sigma", DEFAULT_LATENCY_SIGMA)),
                    int(lim.get("latency_seed", 0)),
                )
            return list(self._feeds.get(place, []))

    def fetch(self, place: str, ctx: CallContext) -> list[dict[str, Any]]:
        """The place's whole feed, after the news API's (simulated) network latency."""
        feed = self._feed(place)
        ctx.sleep(self._latency.sample(f"news:{place}"))
        return feed

    # --- checks ------------------------------------------------------------------------------

    def _reject(self, message: str, path: str) -> ArgumentRejectedError:
        return ArgumentRejectedError(message, tool=self.spec.name, unit=path)

    def check_location(self, value: Any, path: str = "/location") -> dict[str, Any]:
        text = str(value).strip()
        g = self.gazetteer
        place = g.resolve(text)
        if place is not None:
            return place
        hint = g.suggest(text, int(self.spec.limits.get("suggestions", 5)))
        form = "write 'City, ST' for US cities (e.g. 'Portland, OR') or 'City, Country' elsewhere"
        if "," not in text:
            msg = f"location {text!r} is incomplete: {form}"
        else:
            msg = f"unknown location {text!r}: {form}"
        if hint:
            msg += f". Did you mean: {'; '.join(hint)}?"
        else:
            msg += f" (the news service covers {len(g)} places)"
        raise self._reject(msg, path)

    def check_date(self, value: Any, path: str = "/date") -> dt.date:
        g = self.gazetteer
        try:
            day = parse_date(value)
        except ValueError as e:
            raise self._reject(str(e), path) from None
        if not g.first <= day <= g.last:
            raise self._reject(
                f"no news for {day.isoformat()}: the feed covers {g.first.isoformat()} to "
                f"{g.last.isoformat()}",
                path,
            )
        return day

    def check_days(self, value: Any, path: str = "/days") -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
            raise self._reject(f"days must be a whole number from 1 to {MAX_DAYS}", path)
        return value

    def check_range(self, day: dt.date, days: int, path: str) -> None:
        last = self.gazetteer.last
        end = day + dt.timedelta(days=days - 1)
        if end > last:
            most = (last - day).days + 1
            raise self._reject(
                f"{days} days from {day.isoformat()} run past {last.isoformat()}, the end of "
                f"the feed: use days of at most {most}",
                path,
            )

    # --- the call ----------------------------------------------------------------------------

    def start(self, ctx: CallContext) -> None:
        # The runtime runs start() on a worker, possibly after a unit's check set this up.
        ctx.state.setdefault("news", _CallState())
        self.gazetteer  # noqa: B018 - load the gazetteer now, off the units' critical path

    def check_unit(self, unit: Unit, ctx: CallContext) -> None:
        st: _CallState = ctx.state.setdefault("news", _CallState())
        if unit.path == "/location":
            self.check_location(unit.value, unit.path)
        elif unit.path == "/date":
            day = self.check_date(unit.value, unit.path)
            with st.lock:
                st.date = day
                days = st.days
            if days is not None:
                self.check_range(day, days, unit.path)
        elif unit.path == "/days":
            n = self.check_days(unit.value, unit.path)
            with st.lock:
                st.days = n
                day = st.date
            if day is not None:
                self.check_range(day, n, unit.path)

    def run_unit(self, unit: Unit, ctx: CallContext) -> Any:
        if unit.path != "/location":
            return None  # dates and day counts only need checking
        place = self.check_location(unit.value, unit.path)
        return {"location": place["name"], "feed": self.fetch(place["name"], ctx)}

    def finish(self, arguments: Any, results: Sequence[UnitResult], ctx: CallContext) -> Any:
        place = self.check_location(arguments["location"])
        day = self.check_date(arguments["date"])
        days = self.check_days(arguments["days"])
        self.check_range(day, days, "/days")
        feed = None
        for r in results:
            v = r.value
            if r.ok and isinstance(v, Mapping) and v.get("location") == place["name"]:
                feed = v["feed"]
        if feed is None:
            feed = self.fetch(place["name"], ctx)
        end = day + dt.timedelta(days=days - 1)
        found = [i for i in feed if day.isoformat() <= i["date"] <= end.isoformat()]
        cap = int(self.spec.limits.get("max_items", 10))
        return {
            "location": place["name"],
            "from": day.isoformat(),
            "to": end.isoformat(),
            "total": len(found),
            "items": [{k: i[k] for k in ("date", "category", "title", "summary")} for i in found][
                :cap
            ],
        }
