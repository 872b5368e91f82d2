"""``netpet review`` and ``netpet teach`` in headless Chromium (Playwright driving Debian's browser, no download).

One review server per module (``python -m netpet.cli.main review STUDY --reader R2``, started as a user starts
it) on the study of Testing/review/conftest.py; the tests run in file order on one page, as a reader would:
look at the session, go to a lesion from the list, click a lesion to segment it, accept it and record a call,
compare PET/CT with PET/MR. The teaching round runs its own server on the case ``liver-threshold``.

Pixels are judged by colour class, not exact RGB (JPEG frames): a PET-coloured pixel is one where red clearly
exceeds blue (PET-Heat runs black-red-orange-yellow; the CT/MR under it is grey, red = blue).

With NETPET_SCREENSHOTS set to a folder, the review page and the teaching feedback are written there as PNG
(real renders, for the README).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from Testing.review.conftest import CHROMIUM, CHROMIUM_ARGS, Server, browser_or_skip, free_port

#: a pixel is PET-coloured when red is high and exceeds blue by this much (grey CT/MR: red = blue within JPEG noise)
PET_RED_MIN, PET_RED_OVER_BLUE = 140, 70
#: PET-coloured pixels required in the 8x8 screen pixels at a view's centre when it is centred on a lesion: a
#: quarter of them: the centroid lies inside the lesion, but may sit off its hottest voxels, and the finding's
#: segment outline is drawn over some pixels (the real check is that grey CT/MR alone gives 0)
PET_AT_CENTRE_MIN = 16
#: a view sent again with the same picture differs from the previous frame only by JPEG noise, below the 40-level
#: threshold of _differing on nearly every pixel (at most 2 % of them); a view centred elsewhere shows another part
#: of the body and differs on far more (at least 5 %: the smallest move, a few mm, shifts every edge in view)
RESENT_MAX_SHARE, MOVED_MIN_SHARE = 0.02, 0.05
#: the list shows SUVmax rounded to 2 decimals: the page's value is within half a unit of the last decimal of the
#: CLI's for the same seed (the same core segmentation on the same SUV conversion)
SUV_LIST_TOLERANCE = 0.005 + 1e-9
TIMES = {}


def _screenshot_folder():
    folder = os.environ.get("NETPET_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
    return folder


def _image(png):
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB")


def views(page):
    """The slice views' images (trame-slicer's RCA <img>), top-left first; the MIP image is not one."""
    boxes = []
    for element in page.query_selector_all("img"):
        if element.get_attribute("data-testid") == "mip":
            continue
        box = element.bounding_box()
        if box and box["width"] > 50 and box["height"] > 50:
            boxes.append(box)
    return sorted(boxes, key=lambda b: (round(b["y"] / 20), b["x"]))


def grab(page, box):
    return _image(page.screenshot(clip=box))


def nonblank(image):
    low, high = image.convert("L").getextrema()
    return high - low > 30


def pet_pixels(image):
    return sum(1 for r, g, b in image.get_flattened_data() if r > PET_RED_MIN and r - b > PET_RED_OVER_BLUE)


def centre_patch(page, box, half=4):
    image = grab(page, box)
    w, h = image.size
    return image.crop((w // 2 - half, h // 2 - half, w // 2 + half, h // 2 + half))


def wait_views(page, count, timeout=90):
    """Wait until ``count`` views show a non-blank frame and the layout stops moving; returns their boxes."""
    end = time.time() + timeout
    while True:
        boxes = views(page)
        if len(boxes) >= count and all(nonblank(grab(page, b)) for b in boxes[:count]):
            break
        if time.time() > end:
            raise AssertionError(f"{len(boxes)} views with a frame after {timeout} s, expected {count}")
        page.wait_for_timeout(100)
    previous = None
    while True:  # the grid resizes after the first frames arrive: read the boxes until two reads agree
        page.wait_for_timeout(300)
        boxes = views(page)
        current = [tuple(round(v) for v in b.values()) for b in boxes]
        if current == previous:
            return boxes
        previous = current


def wait_settled(page, boxes, before=None, timeout=30):
    """Wait until the views changed from ``before`` (when given) and then stop changing (full-quality frames)."""
    end = time.time() + timeout
    if before is not None:
        while [grab(page, b).tobytes() for b in boxes] == before:
            if time.time() > end:
                raise AssertionError("the views did not change")
            page.wait_for_timeout(50)
    previous = None
    while True:
        page.wait_for_timeout(400)
        current = [grab(page, b).tobytes() for b in boxes]
        if current == previous or time.time() > end:
            return
        previous = current


def status(page):
    return page.inner_text("[data-testid=status-line]")


def wait_status(page, pattern, timeout=60):
    """The status line once it matches ``pattern`` (a regular expression); the line and the messages if never."""
    end = time.time() + timeout
    while not re.search(pattern, status(page)):
        if time.time() > end:
            raise AssertionError(f"no status {pattern!r} in {timeout} s; status line: {status(page)!r}; messages: "
                                 f"{page.inner_text('.netpet-messages')!r}")
        page.wait_for_timeout(100)
    return status(page)


def wait_visible(page, selector, timeout=60):
    """Wait for an element; on a timeout the failure shows the status line and the messages (what the app said)."""
    try:
        page.locator(selector).first.wait_for(timeout=timeout * 1000)
    except Exception as exc:  # noqa: BLE001 - Playwright's TimeoutError, re-raised with the page's own words
        raise AssertionError(f"{selector} did not appear in {timeout} s; status line: {status(page)!r}; messages: "
                             f"{page.inner_text('.netpet-messages')!r}") from exc


def row(page, lesion_id, reader):
    return page.locator(f"[data-testid=lesion-row-{lesion_id}][data-reader={reader}]")


def select_row(page, lesion_id, reader):
    """Click a finding's row and wait until the server has filled the form with it (then the form is ours)."""
    row(page, lesion_id, reader).click()
    page.wait_for_function("(k) => document.querySelector('[data-testid=selected]').innerText.endsWith(k)",
                           arg=f"{reader}|{lesion_id}", timeout=30000)
    page.wait_for_timeout(200)


