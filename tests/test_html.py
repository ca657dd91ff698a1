"""The offline HTML page, read back in a real headless Chromium as a person would see it.

Slow-ish on purpose: one browser for the whole module (about a second to start), one fresh
context per test, the page opened from ``file://`` with every other request refused and
recorded. Without Debian's chromium or the playwright package the browser tests skip and say
why; the checks of the file itself always run.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from results import model_result, run_result

from attncli.errors import AttnError
from attncli.html import html_page, notebook_html, write_html
from attncli.html.page import asset, quantise

WORDS = ["[CLS]", "The", "cat", "sat", "on", "the", "mat", ".", "[SEP]"]
SPECIAL = [True] + [False] * 7 + [True]
HOSTILE = ["<script>window.__pwned=1</script>", '<img src=x onerror="window.__pwned=2">', "$x$", "&amp;", "]]>"]
TOLERANCE = 1 / 510 + 0.0005 + 1e-6  # 8-bit storage, then three decimals on screen
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# ---------- the file itself ----------


def test_page_is_self_contained_and_its_own_code_is_small():
    page = html_page([run_result(WORDS, heads=2)])
    assert not re.search(r"https?://", page)
    assert not re.search(r"<(link|img|iframe|object|embed)\b", page, re.I)
    assert not re.search(r"\bsrc\s*=", page)
    assert page.count("<script") == 2  # the data and the code, both inline
    code = len(asset("page.js").encode()) + len(asset("page.css").encode()) + len(page.split("<style>")[0].encode())
    assert code < 60_000
    assert "</script" not in asset("page.js").lower()


def test_token_text_cannot_leave_the_json():
    page = html_page([run_result(HOSTILE, heads=1)])
    data = page.split('<script type="application/json" id="attn-data">')[1].split("</script>")[0]
    assert "<" not in data and ">" not in data


@pytest.mark.parametrize("seed", range(5))
def test_quantised_weights_are_within_half_a_step(seed):
    M = run_result(WORDS, heads=1, seed=seed).A_prime[0, 0]
    b, lo, scale, top = quantise(M)
    back = lo + np.frombuffer(b, np.uint8).reshape(M.shape) * scale / 255
    assert (lo, scale) == (0.0, 1.0) and top == pytest.approx(M.max())
    assert np.abs(back - M).max() <= 1 / 510 + 1e-12


def test_unbounded_weights_get_their_own_scale():
    M = np.array([[0.0, 3.0], [-1.0, 2.0]])
    b, lo, scale, _ = quantise(M)
    back = lo + np.frombuffer(b, np.uint8).reshape(2, 2) * scale / 255
    assert (lo, scale) == (-1.0, 4.0) and np.abs(back - M).max() <= 4 / 510 + 1e-12


def test_notebook_html_is_an_isolated_iframe():
    frame = notebook_html(run_result(HOSTILE, heads=1))
    assert frame.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in frame
    assert "<script" not in frame  # the page is escaped inside the attribute


def test_write_html_is_whole_or_nothing(tmp_path):
    path = write_html([run_result(WORDS)], tmp_path / "page.html")
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    with pytest.raises(AttnError) as err:
        write_html([run_result(WORDS)], tmp_path / "missing" / "page.html")
    assert err.value.code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]
    with pytest.raises(AttnError):
        html_page([])


# ---------- in the browser ----------


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not CHROMIUM:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium); browser tests skipped")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Opened:
    """A page opened from disk with the network refused; what it tried and said is kept."""

    def __init__(self, browser, path: Path, width: int = 1280, dark: bool = False) -> None:
        self.context = browser.new_context(
            viewport={"width": width, "height": 900}, color_scheme="dark" if dark else "light"
        )
        self.page = self.context.new_page()
        self.url = path.resolve().as_uri()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=10_000)

    def _route(self, route) -> None:
        url = route.request.url
        if url == self.url:
            route.continue_()
        else:  # anything else, file or network, is a request the page should never make
            self.requests.append(url)
            route.abort()

    def settle(self) -> None:
        self.page.wait_for_function("document.body.dataset.ready === '1'")
        self.page.wait_for_timeout(50)

    def close(self) -> None:
        self.context.close()
        assert self.requests == [], f"the page tried to load {self.requests}"
        assert self.errors == [], f"console errors: {self.errors}"


@pytest.fixture
def opened(browser, tmp_path):
    pages: list[Opened] = []

    def open_(results, width: int = 1280, dark: bool = False, name: str = "page.html") -> Opened:
        path = write_html(results, tmp_path / name)
        pages.append(Opened(browser, path, width, dark))
        return pages[-1]

    yield open_
    for p in pages:
        p.close()


def shown_numbers(page, side: str) -> dict[int, float]:
    """Token index (0-based) → the number shown beside it, for one column ('q' or 'k')."""
    cells = page.eval_on_selector_all(
        f".tok[data-side='{side}']", "ds => ds.map(d => [+d.dataset.t, d.querySelector('.w').textContent])"
    )
    return {t: float(text) for t, text in cells if text}


def test_hovering_a_query_shows_each_keys_weight(opened):
    result = run_result(WORDS, heads=3, special=SPECIAL)
    o = opened([result])
    for j in (0, 2, 8):
        o.page.hover(f".tok[data-side='q'][data-t='{j}']")
        o.settle()
        shown = shown_numbers(o.page, "k")
        assert sorted(shown) == list(range(9))
        expected = result.A_prime[0, 0][:, j]  # column j: the keys' weights for query j
        assert max(abs(shown[i] - expected[i]) for i in range(9)) <= TOLERANCE
        assert f"Query {j + 1} {WORDS[j]}" in o.page.inner_text("#readout")


def test_hovering_a_key_shows_the_weight_each_query_gives_it(opened):
    result = run_result(WORDS, heads=2)
    o = opened([result])
    o.page.hover(".tok[data-side='k'][data-t='4']")
    o.settle()
    shown = shown_numbers(o.page, "q")
    assert max(abs(shown[j] - result.A_prime[0, 0][4, j]) for j in range(9)) <= TOLERANCE


def test_click_pins_a_query_and_arrows_switch_head_and_layer(opened):
    result = model_result(WORDS, layers=3, heads=4, special=SPECIAL)
    o = opened([result])
    o.page.click(".tok[data-side='q'][data-t='3']")
    o.page.mouse.move(2, 2)  # away: the pinned query keeps its numbers
    o.settle()
    assert "pinned" in o.page.inner_text("#readout")
    o.page.keyboard.press("ArrowRight")  # head 2
    o.page.keyboard.press("ArrowDown")  # layer 2
    o.page.keyboard.press("ArrowDown")  # layer 3
    o.page.mouse.move(2, 2)
    o.settle()
    assert o.page.input_value("#layer") == "3"
    assert o.page.get_attribute(".chip.current", "data-h") == "1"
    shown = shown_numbers(o.page, "k")
    expected = result.A_prime[2, 1][:, 3]
    assert max(abs(shown[i] - expected[i]) for i in range(9)) <= TOLERANCE
    o.page.keyboard.press("Escape")
    o.settle()
    assert shown_numbers(o.page, "k") == {}


def test_head_chips_toggle_and_the_layer_menu_switches(opened):
    result = model_result(WORDS, layers=2, heads=3)
    o = opened([result])
    assert o.page.locator(".chip.on").count() == 3
    o.page.click(".chip[data-h='1']")
    o.settle()
    assert o.page.locator(".chip.on").count() == 2
    o.page.click(".chip[data-h='2']", modifiers=["Shift"])  # only head 3
    o.page.select_option("#layer", "2")
    o.page.hover(".tok[data-side='q'][data-t='5']")
    o.settle()
    assert o.page.locator(".chip.on").count() == 1
    shown = shown_numbers(o.page, "k")
    assert max(abs(shown[i] - result.A_prime[1, 2][i, 5]) for i in range(9)) <= TOLERANCE


def test_heatmap_hover_reads_keys_down_queries_across(opened):
    result = model_result(WORDS, layers=2, heads=2)
    o = opened([result])
    o.page.click(".tab[data-view='heatmap']")
    o.settle()
    box = o.page.locator("#hm").bounding_box()
    n = 9
    for i, j in [(0, 0), (2, 7), (8, 1)]:
        o.page.mouse.move(box["x"] + (j + 0.5) * box["width"] / n, box["y"] + (i + 0.5) * box["height"] / n)
        data = o.page.eval_on_selector("#readout", "r => [+r.dataset.i, +r.dataset.j, r.textContent]")
        assert data[:2] == [i, j]
        shown = float(re.search(r"= (\d\.\d+)", data[2]).group(1))
        assert abs(shown - result.A_prime[0, 0][i, j]) <= TOLERANCE


def test_heatmap_colours_are_the_pngs_viridis(opened):
    import matplotlib

    result = run_result(WORDS, heads=1)
    o = opened([result])
    o.page.click(".tab[data-view='heatmap']")
    o.settle()
    M = result.A_prime[0, 0]
    i, j = np.unravel_index(np.argmax(M), M.shape)
    rgb = o.page.evaluate(
        f"Array.from(document.getElementById('hm').getContext('2d').getImageData({j}, {i}, 1, 1).data)"
    )
    expected = np.array(matplotlib.colormaps["viridis"](1.0)[:3]) * 255
    assert np.abs(np.array(rgb[:3]) - expected).max() <= 2  # the largest weight is viridis' top


def test_model_view_thumbnail_opens_the_head_view(opened):
    result = model_result(WORDS, layers=3, heads=4)
    o = opened([result])
    o.page.click(".tab[data-view='model']")
    o.settle()
    assert o.page.locator("canvas.thumb").count() == 12
    o.page.click("canvas.thumb[data-l='1'][data-h='2']")
    o.settle()
    assert o.page.evaluate("document.body.dataset.view") == "head"
    assert o.page.input_value("#layer") == "2"
    assert o.page.get_attribute(".chip.current", "data-h") == "2"


def test_hostile_tokens_are_text_and_nothing_runs_or_loads(opened):
    result = run_result(HOSTILE, heads=1)
    o = opened([result])
    labels = o.page.eval_on_selector_all(".tok[data-side='q'] .lab", "ls => ls.map(l => l.textContent)")
    assert labels == [f"{k + 1} {t}" for k, t in enumerate(HOSTILE)]
    assert o.page.evaluate("window.__pwned") is None
    assert o.page.locator("img").count() == 0
    assert HOSTILE[0] in o.page.inner_text("#text")


def test_a_batch_gets_a_sentence_picker_and_deflated_heads_read_back(opened):
    long = [f"w{k}" for k in range(128)]
    results = [run_result(WORDS, heads=2), model_result(long, layers=3, heads=2, seed=4)]
    o = opened(results)
    assert o.page.locator("#sentence option").count() == 2
    o.page.select_option("#sentence", "1")
    o.settle()
    assert o.page.inner_text("#text") == results[1].text
    o.page.hover(".tok[data-side='q'][data-t='100']")
    o.settle()
    shown = shown_numbers(o.page, "k")
    assert len(shown) == 128
    assert max(abs(shown[i] - results[1].A_prime[0, 0][i, 100]) for i in range(128)) <= TOLERANCE


def _shot_folder(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("ATTNCLI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("width, dark", [(1280, False), (360, False), (360, True)])
def test_screenshots_fit_the_width_in_light_and_dark(opened, tmp_path, width, dark):
    """The screenshots are saved for a person to look at (ATTNCLI_SCREENSHOTS=folder keeps them)."""
    result = model_result(WORDS + ["<b>bold?</b>", "a-very-long-token-indeed-longer-than-a-phone"], layers=2, heads=4)
    o = opened([result], width=width, dark=dark)
    folder = _shot_folder(tmp_path)
    tag = f"{width}{'_dark' if dark else ''}"
    o.page.hover(".tok[data-side='q'][data-t='2']")
    o.settle()
    o.page.screenshot(path=str(folder / f"head_{tag}.png"), full_page=True)
    assert o.page.evaluate("document.documentElement.scrollWidth") <= width
    for view in ("model", "heatmap"):
        o.page.click(f".tab[data-view='{view}']")
        o.settle()
        o.page.screenshot(path=str(folder / f"{view}_{tag}.png"), full_page=True)
        assert o.page.evaluate("document.documentElement.scrollWidth") <= width
    background = o.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (background == "rgb(22, 24, 29)") == dark
