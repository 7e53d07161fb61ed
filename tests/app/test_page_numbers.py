"""Every number a page shows goes through the language's formatter (`ui.num`, `ui.count`, `dsmini.i18n.fmt_num`):
a Russian page writes «0,523», never «0.523»."""

import ast

import pytest

from dsmini.i18n import fmt_num, t
from tests.helpers import ROOT

PAGES = ROOT / "pages"


def hand_formatted(source: str) -> list[str]:
    """The places in `source` that format a number by hand: an f-string format spec, `round(...)`,
    `format(...)` or `"...".format(...)`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Name) and func.id in ("round", "format")) or (
                isinstance(func, ast.Attribute) and func.attr == "format"
            ):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return sorted(found, key=lambda place: int(place.split(":")[0]))


def test_the_scan_finds_each_kind_of_hand_formatting():
    source = 'a = f"{x:.3f}"\nb = round(y, 2)\nc = "{}".format(z)\nd = format(w, ",")\ne = f"{v}"\n'
    assert [place.split(":")[0] for place in hand_formatted(source)] == ["1", "2", "3", "4"]


@pytest.mark.parametrize("page", sorted(p.name for p in PAGES.glob("*.py")))
def test_no_page_formats_a_number_by_hand(page):
    assert hand_formatted((PAGES / page).read_text()) == []


@pytest.mark.parametrize(("args", "kwargs", "en", "ru"), [
    ((446528.5, 1), {}, "446,528.5", "446\u202f528,5"),
    ((0.0123, 4), {"sign": True}, "+0.0123", "+0,0123"),
    ((-0.5, 1), {"sign": True}, "-0.5", "-0,5"),
    ((0.1234, 1), {"style": "%"}, "12.3%", "12,3\u00a0%"),
    ((1.5e-6, 1), {"style": "e"}, "1.5e-06", "1,5e-06"),
    ((0.8, 3), {"style": "g"}, "0.8", "0,8"),
])
def test_fmt_num_writes_each_language_s_marks(args, kwargs, en, ru):
    assert fmt_num(*args, "en", **kwargs) == en
    assert fmt_num(*args, "ru", **kwargs) == ru


def test_a_float_handed_to_a_text_gets_the_language_s_decimal_mark():
    key = "experts.domain_mi_caption"
    assert "0,46" in t(key, "ru", ceiling=0.46, seed=0)
    assert "0.46" in t(key, "en", ceiling=0.46, seed=0)