def go_to_row(page, boxes, lesion_id, reader):
    """Click a row and wait until the views show the lesion: they change (unless they were centred on it already)
    and then settle."""
    before = [grab(page, b).tobytes() for b in boxes]
    row(page, lesion_id, reader).click()
    page.wait_for_function(f"() => window.trame.state.state.selected === '{reader}|{lesion_id}'", timeout=30000)
    try:
        wait_settled(page, boxes, before, timeout=5)
    except AssertionError:  # no change: the views were centred on this lesion already
        wait_settled(page, boxes)


def table_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, through Playwright's sync API (one per module: the API cannot nest)."""
    sync_api = browser_or_skip()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
        print("review times:", json.dumps({k: round(v, 2) for k, v in TIMES.items()}))


@pytest.fixture(scope="module")
def review(browser, review_study, tmp_path_factory):
    """(page, server, study root, facts, view boxes): one server and one page for the module's review tests."""
    root, facts = review_study
    logs = tmp_path_factory.mktemp("review-server")
    server = Server(["review", str(root), "--reader", "R2", "--port", str(free_port())], logs / "server.log")
    TIMES["server_start_s"] = server.start_s
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    t0 = time.perf_counter()
    page.goto(server.url)
    boxes = wait_views(page, 3)
    TIMES["first_frame_s"] = time.perf_counter() - t0
    try:
        yield page, server, root, facts, boxes
    finally:
        page.close()
        code = server.stop()
        assert not errors, f"script errors in the page: {errors}"
        assert code == 0, f"the server did not stop cleanly on Ctrl-C (exit {code}): {server.lines[-3:]}"


