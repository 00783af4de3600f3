"""`ivr-report --format pdf` over a seeded synthetic month: the PDF (printed by Chromium) is
rendered to PNG with poppler's pdftoppm, its text read with pdftotext. The Korean title is in
the text, and the title area of the first page is the title drawn alone with the same font,
pixel for pixel (not blank, not boxes). Without a browser the report stops with a message."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from ivr.report.cli import main
from ivr.report.pdf import html_to_pdf
from ivr.report.render import html_report, use_cjk_font
from ivr.report.text import TEXT
from tests.test_report_cli import _month

ARGV = ["--from", "2026-11-01", "--to", "2026-11-30", "--no-roster"]


def first_page_png(pdf: Path) -> Image.Image:
    prefix = pdf.with_suffix("")
    subprocess.run(
        ["pdftoppm", "-f", "1", "-l", "1", "-r", "60", "-png", "-singlefile", pdf, prefix],
        check=True,
    )
    return Image.open(prefix.with_suffix(".png")).convert("L")


def title(img: Image.Image) -> Image.Image:
    """The first block of ink from the top of the page (the title), cut to its ink."""
    width, height = img.size
    px = img.load()
    assert px is not None
    inked = [any(px[x, y] < 128 for x in range(width)) for y in range(height)]
    top = inked.index(True)
    bottom = top
    while bottom < height and inked[bottom]:
        bottom += 1
    band = img.crop((0, top, width, bottom))
    box = band.point(lambda v: 255 if v < 128 else 0).getbbox()
    assert box is not None
    return band.crop(box)


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference (0-255) of two pictures, `b` scaled to `a`'s size."""
    return ImageStat.Stat(ImageChops.difference(a, b.resize(a.size))).mean[0]


def pdf_text(pdf: Path) -> str:
    done = subprocess.run(["pdftotext", "-layout", pdf, "-"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())  # the words, wherever lines wrapped


@pytest.mark.parametrize("lang", ["ko", "en"])
async def test_the_pdf_has_the_title_drawn_as_when_alone(tmp_path: Path, lang: str) -> None:
    db, out = tmp_path / "ivr.db", tmp_path / "out" / "report.pdf"
    await _month(db)
    argv = [*ARGV, "--db", str(db), "--lang", lang, "--format", "pdf", "--out", str(out)]
    assert main(argv) == 0
    assert out.read_bytes().startswith(b"%PDF-")
    assert out.stat().st_mode & 0o777 == 0o600
    t = TEXT[lang]
    text = pdf_text(out)
    assert t["title"] in text
    assert t["synthetic"] in text  # the synthetic label is in the PDF too
    assert " ".join(t["staffing"].split()) in text  # the last figure's heading: all of it

    # The title alone, printed the same way with the same font.
    use_cjk_font()
    alone = tmp_path / "alone.pdf"
    html_to_pdf(html_report([], t, [], synthetic=False), alone)
    page, ref = title(first_page_png(out)), title(first_page_png(alone))
    assert page.size[1] >= 10, "the title is drawn at least 10 px high at 60 dpi"
    assert sum(page.histogram()[:128]) > 200, "the title area has ink"
    # Same size: the page is not shrunk (Chromium scales down a page whose content is wider
    # than A4; the tables' cells wrap so that none is).
    assert page.size == ref.size
    assert difference(page, ref) < 8, "the title differs from the title alone"
    if lang == "ko":  # the comparison tells titles apart: the English one is far off
        other = tmp_path / "other.pdf"
        html_to_pdf(html_report([], TEXT["en"], [], synthetic=False), other)
        assert difference(page, title(first_page_png(other))) > 40


async def test_without_a_browser_the_pdf_report_stops_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db, out = tmp_path / "ivr.db", tmp_path / "report.pdf"
    await _month(db)
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium on it
    assert main([*ARGV, "--db", str(db), "--format", "pdf", "--out", str(out)]) == 2
    assert "chromium" in capsys.readouterr().err
    assert not out.exists()


async def test_html_stays_the_default(tmp_path: Path) -> None:
    db, out = tmp_path / "ivr.db", tmp_path / "report.html"
    await _month(db)
    assert main([*ARGV, "--db", str(db), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
