"""The HTML report (reports/index.html and a page per card), rendered from the fixture records, and
checked in a real browser: Debian's chromium driven by Playwright (`scripts/setup.sh --test` installs
both; the browser test is skipped, with the reason, where they are missing)."""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path

import pytest

from support import FIXTURES
from vitbench.catalog.registry import list_models, safe_name
from vitbench.records import eval_path, read_record, write_record
from vitbench.report import render_reports

FIXTURES = FIXTURES
RECORDS = FIXTURES / "records"
BETWIXT = "vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k"
WEE = "vit_wee_patch16_reg1_gap_256.sbb_in1k"
MEDIUM_ROPE = "vit_medium_patch16_rope_reg1_gap_256.sbb_in1k"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The fixture records plus one subset run (--limit 500 on ImageNet-R), rendered."""
    results = tmp_path_factory.mktemp("results")
    shutil.copytree(RECORDS / "records", results / "records")
    full = read_record(eval_path(results, "r", BETWIXT, "fp32"))
    subset = dataclasses.replace(full, checkpoint=WEE, limit=500, n_images=500, n_scored=500, complete=False)
    write_record(eval_path(results, "r", WEE, "fp32"), subset)
    out = tmp_path_factory.mktemp("reports")
    render_reports(results, out)
    return out


def test_index_and_a_page_per_card(site):
    assert (site / "index.html").is_file()
    for name in list_models():
        assert (site / "cards" / f"{safe_name(name)}.html").is_file(), name


def test_self_contained(site):
    """Inline CSS and JS, nothing fetched from the network; images are the plots beside the page."""
    html = (site / "index.html").read_text(encoding="utf-8")
    assert "<style>" in html and "<script>" in html
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', html)
    for src in re.findall(r'<img[^>]+src="([^"]+)"', html):
        assert (site / src).is_file(), src


def test_subset_run_is_labelled_without_a_delta(site):
    html = (site / "index.html").read_text(encoding="utf-8")
    row = next(r for r in re.findall(r"<tr[^>]*>.*?</tr>", html, re.S) if 'class="subset"' in r and WEE in r)
    assert "subset, 500 of 30,000" in row
    assert "outside 95% CI" not in row


def test_not_measured_counted_and_failed_jobs_grouped_by_reason(site):
    html = (site / "index.html").read_text(encoding="utf-8")
    section = html[html.index('id="not-measured"'):html.index('id="plots"')]
    n = len(list_models())
    assert f"{8 * n - 19} of the {8 * n} evaluation jobs" in section and "<code>vitbench run --all</code>" in section
    assert "OSError: image file is truncated (fixture)" in section


def _rows(html: str, table_id: str) -> list[str]:
    body = html[html.index(f'id="{table_id}"'):]
    return re.findall(r"<tr[^>]*>.*?</tr>", body[:body.index("</table>")], re.S)[1:]


def test_numeric_cells_carry_their_values(site):
    """The HTML sorts on the number each cell carries (data-sort), not on its text: a top-1 with a
    subset label sorts as the top-1, a missing number sorts last."""
    html = (site / "index.html").read_text(encoding="utf-8")
    first = _rows(html, "board-imagenet-table")[0]
    assert '<td data-sort="86.2" class="num">86.200</td>' in first
    assert '<td data-sort="" class="num na">not measured</td>' in html       # no value: sorts last
    row = next(r for r in _rows(html, "board-r-table") if WEE in r)
    assert '<span class="tag">subset, 500 of 30,000</span>' in row and "not compared: subset, 500 of 30,000" in row


def test_one_verdict_in_both_renderers(site):
    """The published-in-CI answer comes from one function: the markdown and the HTML flag the same rows."""
    html = (site / "index.html").read_text(encoding="utf-8")
    md = (site / "comparison.md").read_text(encoding="utf-8")
    flagged_md = [ln.split(" | ")[0].strip("| ") for ln in md.splitlines() if ln.endswith("**outside 95% CI** |")]
    flagged_html = [re.search(r'cards/([^"]+)\.html', r).group(1) for r in _rows(html, "published-check-table")
                    if "flag-outside" in r]
    assert flagged_md == ["deit_tiny_patch16_224.fb_in1k"] and flagged_html == [safe_name(n) for n in flagged_md]
    assert "1 published figure(s) outside the 95% interval" in html and "(1 flagged)" in md


def test_html_escapes_what_it_inserts(tmp_path):
    from vitbench.report import environment

    env = environment()
    page = {"name": "<b>x</b>", "body": "ok", "md_file": "x.md"}
    out = env.get_template("card.html.j2").render(card=page)
    assert "<b>x</b>" not in out and "&lt;b&gt;x&lt;/b&gt;" in out


def test_same_records_same_bytes(tmp_path):
    render_reports(RECORDS, tmp_path / "a")
    render_reports(RECORDS, tmp_path / "b")
    for rel in ("index.html", f"cards/{BETWIXT}.html"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


# ---------------------------------------------------------------------------- in a browser

def _chromium() -> str | None:
    for c in (os.environ.get("VITBENCH_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if c and Path(c).is_file():
            return c
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright missing: scripts/setup.sh --test")
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium (apt-get install chromium, or scripts/setup.sh --test)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


def _watch(page) -> list[str]:
    """Console errors, page errors and failed loads, collected as they happen."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    return problems


