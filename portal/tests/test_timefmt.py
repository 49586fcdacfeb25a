"""Times as m:ss and codes as labels in templates (portal.templatetags.timefmt)."""

import pytest

from portal.templatetags.timefmt import code_label, mmss, secs_mmss


@pytest.mark.parametrize(("ms", "text"), [(0, "0:00"), (999, "0:00"), (61_000, "1:01"), (3_723_000, "1:02:03"),
                                          ("1500", "0:01"), (None, ""), ("x", "")])
def test_mmss_reads_milliseconds_as_the_players_clock(ms, text):
    assert mmss(ms) == text


def test_secs_mmss_and_code_label():
    assert secs_mmss(125.0) == "2:05" and secs_mmss(None) == ""
    assert code_label("sigmoid_colon") == "Sigmoid colon" and code_label("") == ""
