"""docs/errors-classic.md states, for every code of the core's error table, the classic-network row it
answers with under `"errorContract": "CLASSIC"`: the page and the table in
filter/core/src/contract/errors.rs agree row for row."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ERRORS_RS = os.path.join(ROOT, "filter", "core", "src", "contract", "errors.rs")
PAGE = os.path.join(ROOT, "docs", "errors-classic.md")


def core_mapping():
    src = open(ERRORS_RS, encoding="utf-8").read()
    classic_block = src[src.index("classic! {"):src.index("impl Classic")]
    classic = {m.group(1): (int(m.group(2)), m.group(3))
               for m in re.finditer(r'^    ([A-Z0-9_]+) (\d{3}) "([^"]*)";$', classic_block, re.M)}
    rows = {}
    for m in re.finditer(r'^    ([A-Z0-9]{6}) (\d{3}) "((?:[^"\\]|\\.)*)" => ([A-Z0-9_]+);$', src, re.M):
        rows[m.group(1)] = (int(m.group(2)),) + classic[m.group(4)]
    return classic, rows


def page_mapping():
    rows = {}
    for m in re.finditer(r"^\| `([A-Z0-9]{6})` \| (\d{3}) \| (\d{3}) \| `([^`]*)` \|$", open(PAGE, encoding="utf-8").read(), re.M):
        rows[m.group(1)] = (int(m.group(2)), int(m.group(3)), m.group(4))
    return rows


def test_every_code_has_its_classic_row_on_the_page():
    classic, core = core_mapping()
    assert len(classic) == 30 and len(core) >= 84
    assert page_mapping() == core


def test_the_reader_sees_a_wrong_row():
    """The check above can fail: a page row that differs from the core is noticed."""
    _, core = core_mapping()
    page = page_mapping()
    code = next(iter(page))
    page[code] = (page[code][0], 999, "x")
    assert page != core