def test_session_shown_and_a_listed_lesion_centres_the_views_on_pet(review):
    page, server, root, facts, boxes = review
    assert len(boxes) == 3  # axial, coronal, sagittal; no 3D view
    assert facts["petct"] in page.inner_text("[data-testid=session-label]")
    # the session's lesions from the study table, with their measurements
    hottest = max(facts["lesions"], key=lambda r: float(r["suv_max"]))
    item = row(page, hottest["lesion_id"], "R1")
    assert item.count() == 1
    assert item.locator(".col-suv_max").inner_text() == f"{float(hottest['suv_max']):.2f}"
    assert item.locator(".col-krenning").inner_text() == hottest["krenning"]
    assert item.locator(".col-call").inner_text() == hottest["call"]
    # the PET window up to the session's SUVmax, so the hottest lesion is not saturated to white
    slider = page.locator("[data-testid=window-slider]")
    top = slider.get_attribute("max")
    before = [grab(page, b).tobytes() for b in boxes]
    slider.fill(top)
    wait_settled(page, boxes, before)
    assert page.locator("text=PET SUV 0-" + top).count() == 1
    # a click on the row centres every slice view on the lesion's centroid: PET colour at each view's centre
    before = [grab(page, b).tobytes() for b in boxes]
    t0 = time.perf_counter()
    item.click()
    wait_settled(page, boxes, before)
    TIMES["list_click_to_settled_s"] = time.perf_counter() - t0
    counts = [pet_pixels(centre_patch(page, b)) for b in boxes]
    assert all(n >= PET_AT_CENTRE_MIN for n in counts), f"PET-coloured pixels in the 8x8 centre of each view: {counts}"
    folder = _screenshot_folder()
    if folder:
        page.screenshot(path=os.path.join(folder, "review.png"))


def _differing(a, b, threshold=40):
    """Pixels of two same-sized images that differ by more than ``threshold`` in some channel (JPEG noise is below)."""
    return sum(1 for p, q in zip(a.get_flattened_data(), b.get_flattened_data())
               if max(abs(x - y) for x, y in zip(p, q)) > threshold)


def test_saved_findings_are_drawn_and_their_warnings_shown(review):
    """Reader R1's findings (made by netpet quantify before the page opened) are drawn from their .seg.nrrd: hiding
    the segmentations changes the pixels at the centred lesion; the selected finding's warnings are shown."""
    page, server, root, facts, boxes = review
    warned = [r for r in facts["lesions"] if r["warnings"]]
    assert warned, "the study table has no finding with a warning to show"
    target = max(warned, key=lambda r: float(r["suv_max"]))
    before = [grab(page, b).tobytes() for b in boxes]
    row(page, target["lesion_id"], "R1").click()
    wait_settled(page, boxes, before)
    shown = page.inner_text("[data-testid=finding-warnings]")
    assert target["warnings"].split(" | ")[0] in shown, shown
    drawn = [centre_patch(page, b, half=10) for b in boxes]
    before = [grab(page, b).tobytes() for b in boxes]
    page.uncheck("[data-testid=segments-toggle]")
    wait_settled(page, boxes, before)
    bare = [centre_patch(page, b, half=10) for b in boxes]
    changed = [_differing(a, b) for a, b in zip(drawn, bare)]
    assert all(n > 0 for n in changed), f"pixels changed at the lesion by hiding the segmentations: {changed}"
    before = [grab(page, b).tobytes() for b in boxes]
    page.check("[data-testid=segments-toggle]")
    wait_settled(page, boxes, before)


