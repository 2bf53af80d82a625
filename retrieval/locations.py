"""Which places a text names: the knowledge base's locations and the world's countries.

Users rarely say "China"; they say "my Chinese colleague", "in Beijing" or "China's". Each
country gets alias words from general sources, none tuned to a benchmark item:

* ``retrieval/data/locations.jsonl`` (written by ``retrieval/data/make_locations.py`` from
  GeoNames and countryinfo): every country's names and demonyms, its capital and big cities;
* its names and adjectives in the languages the multilingual path serves ("España",
  "Україна", "泰国", "coreanos", "японської"; :mod:`retrieval.native_names`);
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

from retrieval.native_names import (
    APOSTROPHES,
    NativeMatcher,
    NativeWords,
    fold,
    is_latin,
    latin_stem,
    long_stem,
    stem_match,
    world_native,
)

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
        names: their names and adjectives in other languages; default
            :func:`retrieval.native_names.world_native` (none when ``world`` is given).
    """

    def __init__(
        self,
        locations: Iterable[str],
        descriptions: Iterable[tuple[str, str]] = (),
        world: Sequence[Country] | None = None,
        names: Mapping[str, NativeWords] | None = None,
    ) -> None:
        self.known = frozenset(locations)
        descriptions = list(descriptions)
        countries = world_countries() if world is None else world
        native = (world_native() if world is None else {}) if names is None else names
        other: dict[str, set[str]] = defaultdict(set)  # names in other scripts
        stems: dict[str, set[str]] = defaultdict(set)  # Latin adjectives, by stem
        adjectives: set[str] = set()  # the adjectives of ``other``
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
            spoken = native.get(country.name, NativeWords((), ()))
            # Vietnamese adjectives ("Nhật") are capitalised words, like names.
            for name in (*spoken.names, *(w for lang, w in spoken.adjectives if lang == "vi")):
                key = _normalise(name)
                if key and key == " ".join(name.lower().replace("-", " ").split()):
                    capitalised.add(key)  # read whole as Latin words
                    exclusive[key].add(target)
                elif not _WORD.search(name):
                    other[name].add(target)
            for lang, word in spoken.adjectives:
                if lang == "vi" or not long_stem(word):
                    continue
                if is_latin(word):
                    stems[latin_stem(word)].add(target)
                else:
                    other[word].add(target)
                    adjectives.add(word)
            for city in country.cities:
                shared[_normalise(city)].add(target)
            common |= {_normalise(w) for w in country.common_words}
        for alias, location in by_name.items():
            exclusive[alias] = {location}
        for location, mined in mine_location_words(descriptions).items():
            for word in mined:
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
        self._stems = {stem: frozenset(p) for stem, p in stems.items() if stem not in common}
        self._native = NativeMatcher(other, adjectives)

    def detect(self, text: str, *, other_language: bool = False) -> list[str]:
        """Places named in ``text``, most mentioned first (ties: first mentioned).

        Knowledge-base locations and other countries alike; :attr:`known` tells them apart.
        ``other_language``: the text is not English, so a Latin word may be the adjective
        of another language ("coreanos"); in English text "Tamil" or "round" is none.
        """
        text = text.translate(APOSTROPHES)
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
                counts.update(sorted(self._word_places(*words[start], other_language)))
                start += 1
        for places in self._native.find(text):
            counts.update(sorted(places))
        return [location for location, _ in counts.most_common()]

    def _word_places(
        self, word: str, proper: bool, capitalised: bool, other_language: bool
    ) -> frozenset[str]:
        """A single word no alias matched: a Latin adjective's inflection ("coreanos"), or a
        proper noun with a suffix after an apostrophe (Turkish "Japonya'da")."""
        base = word.split("'")[0] if capitalised else word
        if base != word and base in self._aliases and (base not in self._cased or proper):
            return self._aliases[base]
        return stem_match(fold(base), self._stems) if other_language else frozenset()
