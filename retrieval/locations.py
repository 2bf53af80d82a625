"""Which of the knowledge base's locations a text names (country, people, language).

Users rarely say "China"; they say "my Chinese colleague" or "in Beijing". Each location
gets a set of alias words from two general sources, neither tuned to a benchmark item:

* a table of common country names with their demonyms and adjectives;
* words mined from the knowledge base's own descriptions: capitalised words that occur
  in several descriptions of one location and (almost) never in another's, e.g. a
  capital, a festival or a language. A new country's descriptions bring its own words.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

# Country -> words people use for it (lower case). Extend freely; a location missing here
# still matches its own name and the words mined from its descriptions.
DEMONYMS: Mapping[str, tuple[str, ...]] = {
    "afghanistan": ("afghan", "afghans"),
    "argentina": ("argentine", "argentinian", "argentinians", "argentines"),
    "australia": ("australian", "australians", "aussie", "aussies"),
    "bangladesh": ("bangladeshi", "bangladeshis", "bengali", "bengalis"),
    "brazil": ("brazilian", "brazilians"),
    "canada": ("canadian", "canadians"),
    "chile": ("chilean", "chileans"),
    "china": ("chinese", "prc", "mainland"),
    "colombia": ("colombian", "colombians"),
    "egypt": ("egyptian", "egyptians"),
    "ethiopia": ("ethiopian", "ethiopians"),
    "france": ("french", "frenchman", "frenchwoman", "parisian", "parisians"),
    "germany": ("german", "germans"),
    "greece": ("greek", "greeks"),
    "india": ("indian", "indians", "hindi"),
    "indonesia": ("indonesian", "indonesians"),
    "iran": ("iranian", "iranians", "persian", "persians"),
    "iraq": ("iraqi", "iraqis"),
    "ireland": ("irish",),
    "israel": ("israeli", "israelis"),
    "italy": ("italian", "italians"),
    "japan": ("japanese",),
    "kenya": ("kenyan", "kenyans"),
    "malaysia": ("malaysian", "malaysians"),
    "mexico": ("mexican", "mexicans"),
    "morocco": ("moroccan", "moroccans"),
    "nepal": ("nepali", "nepalese"),
    "netherlands": ("dutch", "holland"),
    "nigeria": ("nigerian", "nigerians"),
    "pakistan": ("pakistani", "pakistanis"),
    "peru": ("peruvian", "peruvians"),
    "philippines": ("filipino", "filipinos", "filipina", "filipinas", "philippine"),
    "poland": ("polish", "poles"),
    "portugal": ("portuguese",),
    "russia": ("russian", "russians"),
    "saudi arabia": ("saudi", "saudis"),
    "south africa": ("south african", "south africans"),
    "south korea": ("korean", "koreans", "korea"),
    "spain": ("spanish", "spaniard", "spaniards"),
    "sweden": ("swedish", "swede", "swedes"),
    "switzerland": ("swiss",),
    "taiwan": ("taiwanese",),
    "thailand": ("thai", "thais", "siamese"),
    "turkey": ("turkish", "turks", "türkiye"),
    "ukraine": ("ukrainian", "ukrainians"),
    "united arab emirates": ("emirati", "emiratis", "uae"),
    "united kingdom": ("british", "britons", "uk", "scottish", "welsh"),
    "united states": ("american", "americans", "usa"),
    "vietnam": ("vietnamese",),
}

_WORD = re.compile(r"[A-Za-zÀ-ÿ][\w'’-]*")
# A capitalised word inside a sentence (not after . ! ? or a line start): a proper noun.
_CAPITALISED = re.compile(r"(?<=[a-z,;:] )[A-Z][a-zà-ÿ]{2,}\b")
_MIN_DESCRIPTIONS = 4  # a mined word must occur in at least this many descriptions ...
_MIN_PURITY = 0.95  # ... and this share of them must belong to one location


def _normalise(text: str) -> str:
    return " ".join(word.lower().replace("’", "'") for word in _WORD.findall(text))


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


class LocationDetector:
    """Finds the knowledge-base locations a text mentions, by whole-word alias match."""

    def __init__(self, locations: Iterable[str], descriptions: Iterable[tuple[str, str]] = ()):
        mined = mine_location_words(descriptions)
        self._aliases: dict[str, str] = {}  # alias (normalised, may be several words) -> loc
        for location in sorted(set(locations)):
            words = {_normalise(location), *DEMONYMS.get(location.lower(), ())}
            words |= mined.get(location, set())
            for alias in words:
                if alias:
                    self._aliases.setdefault(alias, location)
        self._longest = max((a.count(" ") + 1 for a in self._aliases), default=1)

    def detect(self, text: str) -> list[str]:
        """Locations named in ``text``, most mentioned first (ties: first mentioned)."""
        words = _normalise(text).split()
        counts: Counter[str] = Counter()
        for size in range(1, self._longest + 1):
            for start in range(len(words) - size + 1):
                location = self._aliases.get(" ".join(words[start : start + size]))
                if location is not None:
                    counts[location] += 1
        return [location for location, _ in counts.most_common()]