def test_click_in_a_view_segments_a_lesion_measured_as_the_command_line(review, tmp_path, capsys):
    from netpet.cli.main import main

    page, server, root, facts, boxes = review
    coronal = boxes[1]
    t0 = time.perf_counter()
    page.mouse.click(coronal["x"] + coronal["width"] / 2, coronal["y"] + coronal["height"] / 2)
    pending = row(page, "L01", "R2")
    wait_visible(page, "[data-testid=lesion-row-L01]")
    TIMES["view_click_to_lesion_in_list_s"] = time.perf_counter() - t0
    assert pending.get_attribute("data-status") == "pending"
    text = wait_status(page, r"L01 at ")
    seed = re.search(r"L01 at (-?[\d.]+), (-?[\d.]+), (-?[\d.]+)", text).groups()
    suv_max = float(pending.locator(".col-suv_max").inner_text())
    assert pending.locator(".col-call").inner_text() in ("positive", "negative", "equivocal")
    capsys.readouterr()
    assert main(["segment", str(facts["petct_dir"]), "--seed", ",".join(seed), "--out", str(tmp_path / "m.nrrd"),
                 "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)["lesions"][0]
    assert abs(suv_max - cli["suv_max"]) <= SUV_LIST_TOLERANCE, (suv_max, cli["suv_max"])


def test_accept_then_record_a_call_writes_the_table_and_its_audit_trail(review):
    from netpet.quant.table import StudyTable

    page, server, root, facts, boxes = review
    table = root / "study-table.csv"
    select_row(page, "L01", "R2")
    page.select_option("[data-testid=form-call]", "positive")
    page.select_option("[data-testid=form-confidence]", "4")
    page.fill("[data-testid=form-region]", "liver")
    page.click("[data-testid=btn-accept]")
    wait_status(page, "reading recorded")
    mine = [r for r in table_rows(table) if r["reader"] == "R2" and r["lesion_id"] == "L01"]
    assert len(mine) == 1
    saved = mine[0]
    assert (saved["patient_id"], saved["session_id"]) == (facts["patient"], facts["petct"])
    assert (saved["reader_call"], saved["confidence"], saved["region"]) == ("positive", "4", "liver")
    assert os.path.isfile(root / saved["segmentation_file"])
    assert row(page, "L01", "R2").get_attribute("data-status") == "active"
    page.select_option("[data-testid=form-call]", "negative")
    page.click("[data-testid=btn-record]")
    wait_status(page, re.escape("L01: reading recorded (1 change"))
    saved = next(r for r in table_rows(table) if r["reader"] == "R2" and r["lesion_id"] == "L01")
    assert saved["reader_call"] == "negative"
    audit = [a for a in StudyTable(str(table)).audit() if a.get("reader") == "R2" and a.get("lesion_id") == "L01"]
    changes = [(a.get("column"), a.get("old"), a.get("new")) for a in audit]
    assert ("reader_call", "", "positive") in changes and ("reader_call", "positive", "negative") in changes, changes


def test_reject_needs_a_reason_for_a_saved_finding(review):
    page, server, root, facts, boxes = review
    select_row(page, "L01", "R2")
    page.fill("[data-testid=form-reason]", "")
    page.click("[data-testid=btn-reject]")
    wait_status(page, "Retracting L01: .*reason")
    page.fill("[data-testid=form-reason]", "double count of C01")
    page.click("[data-testid=btn-reject]")
    wait_status(page, "L01 retracted")
    saved = next(r for r in table_rows(root / "study-table.csv") if r["reader"] == "R2" and r["lesion_id"] == "L01")
    assert (saved["finding_status"], saved["retraction_reason"]) == ("retracted", "double count of C01")


def test_edit_segments_again_with_another_method_and_reject_drops_a_pending_finding(review):
    page, server, root, facts, boxes = review
    hottest = max(facts["lesions"], key=lambda r: float(r["suv_max"]))
    go_to_row(page, boxes, hottest["lesion_id"], "R1")
    coronal = boxes[1]
    page.mouse.click(coronal["x"] + coronal["width"] / 2, coronal["y"] + coronal["height"] / 2)
    pending = row(page, "L02", "R2")
    wait_visible(page, "[data-testid=lesion-row-L02]")
    assert "adaptive threshold" in wait_status(page, "L02: segmented")
    select_row(page, "L02", "R2")
    page.select_option("[data-testid=edit-method]", "fixed50")
    page.click("[data-testid=btn-edit]")
    wait_status(page, r"L02: segmented, \d+ voxels \(fixed50 threshold")
    assert row(page, "L02", "R2").get_attribute("data-status") == "pending"
    select_row(page, "L02", "R2")
    page.click("[data-testid=btn-reject]")
    wait_status(page, "L02 dropped")
    assert row(page, "L02", "R2").count() == 0
    assert not [r for r in table_rows(root / "study-table.csv") if r["lesion_id"] == "L02"]


def test_compare_shows_the_pet_mr_beside_the_pet_ct(review):
    page, server, root, facts, boxes = review
    page.check("[data-testid=compare-toggle]")
    both = wait_views(page, 6)
    assert len(both) == 6
    partner = page.inner_text("[data-testid=partner-label]")
    assert "PET/MR" in partner and "PET/CT" not in partner, partner
    # the PET/MR's findings are listed apart (read-only); a click centres the PET/MR views only, on that finding
    listed = page.locator("[data-testid^=partner-row-]")
    assert listed.count() == len(facts["petmr_lesions"])
    hottest = max(facts["petmr_lesions"], key=lambda r: float(r["suv_max"]))
    wait_settled(page, both)
    before = [grab(page, b).tobytes() for b in both]
    page.locator(f"[data-testid=partner-row-{hottest['lesion_id']}][data-reader=R1]").click()
    wait_settled(page, both, before)
    from PIL import Image

    after = [grab(page, b) for b in both]
    # only the PET/MR views move: a main view may be sent again (another JPEG of the same picture: a few pixels
    # differ by JPEG noise), a moved view differs over a large share of its pixels
    moved = [_differing(a, Image.frombytes("RGB", a.size, b)) / (a.size[0] * a.size[1])
             for a, b in zip(after, before)]
    assert max(moved[:3]) < RESENT_MAX_SHARE and min(moved[3:]) > MOVED_MIN_SHARE, \
        f"share of changed pixels per view: {moved}"
    counts = [pet_pixels(centre_patch(page, b)) for b in both[3:]]
    assert all(n >= PET_AT_CENTRE_MIN for n in counts), \
        f"PET-coloured pixels in the 8x8 centre of each PET/MR view: {counts}"
    folder = _screenshot_folder()
    if folder:
        page.screenshot(path=os.path.join(folder, "compare.png"))
    page.click("[data-testid=btn-record]")
    wait_status(page, "is a finding of the compared session")
    page.uncheck("[data-testid=compare-toggle]")
    assert len(wait_views(page, 3)) == 3


def test_mip_click_goes_to_the_hottest_voxel_under_it(review):
    page, server, root, facts, boxes = review
    mip = page.locator("[data-testid=mip]")
    box = mip.bounding_box()
    assert box["width"] > 50 and box["height"] > 300
    before = [grab(page, b).tobytes() for b in boxes]
    mip.click(position={"x": box["width"] / 2, "y": box["height"] * 0.4})
    text = wait_status(page, "Centred on ")
    assert re.search(r"Centred on -?[\d.]+, -?[\d.]+, -?[\d.]+", text)
    wait_settled(page, boxes, before)


def test_the_token_guards_every_request(review):
    page, server, root, facts, boxes = review
    parts = urllib.parse.urlsplit(server.url)
    token = urllib.parse.parse_qs(parts.query)["token"][0]
    assert len(token) >= 16
    bare = f"{parts.scheme}://{parts.netloc}/"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bare, timeout=10)
    assert refused.value.code == 403
    with urllib.request.urlopen(bare + "?token=" + token, timeout=10) as ok:
        assert ok.status == 200
    # the websocket upgrade without the token is refused too
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"GET /ws HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        assert sock.recv(200).split(b"\r\n")[0].endswith(b"403 Forbidden")


# -- teaching ------------------------------------------------------------------------------------------------------

def test_teaching_round_scored_by_the_study_code(browser, teach_case, tmp_path):
    from netpet.review import teaching

    case = teaching.open_case(str(teach_case))
    server = Server(["teach", str(teach_case), "--trainee", "alice", "--port", str(free_port())],
                    tmp_path / "teach.log")
    # the two marks: the pancreatic primary and the liver metastasis above the spleen (the hottest two)
    session = case.sessions[0]["session_id"]
    targets = sorted(case.lesions, key=lambda t: -t["sessions"][session]["suv_max"])[:2]
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.goto(server.url)
        boxes = wait_views(page, 3)
        state = page.evaluate("() => JSON.stringify(window.trame.state.state)")
        # what only the teacher's CASE.md and the reference standard say (the quiz's own words may be shown)
        quiz = set(case.quiz_markdown.splitlines())
        hidden = [line.strip() for line in case.case_markdown.splitlines()
                  if line not in quiz and len(line.strip()) > 30]
        with open(case.reference, newline="") as handle:
            hidden += [",".join(r) for r in list(csv.reader(handle))[1:]]
        hidden += [case.lesson[:60], case.title, "malignant"]  # the teacher's title names the lesson
        leaked = [h for h in hidden if h and json.dumps(h)[1:-1] in state]
        assert not leaked, f"the truth is in the page's state before Finish: {leaked}"
        for number, target in enumerate(targets, 1):
            centre = target["sessions"][session]["centre"]
            page.fill("[data-testid=goto-ras]", ", ".join(f"{v:.1f}" for v in centre))
            before = [grab(page, b).tobytes() for b in boxes]
            page.click("[data-testid=btn-goto]")
            wait_settled(page, boxes, before)
            coronal = boxes[1]
            page.mouse.click(coronal["x"] + coronal["width"] / 2, coronal["y"] + coronal["height"] / 2)
            wait_visible(page, f"[data-testid=lesion-row-T{number:02d}]")
            select_row(page, f"T{number:02d}", "alice")
            page.select_option("[data-testid=form-call]", "positive")
            page.click("[data-testid=btn-accept]")
            page.wait_for_function(f"() => document.querySelector('[data-testid=lesion-row-T{number:02d}]')"
                                   ".getAttribute('data-status') === 'active'", timeout=60000)
        # a lesion the trainee did not mark: nothing drawn there until Finish draws the truth's contours
        missed = max((t for t in case.lesions if t not in targets), key=lambda t: t["diameter_mm"])
        page.fill("[data-testid=goto-ras]", ", ".join(f"{v:.1f}" for v in missed["sessions"][session]["centre"]))
        before = [grab(page, b).tobytes() for b in boxes]
        page.click("[data-testid=btn-goto]")
        wait_settled(page, boxes, before)
        unmarked = [centre_patch(page, b, half=12) for b in boxes]
        before = [grab(page, b).tobytes() for b in boxes]
        page.click("[data-testid=btn-finish]")
        wait_visible(page, "[data-testid=feedback]")
        wait_settled(page, boxes, before)
        contoured = [_differing(a, centre_patch(page, b, half=12)) for a, b in zip(unmarked, boxes)]
        assert all(n > 0 for n in contoured), f"pixels changed at the unmarked lesion by Finish: {contoured}"
        shown = page.inner_text("[data-testid=feedback-text]")
        # the same check finds the truth once it is meant to be there (so it is not a check that cannot fail)
        after = page.evaluate("() => JSON.stringify(window.trame.state.state)")
        assert json.dumps(case.lesson[:60])[1:-1] in after and json.dumps(case.title)[1:-1] in after
        assert len(hidden) > 5
        folder = _screenshot_folder()
        if folder:
            page.screenshot(path=os.path.join(folder, "teaching-feedback.png"))
        page.close()
    finally:
        code = server.stop()
    assert code == 0
    table = teaching.trainee_table(case, "alice")
    assert os.path.isfile(table)
    expected = teaching.score(case, table_rows(table))
    assert shown.strip() == teaching.format_feedback(expected).strip()
    assert expected["lesion"]["tp"] == 2, expected["feedback"]
