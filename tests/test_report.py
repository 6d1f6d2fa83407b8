"""`vlprompt report SWEEP_ROOT`: one self-contained HTML file (checked with html.parser and headless Chromium)."""

import base64
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from vlprompt.cli import main

FAST = ["--set", "train.epochs=1", "--set", "train.batch_size=32"]


class Page(HTMLParser):
    """The tables, images and links of a page, and every reference a browser would fetch."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self.links, self.fetched = 0, [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tables += tag == "table"
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "a":
            self.links.append(attrs.get("href", ""))
        for name in ("src", "href", "data", "poster", "srcset"):
            value = attrs.get(name)
            if value and tag != "a" and not value.startswith("data:"):
                self.fetched.append(value)
        if tag in ("script", "link", "iframe", "object", "embed", "base"):
            self.fetched.append(tag)


def parse(text):
    page = Page()
    page.feed(text)
    return page


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("VLPROMPT_CACHE", str(tmp_path_factory.mktemp("cache")))
    root = tmp_path_factory.mktemp("sweep")
    cmd = ["sweep", "--protocol", "b2n", "--datasets", "toy", "--methods", "coop", "zeroshot", "--seeds", "1"]
    assert main([*cmd, *FAST, "--root", str(root), "-q"]) == 0
    assert main(["report", str(root)]) == 0
    yield root, root / "report.html"
    mp.undo()


def expected_counts(root):
    from vlprompt.results.plots import plot_all
    from vlprompt.results.render import tables
    from vlprompt.results.summaries import summaries

    found = summaries(root)
    return len(tables(found, paper=True)), len(plot_all(root, found, root / "expected-plots"))


def test_every_table_image_and_run_is_in_the_file_and_nothing_is_fetched(report):
    root, out = report
    text = out.read_text()
    page = parse(text)
    n_tables, n_images = expected_counts(root)
    assert page.tables == n_tables >= 3 and len(page.images) == n_images >= 1
    assert page.fetched == [] and "http://" not in text and "https://" not in text
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "paper" in text and "Δ" in text  # the published numbers beside ours
    for run in ("b2n/coop/toy-b2n/shots16/seed1/train", "b2n/zeroshot/toy-b2n/shots16/seed1/eval-new"):
        assert f"<summary>{run}</summary>" in text
    assert page.links and all(not os.path.isabs(h) and (out.parent / h).is_file() for h in page.links)
    assert "method: coop" in text  # the training run's settings (config.yaml)


def test_out_elsewhere_keeps_links_relative_to_the_report(report, tmp_path):
    root, _ = report
    out = tmp_path / "deep" / "r.html"
    assert main(["report", str(root), "--out", str(out)]) == 0
    page = parse(out.read_text())
    assert page.links and all((out.parent / h).resolve().is_file() for h in page.links)


def test_bad_inputs_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "no finished runs" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium binary on PATH")
def test_headless_chromium_shows_every_table_and_image(report, tmp_path):
    root, out = report
    n_tables, n_images = expected_counts(root)
    argv = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", Path(out).resolve().as_uri()]  # fmt: skip
    dom = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    page = parse(dom)
    assert page.tables == n_tables and len(page.images) == n_images
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert page.fetched == []
