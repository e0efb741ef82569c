"""Generates the search corpus: short encyclopedia-style documents with their structured facts.

Real entities come from seed_tables.py; synthetic ones (towns, software libraries, companies,
people) are drawn from a seeded generator, so that some answers can only come from the search
tool. Output: search/corpus.jsonl, one document per line. Deterministic; never downloads.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .seed_tables import (
    CITIES,
    COMPANIES,
    COUNTRIES,
    ELEMENTS,
    LANGUAGES,
    MOUNTAINS,
    RIVERS,
    rows,
)

SEED = 20240601
OUT = Path(__file__).with_name("search") / "corpus.jsonl"

N_TOWNS = 1400
N_LIBRARIES = 600
N_FIRMS = 500
N_PEOPLE = 400


def slug(title: str) -> str:
    s = title.lower().replace("+", "p").replace("#", "sharp")
    return re.sub(r"[^a-z0-9]+", "-", s).strip("-")


def num(n: int | float) -> str:
    return f"{n:,}" if isinstance(n, int) else f"{n:,.1f}"


def year_text(y: int) -> str:
    return f"about {-y} BC" if y < 0 else str(y)


_WITH_ARTICLE = {
    "United Kingdom",
    "United States",
    "Netherlands",
    "Czech Republic",
    "Philippines",
    "United Arab Emirates",
}


def the(country: str) -> str:
    """A country name as it reads inside a sentence ("the Netherlands")."""
    return f"the {country}" if country in _WITH_ARTICLE else country


def doc(kind: str, title: str, sentences: list[str], facts: dict[str, Any], synthetic: bool):
    return {
        "id": f"{kind}/{slug(title)}",
        "title": title,
        "kind": kind,
        "text": " ".join(sentences),
        "facts": facts,
        "synthetic": synthetic,
    }


# --- real entities ---------------------------------------------------------------------------


def cities(rng: random.Random) -> Iterator[dict]:
    for name, country, pop, founded, capital in rows(CITIES):
        p = int(pop)
        first = (
            f"{name} is the capital and a major city of {the(country)}."
            if capital == "y"
            else f"{name} is a major city in {the(country)}."
        )
        pop_s = rng.choice(
            [
                f"It has a population of about {num(p)}.",
                f"Its population is about {num(p)} people.",
                f"The population of {name} is roughly {num(p)}.",
            ]
        )
        s = [first, pop_s]
        facts: dict[str, Any] = {"country": country, "population": p, "capital": capital == "y"}
        if founded:
            y = int(founded)
            s.append(f"{name} was founded in {year_text(y)}.")
            facts["founded"] = y
        yield doc("city", name, s, facts, False)


def countries(rng: random.Random) -> Iterator[dict]:
    for name, capital, continent, pop, area, currency, lang in rows(COUNTRIES):
        p, a = int(pop), int(area)
        s = [
            f"{name} is a country in {continent}.",
            f"Its capital is {capital}.",
            f"{name} has a population of about {num(p)} and an area of {num(a)} square kilometres.",
            f"The currency is the {currency}, and the official language is {lang}.",
        ]
        facts = {
            "capital": capital,
            "continent": continent,
            "population": p,
            "area_km2": a,
            "currency": currency,
            "language": lang,
        }
        yield doc("country", name, s, facts, False)


def languages(rng: random.Random) -> Iterator[dict]:
    for name, creators, year, paradigm, typing in rows(LANGUAGES):
        y = int(year)
        s = [
            f"{name} is a {paradigm} programming language with {typing} typing.",
            f"It was created by {creators} and first appeared in {y}.",
        ]
        facts = {"creator": creators, "year": y, "paradigm": paradigm, "typing": typing}
        yield doc("language", f"{name} (programming language)", s, facts, False)


def elements(rng: random.Random) -> Iterator[dict]:
    for number, symbol, name, mass, category in rows(ELEMENTS):
        z = int(number)
        s = [f"{name} is a chemical element with the symbol {symbol} and atomic number {z}."]
        facts: dict[str, Any] = {"symbol": symbol, "atomic_number": z, "category": category}
        if mass.startswith("["):
            s.append(f"Its most stable isotope has the mass number {mass.strip('[]')}.")
            facts["mass_number"] = int(mass.strip("[]"))
        else:
            s.append(f"Its standard atomic weight is {mass}.")
            facts["atomic_mass"] = float(mass)
        s.append(
            f"{name} is classified as an element of {category}."
            if category == "unknown properties"
            else f"{name} is a {category}."
        )
        yield doc("element", name, s, facts, False)


def rivers(rng: random.Random) -> Iterator[dict]:
    for name, length, mouth, where in rows(RIVERS):
        n = int(length)
        title = name if name.endswith("River") else f"{name} River"
        s = [
            f"The {title} is a river that flows through {where}.",
            f"It is about {num(n)} kilometres long.",
            f"The {title} flows into {mouth}.",
        ]
        facts = {"length_km": n, "mouth": mouth, "countries": where}
        yield doc("river", title, s, facts, False)


def mountains(rng: random.Random) -> Iterator[dict]:
    for name, height, rng_name, where, ascent in rows(MOUNTAINS):
        h = int(height)
        s = [
            f"{name} is a mountain in {where}, with a height of {num(h)} metres above sea level.",
        ]
        if not rng_name.startswith("none"):
            s.append(f"It belongs to the {rng_name}.")
        facts: dict[str, Any] = {"height_m": h, "range": rng_name, "countries": where}
        if ascent:
            s.append(f"The first recorded ascent was in {ascent}.")
            facts["first_ascent"] = int(ascent)
        yield doc("mountain", name, s, facts, False)


def companies(rng: random.Random) -> Iterator[dict]:
    for name, founded, hq, founders, industry, cap, employees in rows(COMPANIES):
        y, e = int(founded), int(employees)
        s = [f"{name} is a {industry} company headquartered in {hq}, founded in {y}."]
        facts: dict[str, Any] = {
            "founded": y,
            "headquarters": hq,
            "industry": industry,
            "employees": e,
        }
        if founders:
            s.append(f"It was founded by {founders}.")
            facts["founders"] = founders
        if cap:
            c = int(cap)
            s.append(f"{name} has a market capitalization (market cap) of about {num(c)} billion")
            s[-1] += " US dollars (2024)."
            facts["market_cap_usd_bn"] = c
        else:
            s.append(f"{name} is privately held.")
        s.append(f"It employs about {num(e)} people.")
        yield doc("company", name, s, facts, False)


# --- synthetic entities ----------------------------------------------------------------------

_ONSETS = ["b", "br", "d", "dr", "f", "g", "gr", "k", "kl", "l", "m", "n", "p", "r", "s", "st"]
_ONSETS += ["t", "tr", "v", "z", "h", "j", "sh", "th", "c", "qu"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou", "ia", "y"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "m", "nd", "rk", "x", "v"]
_TOWN_SUFFIX = ["", "", "", "burg", "ford", "ham", "ville", "stad", "holm", "wick", "mont"]

_TOWN_TRAITS = [
    "its textile mills",
    "a Gothic cathedral",
    "its vineyards",
    "a small university",
    "an annual music festival",
    "its harbour",
    "a medieval castle",
    "its cheese market",
    "a railway museum",
    "its botanical garden",
    "a ceramics industry",
    "its thermal springs",
]
_LIB_PURPOSES = [
    "data validation",
    "HTTP routing",
    "image processing",
    "logging",
    "time-series analysis",
    "graph algorithms",
    "configuration parsing",
    "unit testing",
    "linear algebra",
    "text search",
    "job scheduling",
    "compression",
    "plotting",
    "serialization",
    "command-line parsing",
]
_LICENSES = ["MIT", "Apache-2.0", "BSD-3-Clause", "GPL-3.0", "MPL-2.0"]
_INDUSTRIES = [
    "logistics",
    "software",
    "renewable energy",
    "biotechnology",
    "food processing",
    "furniture",
    "robotics",
    "insurance",
    "shipbuilding",
    "textiles",
]
_FIRM_SUFFIX = ["Systems", "Industries", "Labs", "Group", "Works", "Holdings", "Dynamics"]
_PROFESSIONS = [
    ("chemist", "work on catalysts"),
    ("mathematician", "results in number theory"),
    ("architect", "public libraries"),
    ("composer", "chamber music"),
    ("painter", "coastal landscapes"),
    ("engineer", "bridge design"),
    ("astronomer", "surveys of variable stars"),
    ("novelist", "historical novels"),
    ("botanist", "studies of alpine plants"),
    ("physician", "research on vaccines"),
]


def _word(rng: random.Random, syllables: int) -> str:
    w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))
    return (w + rng.choice(_CODAS)).capitalize()


class _Names:
    """Unique synthetic names that never collide with a real title."""

    def __init__(self, rng: random.Random, taken: set[str]):
        self.rng = rng
        self.taken = {t.lower() for t in taken}

    def make(self, build) -> str:
        while True:
            name = build(self.rng)
            if name.lower() not in self.taken:
                self.taken.add(name.lower())
                return name


def towns(rng: random.Random, names: _Names) -> Iterator[dict]:
    country_rows = rows(COUNTRIES)
    river_names = [r[0] for r in rows(RIVERS)]
    for _ in range(N_TOWNS):
        name = names.make(lambda r: _word(r, r.choice([2, 2, 3])) + r.choice(_TOWN_SUFFIX))
        country = rng.choice(country_rows)[0]
        pop = int(round(10 ** rng.uniform(3.3, 5.6), -2))
        founded = rng.randint(900, 1950)
        trait = rng.choice(_TOWN_TRAITS)
        s = [
            f"{name} is a town in {the(country)}.",
            f"It has a population of about {num(pop)}.",
            f"{name} was founded in {founded} and is known for {trait}.",
        ]
        facts: dict[str, Any] = {
            "country": country,
            "population": pop,
            "founded": founded,
            "known_for": trait,
        }
        if rng.random() < 0.3:
            river = rng.choice(river_names)
            s.append(f"The town lies on the {river} River.")
            facts["river"] = river
        yield doc("town", name, s, facts, True)


def people(rng: random.Random, names: _Names) -> list[dict]:
    out = []
    country_rows = rows(COUNTRIES)
    for _ in range(N_PEOPLE):
        name = names.make(lambda r: f"{_word(r, 2)} {_word(r, r.choice([2, 3]))}")
        born = rng.randint(1820, 1975)
        died = born + rng.randint(45, 95)
        profession, work = rng.choice(_PROFESSIONS)
        country = rng.choice(country_rows)[0]
        s = [f"{name} was a {profession} from {the(country)}, known for {work}."]
        facts: dict[str, Any] = {"profession": profession, "country": country, "born": born}
        if died <= 2023:
            s.append(f"{name.split()[0]} was born in {born} and died in {died}.")
            facts["died"] = died
        else:
            s.append(f"{name.split()[0]} was born in {born}.")
        out.append(doc("person", name, s, facts, True))
    return out


def libraries(rng: random.Random, names: _Names, authors: list[str]) -> Iterator[dict]:
    langs = ["Python", "Rust", "Go", "JavaScript", "Java", "C++", "Julia", "Haskell", "Ruby"]
    for _ in range(N_LIBRARIES):
        name = names.make(lambda r: _word(r, r.choice([2, 3])).lower())
        purpose = rng.choice(_LIB_PURPOSES)
        lang = rng.choice(langs)
        year = rng.randint(2003, 2023)
        author = rng.choice(authors)
        version = f"{rng.randint(0, 6)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
        lic = rng.choice(_LICENSES)
        stars = round(10 ** rng.uniform(1.5, 4.7))
        s = [
            f"{name} is an open-source {purpose} library for {lang}.",
            f"It was first released in {year} by {author}.",
            f"The latest version is {version}, distributed under the {lic} license.",
            f"The project has about {num(stars)} stars on its code hosting page.",
        ]
        facts = {
            "purpose": purpose,
            "language": lang,
            "first_release": year,
            "author": author,
            "latest_version": version,
            "license": lic,
            "stars": stars,
        }
        yield doc("library", f"{name} (software library)", s, facts, True)


def firms(rng: random.Random, names: _Names) -> Iterator[dict]:
    city_rows = rows(CITIES)
    for _ in range(N_FIRMS):
        name = names.make(lambda r: f"{_word(r, 2)} {r.choice(_FIRM_SUFFIX)}")
        industry = rng.choice(_INDUSTRIES)
        city = rng.choice(city_rows)
        year = rng.randint(1890, 2020)
        employees = int(round(10 ** rng.uniform(1.5, 4.8), -1))
        revenue = round(employees * rng.uniform(0.08, 0.4))
        s = [
            f"{name} is a {industry} company founded in {year} in {city[0]}, {the(city[1])}.",
            f"It has about {num(employees)} employees.",
            f"Its annual revenue is about {num(max(revenue, 1))} million US dollars.",
        ]
        facts = {
            "industry": industry,
            "founded": year,
            "headquarters": city[0],
            "country": city[1],
            "employees": employees,
            "revenue_usd_m": max(revenue, 1),
        }
        yield doc("company", name, s, facts, True)


def build() -> list[dict]:
    rng = random.Random(SEED)
    docs: list[dict] = []
    for part in (cities, countries, languages, elements, rivers, mountains, companies):
        docs.extend(part(rng))
    names = _Names(rng, {d["title"] for d in docs})
    folks = people(rng, names)
    docs.extend(towns(rng, names))
    docs.extend(libraries(rng, names, [d["title"] for d in folks]))
    docs.extend(firms(rng, names))
    docs.extend(folks)
    ids = [d["id"] for d in docs]
    assert len(ids) == len(set(ids)), "document ids must be unique"
    return docs


def render(docs: list[dict]) -> str:
    return "".join(json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n" for d in docs)


def main(out: Path = OUT) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(build()))
    return out


if __name__ == "__main__":
    print(main())
