"""The StudyStats report rendered in headless Chromium (Playwright driving the system's browser, no download):
no script error, every image loaded, no table wider than an A4 page in print, no overlapping text in the
STARD diagrams, and a PDF of several pages.

The study: a small digital reference study (seed 8, two patients, 68Ga-DOTATATE PET/CT only), read from its
truth: every avid lesion found at its true centre, called positive when its true tumour-to-liver ratio is above
1 (so some malignant lesions are missed and the benign uncinate or rib focus is a false positive), each row
carrying its PET's SeriesInstanceUID so that ``--dicom`` draws the MIPs and thumbnails.
"""

from __future__ import annotations

import csv
import os
import re
import shutil

import pytest

from netpet.cli.main import main

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
#: A4 width less the report's @page margins (12 mm each side): 186 mm at 96 px per inch
A4_CONTENT_PX = int(round((210 - 2 * 12) / 25.4 * 96))


def _browser_or_skip():
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip("chromium is not installed (packaging/debian-packages.txt; quickstart.py installs it)")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[test])")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    sync_api = _browser_or_skip()
    from netpet.dicom.index import index_tree
    from netpet.phantom import generate_study

    folder = tmp_path_factory.mktemp("report-browser")
    study = folder / "study"
    generate_study(str(study), 2, 8, tracers=("dotatate",), modalities=("petct",), jobs=1)
    with open(study / "truth" / "lesions.csv", newline="") as handle:
        truth = list(csv.DictReader(handle))
    rows, uids = [], {}
    for t in truth:
        key = (t["patient_id"], t["session_id"])
        if key not in uids:
            uids[key] = index_tree(str(study / "dicom" / t["patient_id"] / t["session_id"] / "PET"),
                                   jobs=1).pet_series()[0].series_uid
        if t["avid"] != "1":
            continue
        rows.append({"patient_id": t["patient_id"], "session_id": t["session_id"], "modality": t["modality"],
                     "tracer": t["tracer"], "reader": "R1", "lesion_id": t["lesion_id"], "region": t["region"],
                     "call": "positive" if float(t["tl_ratio_true"]) > 1.0 else "negative",
                     "suv_max": t["suv_max_true"], "tl_ratio": t["tl_ratio_true"],
                     "krenning": "3" if float(t["tl_ratio_true"]) > 1.0 else "1",
                     "centroid_r": t["center_r"], "centroid_a": t["center_a"], "centroid_s": t["center_s"],
                     "series_uid": uids[key]})
    with open(folder / "table.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = folder / "out"
    assert main(["stats", str(folder / "table.csv"), "--reference", str(study / "reference_standard.csv"),
                 "--out", str(out), "--bootstrap", "100", "--dicom", str(study / "dicom")]) == 0
    # the same study's report with the sections the lead wires in (the reading standards' results): generic tables
    from netpet.clinical.scores import study_scores
    from netpet.stats import StatsOptions, analyse, load_study
    from netpet.stats.report import html_report

    analysis = analyse(load_study(str(folder / "table.csv"), str(study / "reference_standard.csv")),
                       StatsOptions(bootstrap=0))
    analysis.result["scores"] = study_scores([{k: str(v) for k, v in r.items()} for r in rows])
    (folder / "with-scores.html").write_text(html_report(analysis, []), encoding="utf-8")
    return sync_api, out, rows


def test_report_in_chromium(rendered, tmp_path):
    sync_api, out, rows = rendered
    report = out / "report.html"
    text = report.read_text()
    assert "src='http" not in text and "href='http" not in text  # one self-contained file
    errors = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            # every image decoded (naturalWidth > 0): figures, MIPs and thumbnails
            images = page.eval_on_selector_all("img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])")
            sessions = {(r["patient_id"], r["session_id"]) for r in rows}
            assert len([i for i in images if i[0].startswith("MIP")]) == len(sessions)
            assert any(i[0].startswith(("FP", "FN")) for i in images)  # a thumbnail of a false finding
            assert all(complete and width > 0 for _, complete, width in images), images
            # the STARD diagrams: no two texts overlap (the browser's own glyph boxes), each inside its diagram
            overlaps = page.evaluate("""() => {
                const bad = [];
                for (const svg of document.querySelectorAll('svg.stard')) {
                    const frame = svg.getBoundingClientRect();
                    const boxes = [...svg.querySelectorAll('text')]
                        .map(t => [t.textContent, t.getBoundingClientRect()]);
                    for (const [name, b] of boxes) {
                        if (b.left < frame.left - 0.5 || b.right > frame.right + 0.5) bad.push(['outside', name]);
                    }
                    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
                        const a = boxes[i][1], b = boxes[j][1];
                        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
                        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
                        if (w > 0.5 && h > 0.5) bad.push([boxes[i][0], boxes[j][0]]);
                    }
                }
                return [document.querySelectorAll('svg.stard').length, bad];
            }""")
            assert overlaps[0] >= 2 and overlaps[1] == [], overlaps  # patients and lesions of the one group
            # each STARD text stays inside its box: the rect it belongs to is the one drawn just before
            inside = page.evaluate("""() => {
                const bad = [];
                for (const text of document.querySelectorAll('svg.stard text')) {
                    let rect = text.previousElementSibling;
                    while (rect && rect.tagName !== 'rect') rect = rect.previousElementSibling;
                    const r = rect.getBoundingClientRect(), t = text.getBoundingClientRect();
                    if (t.left < r.left || t.right > r.right + 0.5 || t.top < r.top || t.bottom > r.bottom + 0.5)
                        bad.push(text.textContent);
                }
                return bad;
            }""")
            assert inside == [], inside
            # print: at the A4 content width no table (nor the page) is wider than the page
            page.emulate_media(media="print")
            page.set_viewport_size({"width": A4_CONTENT_PX, "height": 1100})
            widths = page.evaluate("""() => [document.documentElement.scrollWidth,
                [...document.querySelectorAll('table')].map(t => Math.ceil(t.getBoundingClientRect().right))]""")
            assert widths[0] <= A4_CONTENT_PX, widths[0]
            assert max(widths[1]) <= A4_CONTENT_PX, [w for w in widths[1] if w > A4_CONTENT_PX]
            page.screenshot(path=str(tmp_path / "report-print.png"), full_page=False)
            pdf = page.pdf(format="A4", print_background=True)
        finally:
            browser.close()
    assert errors == []
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pages >= 8, pages  # data, key results, STARD, accuracy, ROC, patients, images, false findings
    assert (tmp_path / "report-print.png").stat().st_size > 0


def test_sections_of_other_modules_fit_the_page(rendered):
    """The NETPET score, SSTR-RADS and PRRT tables (netpet.clinical.scores.study_scores of the same table) rendered by
    the generic section renderer stay within the A4 print width too."""
    sync_api, out, _ = rendered
    page_path = out.parent / "with-scores.html"
    assert "SSTR-RADS 1.0 per scan" in page_path.read_text()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": A4_CONTENT_PX, "height": 1100})
            page.emulate_media(media="print")
            page.goto(page_path.as_uri())
            widths = page.evaluate("""() => [document.documentElement.scrollWidth,
                [...document.querySelectorAll('table')].map(t => Math.ceil(t.getBoundingClientRect().right))]""")
        finally:
            browser.close()
    assert widths[0] <= A4_CONTENT_PX and max(widths[1]) <= A4_CONTENT_PX, widths


def test_images_are_files_too(rendered):
    _, out, rows = rendered
    files = sorted(os.listdir(out / "images"))
    assert len([f for f in files if f.startswith("mip_")]) == len({(r["patient_id"], r["session_id"]) for r in rows})
    assert any(f.startswith("thumb_") for f in files)
    assert all(f.endswith(".png") and (out / "images" / f).stat().st_size > 0 for f in files)
