"""The Hershey fonts as a source of non-digits: the .jhf files read right, and nothing that
is or draws as a digit is kept."""

import pytest

from training import hershey_glyphs


def test_a_glyph_of_the_jhf_format_is_read_into_its_strokes():
    # An "A"-like glyph: edges (I, [), then two strokes, the pen lifted between them.
    text = "12345  6I[RFJ[ RRF[["  # points: (0,-12) (-8,9), lift, (0,-12) (9,9)
    [glyph] = hershey_glyphs.jhf_glyphs(text)
    assert glyph == [[(0.0, -12.0), (-8.0, 9.0)], [(0.0, -12.0), (9.0, 9.0)]]


def test_a_long_glyph_goes_on_over_the_next_line():
    text = "    1  5I[RF\nJ[RPRF\n    2  2I[RF\n"
    first, second = hershey_glyphs.jhf_glyphs(text)
    assert first == [[(0.0, -12.0), (-8.0, 9.0), (0.0, -2.0), (0.0, -12.0)]]
    assert second == [[(0.0, -12.0)]]


def test_every_family_is_read_and_no_digit_or_digit_shape_is_kept():
    for family in hershey_glyphs.FAMILIES:
        found = hershey_glyphs.glyphs(family)
        assert len(found) >= 80, f"only {len(found)} glyphs of the {family} fonts"
        kept = {key for _, key, _ in found}
        assert not kept & set(hershey_glyphs.DIGIT_SHAPED + hershey_glyphs.ONE_SHAPED
                              + hershey_glyphs.RING), family
        for font, key, lines in found:
            assert key not in hershey_glyphs.LOOKS_LIKE_A_DIGIT.get(font, ""), (font, key)
            xs = [x for stroke in lines for x, _ in stroke]
            ys = [y for stroke in lines for _, y in stroke]
            assert min(xs) == min(ys) == 0 and max(max(xs), max(ys)) == pytest.approx(1), \
                f"{font} {key!r} is not in a unit frame"
            assert max(xs) >= hershey_glyphs.BAR * max(ys), f"{font} {key!r} is a bar"
            assert max(ys) >= hershey_glyphs.BAR * max(xs), f"{font} {key!r} is a dash"


def test_the_roman_capitals_are_the_letters_they_are_keyed_by():
    # Futura's "T": a bar across the top and a stem down its middle.
    [(_, _, lines)] = [glyph for glyph in hershey_glyphs.glyphs("roman")
                       if glyph[:2] == ("futural", "T")]
    across = [stroke for stroke in lines if abs(stroke[0][1] - stroke[-1][1]) < 1e-6]
    down = [stroke for stroke in lines if abs(stroke[0][0] - stroke[-1][0]) < 1e-6]
    width = max(x for x, _ in across[0])
    assert len(lines) == 2 and across[0][0][1] == 0 and down[0][0][0] == pytest.approx(width / 2)


def test_a_slanted_bar_is_left_out_but_a_cross_is_kept():
    # A thick pen's slanted bar, drawn as two strokes side by side, is a 1.
    assert hershey_glyphs._straight([[(0, 0), (0.5, 1)], [(0.52, 1.02), (0.1, 0.2)]])
    assert not hershey_glyphs._straight([[(0, 0), (1, 1)], [(1, 0), (0, 1)]])
    assert not hershey_glyphs._straight([[(0, 0), (0.8, 0)], [(0.4, 0), (0.4, 1)]])
