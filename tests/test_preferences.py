import pytest

from rlphf_lab import preferences as P


def test_six_sides_three_dimensions_paper_prompts():
    assert P.SIDES == ["P1A", "P1B", "P2A", "P2B", "P3A", "P3B"]
    assert {P.get_preference(c).dimension for c in P.SIDES} == {"P1", "P2", "P3"}
    assert P.get_preference("P1A").prompt == ("Generate a response that can be easily understood "
                                              "by an elementary school student.")
    assert P.get_preference("P3B").prompt == "Generate a response in an unfriendly manner."


def test_eight_combinations_and_sixteen_extended():
    combos = P.combinations()
    assert len(combos) == 8 and len(set(combos)) == 8
    assert "P1A+P2B+P3A" in combos
    ext = P.combinations(extended=True)
    assert len(ext) == 16 and "P1B+P2A+P3D" in ext


def test_parse_orders_by_dimension_and_accepts_lists():
    codes = [p.code for p in P.parse_combination("P3A+P1B+p2a")]
    assert codes == ["P1B", "P2A", "P3A"]
    assert P.combination_code(["P2B", "P1A"]) == "P1A+P2B"
    assert P.combination_code("P2A") == "P2A"


@pytest.mark.parametrize("bad, message", [
    ("P4A", "Unknown preference code 'P4A'"),
    ("P1A+P1B", "both sides of dimension P1"),
    ("", "Empty preference combination"),
    ("+", "Empty preference combination"),
    ([], "Empty preference combination"),
])
def test_parse_errors_name_the_valid_codes(bad, message):
    with pytest.raises(ValueError, match=message) as err:
        P.parse_combination(bad)
    assert "P1A, P1B, P2A, P2B, P3A, P3B" in str(err.value)


def test_apply_preference_appends_prompts_in_dimension_order():
    text = P.apply_preference("Why is the sky blue?", "P3B+P2A")
    assert text == ("Why is the sky blue? Generate a response that is concise and to the point, "
                    "without being verbose. Generate a response in an unfriendly manner.")
    assert P.apply_preference("Hi", None) == "Hi"


def test_opposite():
    assert P.opposite("P2A") == "P2B" and P.opposite("P3B") == "P3A"
    with pytest.raises(ValueError, match="no single opposite"):
        P.opposite("P3C")
