"""Which language a query is in, so a query the English embedder cannot read is routed away.

The packaged all-MiniLM-L6-v2 reads English only: a Thai or Ukrainian question about a
custom lands near random descriptions. :func:`is_english` decides, per query, whether it
goes to the English retriever (the default, unchanged path) or to the multilingual one
(:mod:`retrieval.multilingual`). Two signals, both offline and well under a millisecond:

* the script: a text whose letters are mostly not Latin (Han, Devanagari, Thai,
  Cyrillic...) is not English, however short;
* for Latin-script text, the probability of English given by ``py3langid`` (a naive
  Bayes model over byte n-grams shipped in the wheel, about 0.5 ms per query here).

Misrouting English is the costly error (an English prompt would be judged on the
multilingual embedder's scale), so a Latin-script text leaves the English path only when
English is all but ruled out, not when another language merely wins: short English often
loses to a neighbour ("Diwali gifts?" is Luganda at 0.24, "How far is Shanghai from
Beijing?" Nigerian Pidgin at 0.42) yet keeps P(English) of 0.015 or more, while the dev
non-English questions in a Latin script (fr, de, es, pt, vi) have at most 0.0005. Below
four words the identifier is unreliable ("Diwali gifts?" and "Songkran dates" get
P(English) 0.005), so such Latin-script text stays English.
"""

from __future__ import annotations

import threading
import unicodedata
from functools import lru_cache
from typing import Any

ENGLISH = "en"
# Below this probability of English a Latin-script text leaves the English path. Dev
# checks: English (AdaCultureSafe queries, natural questions, the intent corpus's prompts)
# lowest 0.015 ("Solve x^2 - 5x + 6 = 0."); Latin-script non-English at most 0.0005
# (natural questions) and 0.02 (one short German prompt, which then stays English).
ENGLISH_FLOOR = 0.01
# Share of a text's letters in a non-Latin script above which it is not English.
NON_LATIN_SHARE = 0.5
# Latin-script text of fewer words stays English (the dev questions have 5 or more).
MIN_WORDS = 4
# The identifier reads at most this many characters (its cost grows with length: 0.45 ms
# at 200 characters, 1.3 ms at 400 here; every dev query is routed the same either way).
MAX_CHARS = 200


@lru_cache(maxsize=1)
def _identifier() -> tuple[Any, threading.Lock]:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True), threading.Lock()


def non_latin_share(text: str) -> float:
    """Share of the letters of ``text`` that are not Latin (0.0 for no letters)."""
    if text.isascii():
        return 0.0
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    foreign = sum(1 for c in letters if not unicodedata.name(c, "").startswith("LATIN"))
    return foreign / len(letters)


def language_probabilities(text: str) -> dict[str, float]:
    """Each language's probability for ``text`` (ISO 639 codes; they sum to 1)."""
    identifier, lock = _identifier()
    with lock:  # the identifier keeps no state per call, but is not documented thread-safe
        ranked = identifier.rank(text[:MAX_CHARS])
    return {str(language): float(p) for language, p in ranked}


def query_language(text: str) -> str:
    """:data:`ENGLISH` when ``text`` takes the English path (see the module docstring),
    else the most likely other language (ISO 639-1, e.g. ``"th"``)."""
    sample = text[:MAX_CHARS]
    if not any(c.isalpha() for c in sample):
        return ENGLISH  # digits, symbols, emoji: nothing to route on
    probabilities = language_probabilities(sample)
    if non_latin_share(sample) <= NON_LATIN_SHARE and (
        len(sample.split()) < MIN_WORDS or probabilities.get(ENGLISH, 0.0) >= ENGLISH_FLOOR
    ):
        return ENGLISH
    others = {code: p for code, p in probabilities.items() if code != ENGLISH}
    return max(others, key=others.__getitem__) if others else ENGLISH


def is_english(text: str) -> bool:
    """Whether ``text`` takes the English path."""
    return query_language(text) == ENGLISH
