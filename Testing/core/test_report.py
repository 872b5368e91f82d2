"""The StudyStats report's own logic on a hand-built study: STARD 2015 flow counts (checked by hand),
integers printed as integers, small-sample marks, the headline guard, the generic sections and the
figures' text extents.

The study (four patients; reference: P1 L1 malignant, L2 benign; P2 L1 malignant; P3 lesion-free;
P4 L1 malignant):

group A, PET/CT dotatate R1: P1 L1 positive (TP), P1 L2 positive (FP), P2 L1 negative (FN), P3 read
without findings, P4 L1 equivocal (counted negative: FN, inconclusive);
group B, PET/CT fdg R1: P1 L1 positive, P2 L1 positive, P3 read without findings; P4 not scanned.

Every expected count below is counted by hand from this list (exact integers: no tolerance).
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from netpet.stats import StatsOptions, analyse, load_study
from netpet.stats.report import html_report, text_overlaps
from netpet.stats.report_sections import (MIN_CLUSTERS, auc_flags, extra_sections_html, headline, html_section,
                                          interval_warning, number, patient_rows)
from netpet.stats.stard import flow_svg, stard_counts, wrap

REFERENCE = """patient_id,lesion_id,region,truth,standard,site
P1,L1,liver,1,histopathology,liver
P1,L2,pancreas,0,follow-up,uncinate process
P2,L1,liver,1,follow-up,liver
P3,,,0,follow-up,
P4,L1,bone,1,follow-up,T10
"""

HEADER = "patient_id,session_id,modality,tracer,reader,lesion_id,region,call,suv_max,krenning\n"
ROWS = [
    ("P1", "S1", "PET/CT", "dotatate", "R1", "L1", "liver", "positive", "14.5", "3"),
    ("P1", "S1", "PET/CT", "dotatate", "R1", "L2", "pancreas", "positive", "12.25", "3"),
    ("P2", "S1", "PET/CT", "dotatate", "R1", "L1", "liver", "negative", "4.0", "1"),
    ("P3", "S1", "PET/CT", "dotatate", "R1", "", "", "", "", ""),
    ("P4", "S1", "PET/CT", "dotatate", "R1", "L1", "bone", "equivocal", "7.5", "2"),
    ("P1", "S2", "PET/CT", "fdg", "R1", "L1", "liver", "positive", "5.0", ""),
    ("P2", "S2", "PET/CT", "fdg", "R1", "L1", "liver", "positive", "6.0", ""),
    ("P3", "S2", "PET/CT", "fdg", "R1", "", "", "", "", ""),
]


@pytest.fixture(scope="module")
def hand_built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    (folder / "reference.csv").write_text(REFERENCE)
    (folder / "table.csv").write_text(HEADER + "".join(",".join(r) + "\n" for r in ROWS))
    study = load_study(str(folder / "table.csv"), str(folder / "reference.csv"))
    analysis = analyse(study, StatsOptions(bootstrap=50, seed=3))
    return analysis


def _group(entries, tracer):
    return next(e for e in entries if e["group"]["tracer"] == tracer)


def test_stard_patient_counts_by_hand(hand_built):
    counts = stard_counts(hand_built.result, hand_built.units)
    a, b = _group(counts["patient"], "dotatate"), _group(counts["patient"], "fdg")
    assert (a["eligible"], a["read"], a["excluded"]) == (4, 4, [])
    assert (a["positive"], a["negative"], a["inconclusive"]) == (1, 3, 1)
    assert (a["tp"], a["fp"], a["fn"], a["tn"]) == (1, 0, 2, 1)
    assert (b["eligible"], b["read"]) == (4, 3)
    assert b["excluded"] == [("no scan read in this group", 1, ["P4"])]
    assert (b["tp"], b["fp"], b["fn"], b["tn"]) == (2, 0, 0, 1)


def test_stard_lesion_counts_by_hand(hand_built):
    counts = stard_counts(hand_built.result, hand_built.units)
    a, b = _group(counts["lesion"], "dotatate"), _group(counts["lesion"], "fdg")
    assert (a["eligible"], a["read"], a["not_found"]) == (4, 4, 0)
    assert (a["positive"], a["negative"], a["inconclusive"]) == (2, 2, 1)
    assert (a["tp"], a["fp"], a["fn"], a["tn"]) == (1, 1, 2, 0)
    assert (b["eligible"], b["read"], b["not_found"]) == (4, 3, 1)  # P1 L2 has no FDG finding: a negative call
    assert [c for _, c, _ in b["excluded"]] == [1]  # P4 L1: P4 was not scanned with FDG
    assert (b["tp"], b["fp"], b["fn"], b["tn"]) == (2, 0, 0, 1)
    # the flows agree with the accuracy tables
    for entry in hand_built.result["accuracy"]:
        if entry["level"] in ("patient", "lesion") and not entry["group_by"]:
            flow = _group(counts[entry["level"]], entry["tracer"])
            assert [flow[k] for k in ("tp", "fp", "fn", "tn")] == [entry[k] for k in ("tp", "fp", "fn", "tn")]


def test_stard_svg_boxes_hold_their_text(hand_built):
    counts = stard_counts(hand_built.result, hand_built.units)
    svg = flow_svg(_group(counts["patient"], "fdg"), "patient")
    assert svg.startswith("<svg") and "xlink:href" not in svg and "http://" not in svg.replace(
        "http://www.w3.org/2000/svg", "")
    lines = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "no scan read in this group: 1" in lines and "(P4)" in lines and "TP: n = 2 patients" in lines
    # wrapping: no line longer than the box allows at the conservative glyph width
    for line in wrap("Eligible: reference lesions and findings matching none " * 3, 200):
        assert len(line) <= int(200 / (0.62 * 12))


def test_integers_print_as_integers(hand_built):
    assert number(3.0) == "3" and number(3) == "3" and number(0.0) == "0"
    assert number(2.5) == "2.50" and number(2.456, 1) == "2.5"
    assert number(0.8133) == "0.813" and number(0.0012345) == "0.00123" and number(-0.0004) == "&minus;0.0004"
    assert number(None) == number(float("nan")) == number("") == "&ndash;"
    page = html_report(hand_built, [])
    assert not re.search(r">\s*[0-4]\.00\s*<", page), "a Krenning score or count printed with decimals"
    rows = patient_rows(hand_built.units)
    p1 = next(r for r in rows if r["patient"] == "P1" and "dotatate" in r["group"])
    assert (p1["tp"], p1["fp"], p1["krenning_max"]) == (1, 1, 3) and isinstance(p1["krenning_max"], int)


def test_small_sample_warnings(hand_built):
    page = html_report(hand_built, [])
    assert "only 4 patients (clusters)" in page  # 4 patients < MIN_CLUSTERS next to the patient-level intervals
    assert "Brown, Cai &amp; DasGupta" in page and "Cameron, Gelbach &amp; Miller" in page
    assert interval_warning(MIN_CLUSTERS, 20) is None
    assert "only 3 units" in interval_warning(30, 3)
    zero = {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0, "method": "cluster bootstrap (50 replicates, percentile)"}
    assert "not estimable" in interval_warning(30, 30, zero, clustered=True)
    from netpet.stats.report import _ci

    assert "not estimable" in _ci(zero)


def test_headline_guard():
    benign = [{"modality": "PET/CT", "tracer": "dotatate", "reader": "R1", "patient_id": f"P{i}", "lesion_id": "B",
               "truth": 0, "found": True, "suv_max": 10.0 + i, "site": "uncinate process"} for i in range(12)]
    malignant = [{**b, "lesion_id": "M", "truth": 1, "site": f"site {i % 3}"} for i, b in enumerate(benign)]
    lesions = pd.DataFrame(benign + malignant)
    chance = {"modality": "PET/CT", "tracer": "dotatate", "reader": "R1", "variable": "suv_max", "auc": 0.46,
              "ci_low": 0.25, "ci_high": 0.67, "n_cases": 12, "n_controls": 12}
    flags = auc_flags({**chance, "n_patients": 12}, lesions)
    assert any("below 0.5" in f for f in flags)
    assert any("every benign lesion is of one kind (site uncinate process" in f for f in flags)
    varied = lesions.assign(site=[f"site {i % 4}" for i in range(len(lesions))])
    assert auc_flags({**chance, "auc": 0.9, "n_patients": 12}, varied) == []
    good = {"level": "patient", "modality": "PET/CT", "tracer": "dotatate", "reader": "R1", "group_by": {},
            "n_patients": 40, "tp": 18, "fp": 2, "fn": 2, "tn": 18,
            "sensitivity": {"estimate": 0.9, "ci_low": 0.7, "ci_high": 0.97},
            "specificity": {"estimate": 0.9, "ci_low": 0.7, "ci_high": 0.97}}
    small = {**good, "tracer": "fdg", "n_patients": 5, "tp": 4, "fn": 0, "fp": 1, "tn": 0}
    supported, withheld = headline({"accuracy": [good, small], "roc": [chance]}, lesions)
    assert len(supported) == 2 and all("dotatate" in s for s in supported)
    assert any("AUC of suv_max" in w and "below 0.5" in w for w in withheld)
    assert sum("fdg" in w for w in withheld) == 2


def test_generic_sections():
    assert html_section("Nothing", None) == "" and html_section("Nothing", []) == ""
    text = html_section("Scores", [{"patient": "P1", "score": 3.0}, {"patient": "P2", "grade": "P2"}])
    assert "<th>score</th>" in text and "<th>grade</th>" in text and "<td>3</td>" in text
    assert extra_sections_html({}) == ""
    page = extra_sections_html({"scores": {"netpet_scores": [{"patient_id": "P1", "netpet_score": "P3"}], "prrt": []},
                                "mrmc": {"method": "OR jackknife", "auc": [{"test": "A", "auc": 0.81234}]},
                                "cause_tally": [{"cause": "physiological uptake", "count": 2}]})
    assert "NETPET score per patient" in page and "PRRT summary" not in page
    assert "Multi-reader" in page and "0.81" in page and "physiological uptake" in page


def test_figure_texts_do_not_overlap(hand_built, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from netpet.stats.report import figures

    made = figures(hand_built, str(tmp_path / "figures"), band_replicates=10)
    assert made
    # the check itself: two texts at one place overlap, two apart do not
    fig, ax = plt.subplots()
    ax.text(0.5, 0.5, "first label")
    ax.text(0.5, 0.5, "second label")
    ax.text(0.1, 0.1, "apart")
    assert ("first label", "second label") in text_overlaps(fig)
    plt.close(fig)
    # every figure figures() saved had its texts checked (and decluttered) before saving: redraw a forest plot
    # the way figures() builds it and check again
    from netpet.stats import report

    seen = []
    original = report._save

    def checking(figure, folder, name):
        paths = original(figure, folder, name)
        seen.append((name, text_overlaps(figure)))
        return paths

    report._save = checking
    try:
        figures(hand_built, str(tmp_path / "again"), band_replicates=10)
    finally:
        report._save = original
    assert seen and all(pairs == [] for _, pairs in seen), seen


def test_endpoints_per_indication_and_cause_codes(tmp_path):
    """The per-indication endpoints of netpet.stats.analysis in the report: TIO patients T1 (culprit missed, decoy
    called positive: FN, positive elsewhere), T2 (culprit found: TP), T3 (nothing found: FN), counted by hand from
    Testing/core/test_stats_endpoints.py's study; the Methods name each indication's endpoint; the proposed cause of
    each false finding is shown as not confirmed."""
    from Testing.core.test_stats_endpoints import study_files

    analysis = analyse(load_study(*study_files(tmp_path)), StatsOptions(bootstrap=0))
    page = html_report(analysis, [])
    assert "Patient level per indication" in page and "<strong>TIO localisation</strong>" in page
    section = page[page.index("Patient level per indication"):]
    tio = re.search(r"<tr><td>[^<]*</td><td>TIO localisation</td>(.*?)</tr>", section).group(1)
    cells = re.findall(r"<td>(.*?)</td>", tio)
    assert cells[:5] == ["3", "1", "0", "2", "0"] and cells[-1] == "1"  # n, TP, FP, FN, TN; positive elsewhere
    rows = patient_rows(analysis.units)
    assert {r["patient"]: r["indication"] for r in rows}["T2"] == "TIO localisation"  # normalised spelling
    assert "(proposed, not confirmed)" in page and "<th>Code</th>" in page


def test_images_refused_or_explained(hand_built, tmp_path):
    """--dicom: a path that is no folder, or a folder without DICOM, is refused in one sentence; without the option
    the report says images were not requested."""
    from netpet.stats.intervals import StatsError
    from netpet.stats.report_images import images_html, session_images

    with pytest.raises(StatsError, match="is not a folder"):
        session_images(hand_built, str(tmp_path / "absent"), str(tmp_path / "images"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not DICOM")
    with pytest.raises(StatsError, match="DICOM"):
        session_images(hand_built, str(tmp_path / "empty"), str(tmp_path / "images"))
    assert "Images were not requested" in images_html(None)
    assert "Images were not requested" in html_report(hand_built, [])


def test_wide_generic_tables_are_cut_into_parts():
    """A result table of 20 columns becomes two tables of at most 12 columns, each repeating the 2 naming columns:
    2 + 10 and 2 + 8 columns."""
    row = {f"c{i:02d}": i for i in range(20)}
    text = html_section("Wide", [row, row])
    tables = re.findall(r"<table>.*?</table>", text)
    assert len(tables) == 2
    heads = [re.findall(r"<th[^>]*>([^<]*)</th>", t) for t in tables]
    assert [len(h) for h in heads] == [12, 10] and all(h[:2] == ["c00", "c01"] for h in heads)
    assert "Part 2 of 2" in text


def test_patient_indications_come_from_the_units_under_their_ids(tmp_path):
    """The patient table's indication follows the analysis' patient ids (pseudonyms included), not the file's."""
    import pandas as pd

    from netpet.stats.report_sections import unit_indications

    reference = tmp_path / "r.csv"
    reference.write_text("patient_id,lesion_id,region,truth,standard,indication\n"
                         "P1,L1,liver,1,histology,NET\nP9,,,0,follow-up,TIO\n")
    units = {"lesion": pd.DataFrame({"patient_id": ["PSEUDO-1", "PSEUDO-1"], "indication": ["NET", "NET"]})}
    # the lesion units' id (a pseudonym) carries its indication; P9, known only from a patient row, from the file
    assert unit_indications(units, str(reference)) == {"PSEUDO-1": "NET", "P1": "NET", "P9": "TIO"}
    assert unit_indications({}, None) == {}
