"""End to end: every chapter on the small synthetic world, the book, and a real browser.

The session's reference run (``nepkit run`` of every chapter on the small world,
network blocked in the kernels by the test guard; shared with the determinism
and fault tests) is built into the HTML book, and headless Chromium (Debian's
``chromium`` and ``chromium-driver``, driven by Selenium; nothing is downloaded)
loads every page.
"""

from __future__ import annotations

import shutil
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from _runs import SEED, reference_run

from nepkit.io import read_summary
from nepkit.params import RunParams
from nepkit.runner import build_book, chapters_from_toc, output_name

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def book(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    run_dir = reference_run(small_world, tmp_path_factory.getbasetemp())
    params = RunParams(sources=str(small_world), seed=SEED, n_sample=400, run_dir=str(run_dir))
    root = tmp_path_factory.mktemp("book")
    index = build_book(params, sweep_dir=root / "nosweep", build_dir=root / "_build")
    return {"params": params, "index": index, "html": index.parent}


def test_every_chapter_executes_into_the_run_directory(book):
    params = book["params"]
    for nb in chapters_from_toc():
        assert (params.run_path / output_name(nb, params.region)).exists()
    for name in ("mines.parquet", "nep_panel.parquet", "covariates.parquet", "summary.json"):
        assert (params.run_path / name).exists(), name
    assert read_summary(params.run_path)["parameters"]["sources"] == str(book["params"].sources)


def test_the_book_has_an_index_and_the_figure_1_page(book):
    html = book["html"]
    assert book["index"].exists()
    page = (html / "chapters" / "01_data.html").read_text(encoding="utf-8")
    assert "fig1_study_area.png" in page
    assert (html / "_images").exists() and any((html / "_images").glob("fig1_study_area*.png"))


def test_pages_show_no_warnings_or_stray_values(book):
    """No chapter prints a warning (stderr output) or an unassigned value such as a path."""
    html = book["html"]
    for page in [*_pages(html), "chapters/sweep.html"]:
        text = (html / page).read_text(encoding="utf-8")
        assert "output stderr" not in text, f"{page} shows stderr output"
        assert "PosixPath(" not in text, f"{page} shows a path repr"
        assert "{glue" not in text, f"{page} shows an unrendered glue role"


@pytest.fixture(scope="module")
def server(book):
    handler = partial(SimpleHTTPRequestHandler, directory=str(book["html"]))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("headless Chromium not installed (Debian packages chromium and chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _pages(html: Path) -> list[str]:
    pages = ["index.html"] + [f"chapters/{nb.stem}.html" for nb in chapters_from_toc()]
    return pages + ["chapters/real_data.html", "references.html"]


def test_pages_load_with_images_links_and_no_console_errors(book, server, browser):
    from selenium.webdriver.common.by import By

    for page in _pages(book["html"]):
        assert (book["html"] / page).exists(), page
        browser.get(f"{server}/{page}")
        assert "404" not in browser.title
        broken = browser.execute_script(
            "return Array.from(document.images).filter(i => i.complete && i.naturalWidth === 0).map(i => i.src);"
        )
        assert broken == [], (page, broken)
        for link in browser.find_elements(By.CSS_SELECTOR, "a.internal, nav a.reference.internal"):
            href = link.get_attribute("href").split("#")[0]
            if href.startswith(server):
                assert (book["html"] / href[len(server) + 1 :]).exists(), (page, href)
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], (page, errors)


def test_the_interactive_map_renders_its_markers(book, server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server}/chapters/07_mine_map.html")
    frame = browser.find_element(By.CSS_SELECTOR, "iframe.nepkit-mine-map")
    browser.switch_to.frame(frame)
    try:
        WebDriverWait(browser, 30).until(
            lambda d: int(d.find_element(By.ID, "map").get_attribute("data-markers")) > 0
        )
        markers = int(browser.find_element(By.ID, "map").get_attribute("data-markers"))
        n_mines = len(__import__("geopandas").read_parquet(book["params"].run_path / "mines.parquet"))
        assert markers == 2 * n_mines  # one marker per mine in each of the two layers
        assert browser.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers")
    finally:
        browser.switch_to.default_content()


def test_no_socket_left_the_machine():
    with pytest.raises(OSError, match="network access blocked"):
        socket.create_connection(("1.1.1.1", 443), timeout=1)
