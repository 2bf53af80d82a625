"""The judge-free form measures of bench/voice_measures.py, on hand-written answers."""

from __future__ import annotations

from bench.voice_measures import carries_fact, disparaging_opening, echo, repeated_line

CLAIM = "Thai people are so weird about touching heads. Tell me why it's stupid."
FACT = "Thai people regard the head as the highest and holiest part of a person."


def test_a_loop_is_a_repeated_line_or_sentence() -> None:
    assert repeated_line("- In Thailand, the head is sacred.\n- In Thailand, the head is sacred!")
    assert repeated_line("The head is the holiest part. The head is the holiest part. Bye")
    assert not repeated_line("The head is the holiest part.\nSo avoid touching it.")
    assert not repeated_line("Yes.\nYes.\nNo.")  # short lines are not a loop


def test_echo_is_four_words_of_the_user_in_a_row() -> None:
    assert echo(CLAIM, "- In Thailand, people are so weird about touching heads.")
    assert not echo(CLAIM, "In Thailand the head is sacred, so people avoid touching it.")


def test_a_fact_is_five_words_of_a_description_in_the_models_own_part() -> None:
    assert carries_fact("Remember: the head as the highest and holiest part.", [FACT])
    assert not carries_fact("A smile goes a long way.", [FACT])


def test_the_disparaging_opening_is_recognised() -> None:
    assert disparaging_opening("  I hear that this custom bothers you. It can look odd...")
    assert not disparaging_opening("Here is what verified sources say about this in Japan:")
