"""Countries in the other languages of the multilingual path, and how a text is searched
for them (used by :class:`retrieval.locations.LocationDetector`).

``retrieval/data/location_names.jsonl`` (written from the Unicode CLDR by
``make_location_names.py``) holds each country's names ("España", "Україна", "泰国") and
the CLDR names of its own language, which serve as adjectives and demonyms ("coreanos",
"японської", "người Nhật", "韓国語"). Each script is searched by its own rule, none tuned
to a benchmark item:

* Latin-script names are whole words, capitalised (:class:`LocationDetector` reads them);
  Latin-script adjectives by their stem, accents folded, any case ("corean" of
  "coreanas", "polnisch" of "polnischen"), when the stem has :data:`MIN_STEM` letters
  (not "chin" of "chino", which "chinche" also starts with; not Turkish "Fin", Finnish);
  Vietnamese ones ("Nhật", "Hàn") as capitalised words;
* names in scripts without spaces (Han, kana, Hangul, Thai) inside words, longest first
  ("インドネシア" is not "インド"), katakana only as a whole katakana word ("タイ", not the
  "タイ" of "ネクタイ");
* Devanagari at a word start (not the "लाओ", Lao, of "मिलाओ");
* Cyrillic by its stem at a word start, with the consonant changes and the fleeting vowel
  of case endings ("Україн" of "в Україні", "Мекси[кц]" of "в Мексиці", "Єгипе?т" of "в
  Єгипті"), a name capitalised (not the "пала" of "пала стена" for Palau), an adjective in
  any case ("японськ" of "японської").
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources

APOSTROPHES = str.maketrans({"ʼ": "'", "’": "'"})
MIN_STEM = 5  # letters of a Latin adjective's stem, at least
MAX_ENDING = 5  # letters a longer Latin stem may carry ("corean" + "os")
_CYRILLIC_ENDS = "аяіийьоеюєїыу"
_VELAR = {"к": "[кц]", "г": "[гзж]", "х": "[хс]"}


@dataclass(frozen=True)
class NativeWords:
    """One country's line of ``location_names.jsonl``."""

    names: tuple[str, ...]
    adjectives: tuple[tuple[str, str], ...]  # (language, word)


@cache
def world_native() -> dict[str, NativeWords]:
    """Country -> its names and adjectives in other languages (read once)."""
    text = resources.files("retrieval").joinpath("data", "location_names.jsonl").read_text("utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {
        r["country"]: NativeWords(
            tuple(sorted({n.translate(APOSTROPHES) for n in r["names"].values()})),
            tuple(sorted((lang, w.translate(APOSTROPHES)) for lang, words in
                         r.get("adjectives", {}).items() for w in words)),
        )
        for r in rows
    }


def is_latin(word: str) -> bool:
    """Whether every letter of ``word`` is Latin script (Vietnamese included)."""
    return all(ord(c) < 0x250 or 0x1E00 <= ord(c) <= 0x1EFF or not c.isalpha() for c in word)


def fold(word: str) -> str:
    """Lower case without accents: "Japonés" -> "japones", "koreański" -> "koreanski"."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def latin_stem(word: str) -> str:
    """``word`` folded, without its final vowels while over four letters ("corean")."""
    stem = fold(word)
    while len(stem) > 4 and stem[-1] in "aeiouy":
        stem = stem[:-1]
    return stem


def long_stem(adjective: str) -> bool:
    """Whether a Latin or Cyrillic adjective's stem has :data:`MIN_STEM` letters (not the
    "fin" of Turkish "Fin", Finnish, or the "пала" of Russian "палау", Palauan)."""
    if is_latin(adjective):
        return len(latin_stem(adjective)) >= MIN_STEM
    if all("\u0400" <= c <= "\u04ff" or not c.isalpha() for c in adjective):
        return len(adjective.rstrip(_CYRILLIC_ENDS)) >= MIN_STEM
    return True


def stem_match(word: str, stems: dict[str, frozenset[str]]) -> frozenset[str]:
    """The places whose Latin adjective stem ``word`` (folded) is an inflection of."""
    for cut in range(len(word), max(len(word) - MAX_ENDING, MIN_STEM) - 1, -1):
        places = stems.get(word[:cut])
        if places is not None:
            return places
    return frozenset()


def _cyrillic_stem(name: str) -> str:
    """Regex for a Cyrillic name or adjective and its case forms."""
    stem = name
    while len(stem) > 4 and stem[-1] in _CYRILLIC_ENDS:
        stem = stem[:-1]
    if stem != name and stem[-1] in _VELAR:  # Мексика -> в Мексиці
        return re.escape(stem[:-1]) + _VELAR[stem[-1]]
    if stem == name and len(name) >= 5 and name[-2] in "еоє":  # Єгипет -> в Єгипті
        return re.escape(name[:-2]) + name[-2] + "?" + re.escape(name[-1])
    return re.escape(stem)


def native_pattern(name: str, any_case: bool = False) -> str:
    """Regex for ``name`` (not Latin script) with its script's boundary rule; ``any_case``
    for an adjective, which is written in lower case."""
    if all("\u30a0" <= c <= "\u30ff" or not c.isalpha() for c in name):
        return f"(?<![\u30a0-\u30ff]){re.escape(name)}(?![\u30a0-\u30ff])"
    if all("\u0400" <= c <= "\u04ff" or not c.isalpha() for c in name):
        pattern = f"(?<![^\\W\\d_]){_cyrillic_stem(name)}"
        return f"(?i:{pattern})" if any_case else pattern
    if all("\u0900" <= c <= "\u097f" or not c.isalpha() for c in name):
        return f"(?<![\u0900-\u097f]){re.escape(name)}"
    return re.escape(name)


class NativeMatcher:
    """Finds names in scripts other than Latin, by one regex, longest name first.

    Args:
        places: name or adjective (not Latin script) -> the places it names.
        adjectives: which of them are adjectives.
    """

    def __init__(self, places: dict[str, set[str]], adjectives: set[str]) -> None:
        longest_first = sorted(places, key=len, reverse=True)  # インドネシア before インド
        self._places = [frozenset(places[n]) for n in longest_first]
        alternatives = "|".join(f"(?P<n{i}>{native_pattern(n, n in adjectives)})"
                                for i, n in enumerate(longest_first))
        self._regex = re.compile(alternatives) if alternatives else None

    def find(self, text: str) -> list[frozenset[str]]:
        """The places of each name found in ``text``, in order (non-overlapping)."""
        if self._regex is None or text.isascii():
            return []
        return [self._places[int(str(match.lastgroup)[1:])]
                for match in self._regex.finditer(text.translate(APOSTROPHES))]
