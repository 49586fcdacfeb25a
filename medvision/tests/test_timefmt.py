import pytest

from medvision.timefmt import format_duration, format_ms


@pytest.mark.parametrize(("seconds", "text"), [
    (None, ""), (0, "0:00"), (5.4, "0:05"), (59.6, "1:00"), (372.4, "6:12"), (3725, "1:02:05"), (-3, "-0:03"),
])
def test_durations_read_as_minutes_and_seconds(seconds, text):
    assert format_duration(seconds) == text


def test_milliseconds_read_the_same_way():
    assert format_ms(125_000) == "2:05"
    assert format_ms(7_900) == "0:07"  # the second it falls in, as the player shows it
    assert format_ms(None) == ""