def _visible_column(page, table: str, col: int) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table} tbody tr:not([hidden])",
        f"rows => rows.map(r => r.cells[{col}].getAttribute('data-sort') ?? r.cells[{col}].textContent.trim())")


def test_in_a_browser(site, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    problems = _watch(page)
    page.goto((site / "index.html").as_uri())
    assert page.title() == "vitbench leaderboard"

    # sort the overview by GMACs: largest first on the first click, smallest first on the second;
    # checkpoints without a stats record ("not measured") stay at the bottom either way
    header = page.locator("#board-all thead th", has_text="GMACs")
    col = page.eval_on_selector_all("#board-all thead th", "ths => ths.findIndex(t => t.textContent.trim() === 'GMACs')")
    header.locator("button").click()
    keys = _visible_column(page, "board-all", col)
    nums = [float(k) for k in keys if k]
    assert nums == sorted(nums, reverse=True) and len(nums) == 8
    assert all(k == "" for k in keys[len(nums):])
    assert header.get_attribute("aria-sort") == "descending"
    header.locator("button").click()
    nums = [float(k) for k in _visible_column(page, "board-all", col) if k]
    assert nums == sorted(nums) and header.get_attribute("aria-sort") == "ascending"

    # the best checkpoint within 12 GMACs: a ceiling, then sort by measured top-1
    controls = page.locator('.controls[data-for="board-all"]')
    controls.locator("input.gmacs-max").fill("12")
    top1 = page.eval_on_selector_all("#board-all thead th",
                                     "ths => ths.findIndex(t => t.textContent.includes('(measured)'))")
    page.locator("#board-all thead th").nth(top1).locator("button").click()
    names = _visible_column(page, "board-all", 0)
    assert names[0] == MEDIUM_ROPE and all(float(g) <= 12 for g in _visible_column(page, "board-all", col))
    assert f"3 of {len(list_models())} rows" in controls.locator(".count").inner_text()
    page.screenshot(path=str(tmp_path / "index-gmacs-12.png"))

    # text filter: family and image size words match, not only names
    controls.locator("input.gmacs-max").fill("")
    controls.locator("input.filter").fill("rope")
    names = _visible_column(page, "board-all", 0)
    assert names and all("rope" in n or n.startswith("eva") for n in names)   # family "EVA / RoPE ViT"
    controls.locator("input.filter").fill("21k 384")
    names = _visible_column(page, "board-all", 0)
    assert names and all("384" in n and ("in21k" in n or "hybrid" in n) for n in names)

    # every plot loaded
    broken = page.eval_on_selector_all("img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert page.locator("img").count() > 0 and broken == []
    page.screenshot(path=str(tmp_path / "index.png"), full_page=True)

    # a leaderboard row links to its card page, which links back
    page.locator("#board-imagenet-table tbody tr").first.locator("a").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/cards/{safe_name('vit_mediumd_patch16_reg4_gap_256.sbb_in12k_ft_in1k')}.html")
    assert "Model card for vit_mediumd_patch16_reg4_gap_256.sbb_in12k_ft_in1k" in page.locator("h1").inner_text()
    assert page.locator("main.card table").count() >= 2
    page.screenshot(path=str(tmp_path / "card.png"))
    page.locator("a", has_text="vitbench leaderboard").click()
    page.wait_for_load_state()
    assert page.url.endswith("/index.html")
    assert problems == []
    print(f"\nscreenshots: {tmp_path}/index-gmacs-12.png, index.png, card.png")
