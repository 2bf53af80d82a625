"""The location detector (:mod:`retrieval.locations`): the places a user's text names, in
the ways users name them (possessives, demonyms, cities, countries outside the knowledge
base), on the shipped world table; no embedder involved."""

from __future__ import annotations

import pytest

from retrieval.locations import LocationDetector, mine_location_words, world_countries

KB = ("Spain", "Thailand", "China")


@pytest.fixture(scope="module")
def detector() -> LocationDetector:
    return LocationDetector(KB)


@pytest.mark.parametrize(
    ("text", "places"),
    [
        ("What's Spain's national dish?", ["Spain"]),  # possessive
        ("Are the Thais' greetings formal?", ["Thailand"]),  # plural possessive
        ("My Chinese colleague invited me to dinner", ["China"]),  # demonym
        ("I'm visiting Bangkok next week", ["Thailand"]),  # a city of a KB location
        ("Is it safe to drink tap water in Mumbai?", ["India"]),  # a city elsewhere
        ("How do I say thank you in Vietnamese?", ["Vietnam"]),  # outside the KB
        ("A trip from Madrid to Beijing", ["Spain", "China"]),
        ("Write a python function that sorts a list", []),
        # in the languages of the multilingual path
        ("¿Es de mala educación llegar tarde a una cena en España?", ["Spain"]),
        ("在泰国摸小孩的头不礼貌吗？", ["Thailand"]),  # Han, inside a sentence without spaces
        ("タイ料理を食べるときのマナーは？", ["Thailand"]),  # katakana word before kanji
        ("ネクタイは必要ですか", []),  # the タイ of ネクタイ (necktie) is no country
        ("インドネシアの習慣を教えて", ["Indonesia"]),  # longest name first, not インド
        ("Чи можна в Україні дарувати парну кількість квітів?", ["Ukraine"]),  # inflected
        ("केन्या में खाना मना करना असभ्य है?", ["Kenya"]),
        ("태국에서 머리를 만지면 안 되나요?", ["Thailand"]),  # with its particle
        ("Phong tục ở Thái Lan thế nào?", ["Thailand"]),  # Vietnamese, two words
        ("Podróż do Indie", ["India"]),  # Polish, capitalised ...
        ("best indie music festivals this summer", []),  # ... the English word is not
    ],
)
def test_places_are_found_however_the_user_names_them(
    detector: LocationDetector, text: str, places: list[str],
) -> None:
    assert detector.detect(text) == places


@pytest.mark.parametrize(
    ("text", "places"),
    [
        # adjectives and demonyms: the CLDR name of the country's own language
        ("¿Qué reglas hay para beber con compañeros coreanos mayores?",
         ["North Korea", "South Korea"]),  # Spanish, plural
        ("Was ist bei einer polnischen Beerdigung zu beachten?", ["Poland"]),  # German
        ("Pourquoi les familles vietnamiennes ont-elles un autel ?", ["Vietnam"]),  # French
        ("Что принято дарить японским коллегам?", ["Japan"]),  # Russian, inflected
        ("Тайська звичка кланятися статуям", ["Thailand"]),  # Ukrainian, capitalised
        ("Sang Nhật ở nhờ nhà người quen thì nên mang quà gì?", ["Japan"]),  # Vietnamese
        ("ما آداب زيارة بيت ياباني؟", ["Japan"]),  # Arabic
        # case endings: consonant change, fleeting vowel, Turkish suffix after an apostrophe
        ("Які традиції на весіллі в Мексиці?", ["Mexico"]),
        ("Чи можна туристам їсти на вулиці в Єгипті?", ["Egypt"]),
        ("Як у Вʼєтнамі святкують Тет?", ["Vietnam"]),  # the apostrophe CLDR writes
        ("Tayland'da tapınaklara girerken nelere dikkat etmek lazım?", ["Thailand"]),
        # and what they must not read as a place
        ("В каком году пала Берлинская стена?", []),  # "пала" (fell), not Palauan
        ("Чи можна самому брати щось із холодильника?", []),  # not Samoa
        ("भारत में लोग उन्हें आंटी बुलाओ क्यों कहते हैं?", ["India"]),  # not the Lao of बुलाओ
        ("Y un chinche en la cama", []),  # a stem under five letters ("chin") is no adjective
    ],
)
def test_other_languages_name_places_by_adjective_and_case_form(
    detector: LocationDetector, text: str, places: list[str],
) -> None:
    assert detector.detect(text, other_language=True) == places


def test_foreign_adjectives_are_not_read_in_english_text(detector: LocationDetector) -> None:
    # "Tamil" (a language of Sri Lanka and Singapore), "round" (the French stem of
    # Kirundi), "islands" (of Icelandic): ordinary English, not other countries
    text = "We drove round the islands and heard Tamil spoken"
    assert detector.detect(text) == []
    assert "Burundi" in detector.detect(text, other_language=True)  # why the flag exists


def test_an_ordinary_word_names_a_country_only_as_a_proper_noun(
    detector: LocationDetector,
) -> None:
    assert detector.detect("a roast turkey recipe for the holidays") == []
    assert detector.detect("I moved to Turkey last year") == ["Turkey"]


def test_the_most_mentioned_place_comes_first(detector: LocationDetector) -> None:
    text = "Coming from China, what should I know about Spain, and Spanish table manners?"
    assert detector.detect(text) == ["Spain", "China"]


def test_known_tells_knowledge_base_locations_from_the_world(
    detector: LocationDetector,
) -> None:
    assert detector.known == frozenset(KB)
    assert len(world_countries()) > 200
    assert {"Kenya", "India", "Japan"} <= {c.name for c in world_countries()}


def test_a_location_outside_the_world_table_is_found_by_its_name() -> None:
    detector = LocationDetector(["Catalonia", "Spain"])
    assert detector.detect("Is tipping expected in Catalonia?") == ["Catalonia"]


def test_words_that_single_out_one_location_are_mined_from_its_descriptions() -> None:
    spain = ("Spain", "The feast of Sanfermin fills the streets in July.")
    china = ("China", "Families gather for the Spring Festival in January or in July.")
    mined = mine_location_words([spain] * 4 + [china] * 4)
    assert "sanfermin" in mined["Spain"]
    assert "july" not in mined.get("Spain", set())  # both locations use it
    assert mine_location_words([spain] * 3) == {}  # too rare to trust

    detector = LocationDetector(["Spain", "China"], [spain] * 4 + [china] * 4)
    assert detector.detect("When does Sanfermin take place?") == ["Spain"]


def test_a_foreign_name_that_is_also_a_big_city_elsewhere_is_not_a_country(
    detector: LocationDetector,
) -> None:
    # Spanish "Granada" is Grenada, and a city of Spain: the table leaves it out.
    assert "Grenada" not in detector.detect("A friend took me to dinner in Granada.")
    assert detector.detect("¿Qué se come en Granada, la isla del Caribe?") == []
    assert detector.detect("Voy de vacaciones a Grenada") == ["Grenada"]
