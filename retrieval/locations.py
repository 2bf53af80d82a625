"""Which places a text names: the knowledge base's locations and the world's countries.

Users rarely say "China"; they say "my Chinese colleague", "in Beijing" or "China's". Each
country gets alias words from general sources, none tuned to a benchmark item:

* ``retrieval/data/locations.jsonl`` (written by ``retrieval/data/make_locations.py`` from
  GeoNames and countryinfo): every country's names and demonyms, its capital and big cities;
* its name in the languages the multilingual path serves (``location_names.jsonl``, from
  the Unicode CLDR by ``make_location_names.py``): "España", "Україна", "泰国", "タイ".
  Latin-script names count only when capitalised; names in scripts without spaces (Han,
  kana, Hangul, Thai) are found inside words, longest first ("インドネシア" is not "インド"),
  katakana only as a whole katakana word ("タイ", not the "タイ" of "ネクタイ"), and a
  Cyrillic name by its stem at a word start ("Україн" of "в Україні");
* words mined from the knowledge base's own descriptions: capitalised words that occur
  in several descriptions of one location and (almost) never in another's, e.g. a
  festival or a language. A new location's descriptions bring its own words.

Knowing countries outside the knowledge base matters as much as knowing its own: a question
about Kenya must not be answered with another country's custom (:mod:`retrieval.retriever`).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import numpy.typing as npt

# A word; hyphens split ("Kenya-based"), apostrophes stay inside ("Xi'an").
_WORD = re.compile(r"[A-Za-zÀ-ɏḀ-ỿ][\w'’]*")  # a Latin-script word
_POSSESSIVE = re.compile(r"'s?$")  # "Spain's", "Thais'"
_SENTENCE_END = ".!?\n"
# A capitalised word inside a sentence (not after . ! ? or a line start): a proper noun.
_CAPITALISED = re.compile(r"(?<=[a-z,;:] )[A-Z][a-zà-ÿ]{2,}\b")
_MIN_DESCRIPTIONS = 4  # a mined word must occur in at least this many descriptions ...
_MIN_PURITY = 0.95  # ... and this share of them must belong to one location


@dataclass(frozen=True)
class Country:
    """One line of ``locations.jsonl`` (all words lower case)."""

    name: str
    aliases: tuple[str, ...]  # its names and demonyms: they name this country alone
    cities: tuple[str, ...]  # a city name may be shared by several countries
    common_words: tuple[str, ...]  # aliases or cities that are also ordinary English words


@cache
def world_names() -> dict[str, tuple[str, ...]]:
    """Country -> its names in other languages (``retrieval/data/location_names.jsonl``)."""
    text = resources.files("retrieval").joinpath("data", "location_names.jsonl").read_text("utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {r["country"]: tuple(sorted(set(r["names"].values()))) for r in rows}


def _native_pattern(name: str) -> tuple[str, str]:
    """(regex, the literal it finds) for ``name`` (not Latin script), with its script's
    boundary: katakana as a whole katakana word, Cyrillic by its stem at a word start."""
    if all("\u30a0" <= c <= "\u30ff" or not c.isalpha() for c in name):
        return f"(?<![\u30a0-\u30ff]){re.escape(name)}(?![\u30a0-\u30ff])", name
    if all("\u0400" <= c <= "\u04ff" or not c.isalpha() for c in name):
        stem = name[:-1] if len(name) >= 5 and name[-1] in "аяіийьоеюєї" else name
        return f"(?<![^\\W\\d_]){re.escape(stem)}", stem
    return re.escape(name), name


@cache
def world_countries() -> tuple[Country, ...]:
    """The countries shipped in ``retrieval/data/locations.jsonl`` (read once)."""
    text = resources.files("retrieval").joinpath("data", "locations.jsonl").read_text("utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return tuple(
        Country(r["country"], tuple(r["aliases"]), tuple(r["cities"]), tuple(r["common_words"]))
        for r in rows
    )


def _word(word: str) -> str:
    return _POSSESSIVE.sub("", word.lower().replace("’", "'"))


def _words(text: str) -> list[tuple[str, bool, bool]]:
    """Each Latin-script word of ``text``, normalised; whether it is written capitalised
    inside a sentence (so likely a proper noun, not the common word it can also be); and
    whether it is capitalised at all."""
    out = []
    for match in _WORD.finditer(text):
        before = text[: match.start()].rstrip(" \t\"'“‘(¿¡")
        inside = bool(before) and before[-1] not in _SENTENCE_END
        upper = match.group()[0].isupper()
        out.append((_word(match.group()), inside and upper, upper))
    return out


def _normalise(text: str) -> str:
    return " ".join(word for word, _, _ in _words(text))


def mine_location_words(items: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """Capitalised words that single out one location in (location, description) pairs."""
    per_word: dict[str, Counter[str]] = defaultdict(Counter)
    for location, text in items:
        for word in {w.lower() for w in _CAPITALISED.findall(text)}:
            per_word[word][location] += 1
    mined: dict[str, set[str]] = defaultdict(set)
    for word, counts in per_word.items():
        location, hits = counts.most_common(1)[0]
        if hits >= _MIN_DESCRIPTIONS and hits / sum(counts.values()) >= _MIN_PURITY:
            mined[location].add(word)
    return mined


def _used_in(items: Iterable[tuple[str, str]], phrases: set[str]) -> set[str]:
    """The ``phrases`` (normalised) that occur in the texts of (location, text) pairs."""
    longest = max((p.count(" ") + 1 for p in phrases), default=0)
    found: set[str] = set()
    for _, text in items:
        words = _normalise(text).split()
        for size in range(1, longest + 1):
            found |= {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}
    return found & phrases


def consistent(
    keep: npt.NDArray[np.bool_],
    locations: npt.NDArray[np.str_],
    named: Sequence[str],
    known: frozenset[str],
    fallback: bool = True,
) -> npt.NDArray[np.bool_]:
    """The location rule on a mask of passing passages (``locations``: theirs, casefolded).

    When ``named`` (the places a query names) holds locations of the index (``known``),
    only their passages stay; when it names only places the index lacks (Kenya), none
    stays: another country's custom is no answer. With ``fallback``, named index locations
    without a passing passage let the others through. Nothing named: ``keep`` unchanged.
    """
    if not named:
        return keep
    ours = [n.casefold() for n in named if n in known]
    same = keep & np.isin(locations, ours)
    return same if same.any() or not (ours and fallback) else keep


class LocationDetector:
    """Finds the places a text names, by whole-word alias match (longest alias first).

    Args:
        locations: the knowledge base's locations (:attr:`known`); a world country with
            the same name (or whose alias a location's name is) is reported by that name.
        descriptions: (location, description) pairs to mine location words from; a city
            of another country that they mention is not taken as naming that country.
        world: the countries to know besides; default :func:`world_countries`.
        names: their names in other languages; default :func:`world_names` (none when
            ``world`` is given).
    """

    def __init__(
        self,
        locations: Iterable[str],
        descriptions: Iterable[tuple[str, str]] = (),
        world: Sequence[Country] | None = None,
        names: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.known = frozenset(locations)
        descriptions = list(descriptions)
        countries = world_countries() if world is None else world
        native = (world_names() if world is None else {}) if names is None else names
        other: dict[str, set[str]] = defaultdict(set)  # names in other scripts
        capitalised: set[str] = set()  # Latin-script names in other languages
        by_name = {_normalise(location): location for location in sorted(self.known)}
        exclusive: dict[str, set[str]] = defaultdict(set)  # names and demonyms: no cities
        shared: dict[str, set[str]] = defaultdict(set)  # cities and mined words
        common: set[str] = set()
        for country in countries:
            aliases = {_normalise(a) for a in (country.name, *country.aliases)}
            target = next((by_name[a] for a in sorted(aliases) if a in by_name), country.name)
            for alias in aliases:
                exclusive[alias].add(target)
            for name in native.get(country.name, ()):
                key = _normalise(name)
                if key and key == " ".join(name.lower().split()):  # read whole as Latin words
                    capitalised.add(key)
                    exclusive[key].add(target)
                elif not _WORD.search(name):
                    other[name].add(target)
            for city in country.cities:
                shared[_normalise(city)].add(target)
            common |= {_normalise(w) for w in country.common_words}
        for alias, location in by_name.items():
            exclusive[alias] = {location}
        for location, words in mine_location_words(descriptions).items():
            for word in words:
                shared[_normalise(word)].add(location)
        # A city elsewhere whose name the knowledge base itself uses ("Camino de Santiago",
        # "Na Konya", "Virgin Mary") is no sign that a text is about that other country.
        for alias in _used_in(descriptions, {a for a, p in shared.items() if not p & self.known}):
            del shared[alias]
        self._aliases: dict[str, frozenset[str]] = {
            alias: frozenset(places) for alias, places in shared.items()
        }
        self._aliases.update({alias: frozenset(places) for alias, places in exclusive.items()})
        self._aliases.pop("", None)
        # An ordinary word ("turkey", "polish") names a place only when written as a proper
        # noun, unless it names a knowledge-base location (as it did before world countries).
        self._cased = {a for a in common if not self._aliases.get(a, self.known) & self.known}
        self._longest = max((a.count(" ") + 1 for a in self._aliases), default=1)
        self._capitalised = {a for a in capitalised if len(self._aliases.get(a, ())) == 1}
        found: dict[str, set[str]] = defaultdict(set)  # literal found -> places
        longest_first = sorted(other, key=len, reverse=True)  # インドネシア before インド
        patterns = [_native_pattern(name) for name in longest_first]
        for name, (_, literal) in zip(longest_first, patterns, strict=True):
            found[literal] |= other[name]
        alternatives = dict.fromkeys(pattern for pattern, _ in patterns)  # ordered, no repeats
        self._other = re.compile("|".join(alternatives)) if alternatives else None
        self._other_places = {literal: frozenset(p) for literal, p in found.items()}

    def detect(self, text: str) -> list[str]:
        """Places named in ``text``, most mentioned first (ties: first mentioned).

        Knowledge-base locations and other countries alike; :attr:`known` tells them apart.
        """
        words = _words(text)
        counts: Counter[str] = Counter()
        start = 0
        while start < len(words):
            for size in range(min(self._longest, len(words) - start), 0, -1):
                alias = " ".join(word for word, _, _ in words[start : start + size])
                places = self._aliases.get(alias)
                if places is not None and (alias not in self._cased or words[start][1]) and (
                    alias not in self._capitalised or words[start][2]
                ):
                    counts.update(sorted(places))
                    start += size
                    break
            else:
                start += 1
        if self._other is not None and not text.isascii():
            for match in self._other.finditer(text):
                counts.update(sorted(self._other_places[match.group()]))
        return [location for location, _ in counts.most_common()]
