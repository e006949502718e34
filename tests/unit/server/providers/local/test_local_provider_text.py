"""StopScanner: the text a local generation may release, token by token."""

from __future__ import annotations

from server.providers.local.text import StopScanner


def run(pieces: list[bytes], stops: tuple[str, ...] = ()) -> tuple[list[str], str, bool]:
    scanner = StopScanner(stops)
    released = [scanner.feed(piece) for piece in pieces]
    return released, "".join(released) + scanner.finish(), scanner.stopped


def test_without_stops_text_passes_straight_through() -> None:
    released, whole, stopped = run([b"Hello", b", ", b"world"])
    assert released == ["Hello", ", ", "world"]
    assert whole == "Hello, world"
    assert not stopped


def test_a_character_split_across_tokens_waits_until_whole() -> None:
    euro = "€".encode()
    released, whole, _ = run([b"cost: " + euro[:1], euro[1:2], euro[2:] + b"5"])
    assert released == ["cost: ", "", "€5"]
    assert whole == "cost: €5"


def test_a_stop_sequence_cuts_the_text_and_is_not_sent() -> None:
    released, whole, stopped = run([b"one two", b" STOP three"], ("STOP",))
    assert whole == "one two "
    assert stopped
    assert "STOP" not in "".join(released)


def test_text_that_may_begin_a_stop_is_held_back_until_it_cannot() -> None:
    scanner = StopScanner(["\n\nUser:"])
    assert scanner.feed(b"Answer.\n") == "Answer."
    assert scanner.feed(b"\nUs") == ""
    assert scanner.feed(b"ually") == "\n\nUsually"
    assert not scanner.stopped


def test_a_stop_spanning_several_tokens_is_found() -> None:
    released, whole, stopped = run([b"abc<", b"|en", b"d|>tail"], ("<|end|>",))
    assert whole == "abc"
    assert stopped
    assert "".join(released) == "abc"


def test_the_earliest_of_several_stops_wins() -> None:
    _, whole, stopped = run([b"x END y HALT z"], ("HALT", "END"))
    assert whole == "x "
    assert stopped


def test_held_back_text_is_released_when_generation_ends_otherwise() -> None:
    released, whole, stopped = run([b"almost ST"], ("STOP",))
    assert released == ["almost "]
    assert whole == "almost ST"
    assert not stopped


def test_nothing_is_released_after_a_stop() -> None:
    scanner = StopScanner(["."])
    assert scanner.feed(b"Paris. More") == "Paris"
    assert scanner.feed(b" text") == ""
    assert scanner.finish() == ""


def test_empty_stop_strings_are_ignored() -> None:
    _, whole, stopped = run([b"abc"], ("",))
    assert whole == "abc"
    assert not stopped
