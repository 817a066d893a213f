"""The safe expression evaluator: what it computes (numpy, jagged awkward) and what it refuses."""

import awkward as ak
import numpy as np
import pytest

from hepsnake.errors import HepsnakeError
from hepsnake.io.expressions import check, compared_constants, evaluate, names


def test_arithmetic_functions_and_comparisons_on_numpy():
    x = np.array([3.0, -4.0, 0.5])
    y = np.array([4.0, 3.0, 2.0])
    v = {"x": x, "y": y}
    np.testing.assert_allclose(evaluate("hypot(x, y)", v, "t"), [5.0, 5.0, np.hypot(0.5, 2)])
    np.testing.assert_allclose(evaluate("-x ** 2 + y % 3", v, "t"), -(x**2) + y % 3)
    np.testing.assert_allclose(evaluate("sqrt(abs(x)) * exp(0) / 2", v, "t"), np.sqrt(abs(x)) / 2)
    np.testing.assert_array_equal(evaluate("0 < x < 1", v, "t"), [False, False, True])
    np.testing.assert_array_equal(evaluate("x > 0 and not y > 3", v, "t"), [False, False, True])
    np.testing.assert_array_equal(evaluate("(x > 1) | ~(y < 2.5)", v, "t"), [True, True, False])
    np.testing.assert_allclose(evaluate("where(x > 0, x, 10)", v, "t"), [3.0, 10.0, 0.5])
    np.testing.assert_allclose(evaluate("maximum(x, y) - minimum(x, y)", v, "t"), abs(x - y))
    np.testing.assert_allclose(evaluate("arctan2(y, x)", v, "t"), np.arctan2(y, x))


def test_delta_phi_wraps_and_delta_r():
    phi1 = np.array([3.0, -3.0, 0.1])
    phi2 = np.array([-3.0, 3.0, 0.0])
    dphi = evaluate("delta_phi(a, b)", {"a": phi1, "b": phi2}, "t")
    np.testing.assert_allclose(dphi, [6.0 - 2 * np.pi, 2 * np.pi - 6.0, 0.1], atol=1e-12)
    assert ((dphi >= -np.pi) & (dphi < np.pi)).all()
    dr = evaluate("delta_r(e1, a, e2, b)", {"e1": 1.0, "e2": 0.0, "a": phi1, "b": phi2}, "t")
    np.testing.assert_allclose(dr, np.hypot(1.0, dphi))


def test_jagged_broadcasts_against_per_event_scalars():
    jets = ak.Array([[1.0, 2.0], [], [3.0]])
    weight = ak.Array([10.0, 20.0, 30.0])
    out = evaluate("Jet_pt * w + 1", {"Jet_pt": jets, "w": weight}, "t")
    assert out.tolist() == [[11.0, 21.0], [], [91.0]]
    mask = evaluate("abs(Jet_pt - 2) < w / 10", {"Jet_pt": jets, "w": weight}, "t")
    assert mask.tolist() == [[False, True], [], [True]]
    picked = evaluate("where(w > 15, Jet_pt, -1)", {"Jet_pt": jets, "w": weight}, "t")
    assert picked.tolist() == [[-1, -1], [], [3.0]]


def test_names_are_branches_not_functions():
    assert names("hypot(Jet_Px, Jet_Py) > abs(Jet_Px)") == ["Jet_Px", "Jet_Py"]
    assert names("pt") == ["pt"]
    assert compared_constants("pt > 20", "pt") == [20.0]
    assert compared_constants("30 < pt < 2e3 and eta > -1", "pt") == [30.0, 2000.0]
    assert compared_constants("abs(pt) > 20", "pt") == []


@pytest.mark.parametrize(
    ("text", "piece"),
    [
        ("__import__('os').system('true')", "__import__"),
        ("x.real", "x.real"),
        ("x[0]", "x[0]"),
        ("(lambda: 1)()", "lambda"),
        ("open('f')", "open"),
        ("eval('1')", "eval"),
        ("abs(x=1)", "keyword"),
        ("'text'", "only number literals"),
        ("x if y else 2", "x if y else 2"),
        ("x // 2", "FloorDiv"),
        ("hypot(x)", "takes 2"),
        ("x +", "not a valid expression"),
        ("[x for x in y]", "[x for x in y]"),
        ("True", "only number literals"),
    ],
)
def test_refused_with_the_key_and_the_piece(text, piece):
    with pytest.raises(HepsnakeError) as info:
        check(text, "config: convert/cuts/0")
    message = str(info.value)
    assert message.startswith("config: convert/cuts/0: ")
    assert piece in message and "\n" not in message


def test_unknown_name_names_the_variable():
    with pytest.raises(HepsnakeError, match="uses unknown variable 'Jet_charge'"):
        evaluate("Jet_charge > 0", {"Jet_pt": np.ones(2)}, "f.root: jets.q")


@pytest.mark.parametrize(
    "text",
    [
        "10**10**10 < pt",
        "9**9**9 > 0",
        "x+" * 50000 + "x",
        "-" * 100000 + "x",
        "(" * 500 + "x" + ")" * 500,
    ],
)
def test_hostile_sizes_are_one_line_at_once(text):
    """Huge powers overflow (floats) instead of computing for ever; deep or long text is
    refused at parse time instead of a RecursionError/MemoryError traceback."""
    with pytest.raises(HepsnakeError) as err:
        check(text, "convert: cuts: 0")
        evaluate(text, {"pt": np.ones(3), "x": np.ones(3)}, "convert: cuts: 0")
    assert len(str(err.value)) < 300
