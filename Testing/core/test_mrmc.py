"""Multi-reader multi-case ROC (netpet.stats.mrmc) against published RJafroc output, identities and hand counts.

Published values: the Van Dyke et al. (1993) reader study (Testing/reference/mrmc_vandyke.csv: 5 readers,
2 modalities, 114 cases, 45 abnormal; RJafroc's ``dataset02``) analysed by RJafroc
``StSignificanceTesting(dataset02, FOM = "Wilcoxon", method = "OR")`` as printed (8 significant digits) in
Chakraborty's RJafrocBook, chapter "Applications using the Obuchowski Rockette method"
(github.com/dpc10ster/RJafrocBook, docs/10C-OR-AnalysisApplications.md: FOMs, ANOVA, RRRC, FRRC, RRFC), and with
``method = "DBM"`` in its DBM chapter (docs/09B-DBM-Analysis-SigTesting.md: pseudovalue mean squares to 7
significant digits, F, ddf_H and p; the fixed-reader p and interval); and, as a second implementation, MRMCaov's
``summary(mrmc(empirical_auc(truth, rating), treatment, reader, case, data = VanDyke))`` in its README
(github.com/brian-j-smith/MRMCaov, README.md; R's default 7 significant digits). Each value below is the printed
string; the
tolerance is half a unit of its last printed digit (:func:`printed`), i.e. every printed digit is reproduced (all
these tolerances are below 1e-6 absolute: the coarsest, 5e-8, is for 0.5467634).
"""

from __future__ import annotations

import itertools
import math
import os
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from netpet.stats.intervals import StatsError
from netpet.stats.mrmc import auc_and_jackknife, check_frame, mrmc_from_units, or_analysis, result_rows

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "reference", "mrmc_vandyke.csv")


def printed(value, text: str) -> bool:
    """``value`` rounds to the printed ``text``: |value - text| <= half a unit of its last digit."""
    exponent = Decimal(text).as_tuple().exponent
    return value is not None and abs(float(value) - float(text)) <= 0.5 * 10.0 ** exponent * (1 + 1e-9)


def check(value, text):
    assert printed(value, text), f"{value!r} does not round to the published {text}"


@pytest.fixture(scope="module")
def vandyke():
    return pd.read_csv(REFERENCE, dtype={"reader": str, "test": str, "case": str})


@pytest.fixture(scope="module")
def result(vandyke):
    return or_analysis(vandyke, "jackknife")


@pytest.fixture(scope="module")
def dbm(vandyke):
    return or_analysis(vandyke, "dbm")


def test_the_reference_data_are_the_published_design(vandyke):
    cases = vandyke.drop_duplicates("case")
    assert len(vandyke) == 5 * 2 * 114 and cases["truth"].sum() == 45 and (cases["truth"] == 0).sum() == 69
    assert set(vandyke["score"]) == {1, 2, 3, 4, 5}


def test_auc_per_reader_and_test(result):
    published = {"0": ("0.91964573", "0.85877617", "0.90386473", "0.97310789", "0.82979066"),
                 "1": ("0.94782609", "0.90531401", "0.92173913", "0.99935588", "0.92995169")}
    for row in result["auc"]:
        check(row["auc"], published[row["test"]][int(row["reader"])])
    means = {row["test"]: row["auc"] for row in result["test_auc"]}
    check(means["0"], "0.89703704")
    check(means["1"], "0.94083736")
    check(result["rrrc"]["differences"][0]["estimate"], "-0.043800322")


def test_or_variance_components(result):
    vc = result["variance_components"]
    for key, text in (("ms_t", "0.00479617053"), ("ms_r", "0.00383619999"), ("ms_tr", "0.00055103062"),
                      ("var_r", "0.00153499935"), ("var_tr", "0.00020040252"), ("cov1", "0.00034661371"),
                      ("cov2", "0.00034407483"), ("cov3", "0.00023902837"), ("var", "0.00080228827"),
                      ("r1", "0.43203138"), ("r2", "0.42886683"), ("r3", "0.29793328")):
        check(vc[key], text)
    per_test = {row["test"]: row for row in result["per_test"]}
    for test, ms_r, var, cov2 in (("0", "0.0030826287", "0.00101410277", "0.00048396180"),
                                  ("1", "0.0013046019", "0.00059047376", "0.00020418785")):
        check(per_test[test]["ms_r"], ms_r)
        check(per_test[test]["var"], var)
        check(per_test[test]["cov2"], cov2)
    per_reader = {row["reader"]: row for row in result["per_reader"]}
    for reader, ms_t, var, cov1 in (("0", "0.00039706618", "0.00069890056", "3.7346610e-04"),
                                    ("1", "0.00108288538", "0.00110605283", "7.6015978e-04"),
                                    ("2", "0.00015974702", "0.00084234345", "3.5532241e-04"),
                                    ("3", "0.00034447841", "0.00015057773", "1.0833995e-06"),
                                    ("4", "0.00501611603", "0.00121356676", "2.4303685e-04")):
        check(per_reader[reader]["ms_t"], ms_t)
        check(per_reader[reader]["var"], var)
        check(per_reader[reader]["cov1"], cov1)


def test_random_readers_random_cases(result):
    rrrc = result["rrrc"]
    check(rrrc["ddf"], "15.259675")
    check(rrrc["denominator"], "0.0010762629")
    check(rrrc["f"], "4.4563187")
    check(rrrc["p"], "0.051665686")
    assert rrrc["ndf"] == 1
    d = rrrc["differences"][0]
    check(d["se"], "0.020748618")
    check(d["statistic"], "-2.1109995")
    check(d["p"], "0.051665686")
    check(d["ci_low"], "-0.087959499")
    check(d["ci_high"], "0.00035885444")
    tests = {row["test"]: row for row in rrrc["tests"]}
    for test, se, df, low, high in (("0", "0.033173597", "12.744648", "0.82522360", "0.96885048"),
                                    ("1", "0.021566368", "12.710190", "0.89413783", "0.98753689")):
        check(tests[test]["se"], se)
        check(tests[test]["df"], df)
        check(tests[test]["ci_low"], low)
        check(tests[test]["ci_high"], high)


def test_fixed_readers_random_cases(result):
    frrc = result["frrc"]
    check(frrc["chisq"], "5.4759532")
    check(frrc["p"], "0.019279843")
    check(frrc["denominator"], "0.00087586039")
    d = frrc["differences"][0]
    check(d["se"], "0.018717483")
    check(d["statistic"], "-2.3400755")
    check(d["ci_low"], "-0.080485914")
    check(d["ci_high"], "-0.0071147303")
    tests = {row["test"]: row for row in frrc["tests"]}
    for test, se, low, high in (("0", "0.024289710", "0.84943008", "0.94464399"),
                                ("1", "0.016776324", "0.90795637", "0.97371835")):
        check(tests[test]["se"], se)
        check(tests[test]["ci_low"], low)
        check(tests[test]["ci_high"], high)
    published = {"0": ("-0.028180354", "0.025512133", "-1.10458638", "0.269338854", "-0.078183215", "0.0218225068"),
                 "1": ("-0.046537842", "0.026301827", "-1.76937679", "0.076831017", "-0.098088476", "0.0050127916"),
                 "2": ("-0.017874396", "0.031209647", "-0.57272023", "0.566834139", "-0.079044180", "0.0432953879"),
                 "3": ("-0.026247987", "0.017291289", "-1.51798907", "0.129017153", "-0.060138290", "0.0076423157"),
                 "4": ("-0.100161031", "0.044057460", "-2.27341816", "0.023000993", "-0.186512066", "-0.0138099949")}
    assert len(frrc["reader_differences"]) == 5
    for row in frrc["reader_differences"]:
        for key, text in zip(("estimate", "se", "statistic", "p", "ci_low", "ci_high"), published[row["reader"]]):
            check(row[key], text)


def test_random_readers_fixed_cases(result):
    rrfc = result["rrfc"]
    check(rrfc["f"], "8.704")
    check(rrfc["p"], "0.041958752")
    assert rrfc["ndf"] == 1 and rrfc["ddf"] == 4
    d = rrfc["differences"][0]
    check(d["se"], "0.014846287")
    check(d["statistic"], "-2.9502542")
    check(d["ci_low"], "-0.085020224")
    check(d["ci_high"], "-0.0025804202")
    tests = {row["test"]: row for row in rrfc["tests"]}
    for test, se, low, high in (("0", "0.024829936", "0.82809808", "0.96597599"),
                                ("1", "0.016153030", "0.89598936", "0.98568536")):
        check(tests[test]["se"], se)
        check(tests[test]["ci_low"], low)
        check(tests[test]["ci_high"], high)
        assert tests[test]["df"] == 4


def test_mrmcaov_summary_of_the_same_study(result):
    vc, rrrc = result["variance_components"], result["rrrc"]
    for value, text in ((vc["var_r"], "0.0015349993"), (vc["var_tr"], "0.0002004025"), (vc["var"], "0.0008022883"),
                        (vc["cov1"], "0.0003466137"), (vc["r1"], "0.4320314"), (vc["cov2"], "0.0003440748"),
                        (vc["r2"], "0.4288668"), (vc["cov3"], "0.0002390284"), (vc["r3"], "0.2979333"),
                        (vc["ms_t"], "0.004796171"), (vc["ms_tr"], "0.0005510306"),
                        (rrrc["denominator"], "0.001076263"), (rrrc["f"], "4.456319"), (rrrc["ddf"], "15.25967"),
                        (rrrc["p"], "0.05166569")):
        check(value, text)
    d = rrrc["differences"][0]
    for key, text in (("estimate", "-0.04380032"), ("se", "0.02074862"), ("df", "15.25967"),
                      ("ci_low", "-0.0879594986"), ("ci_high", "0.0003588544"), ("statistic", "-2.110999"),
                      ("p", "0.05166569")):
        check(d[key], text)
    per_test = {row["test"]: row for row in result["per_test"]}
    tests = {row["test"]: row for row in rrrc["tests"]}
    for test, values in (("0", ("0.8970370", "0.003082629", "0.0004839618", "0.03317360", "12.74465", "0.8252236",
                                "0.9688505")),
                         ("1", ("0.9408374", "0.001304602", "0.0002041879", "0.02156637", "12.71019", "0.8941378",
                                "0.9875369"))):
        got = (tests[test]["estimate"], per_test[test]["ms_r"], per_test[test]["cov2"], tests[test]["se"],
               tests[test]["df"], tests[test]["ci_low"], tests[test]["ci_high"])
        for value, text in zip(got, values):
            check(value, text)


def test_dbm_pseudovalue_analysis(dbm):
    ms = dbm["dbm"]
    for key, text in (("ms_t", "0.5467634"), ("ms_r", "0.4373268"), ("ms_c", "0.3968699"), ("ms_tr", "0.06281749"),
                      ("ms_tc", "0.09984808"), ("ms_rc", "0.06450106"), ("ms_trc", "0.0399716")):
        check(ms[key], text)
    check(dbm["rrrc"]["f"], "4.4563187")
    check(dbm["rrrc"]["ddf"], "15.259675")
    check(dbm["rrrc"]["p"], "0.051665686")
    frrc = dbm["frrc"]  # DBM's fixed-reader F test, MS(T) / MS(TC) on 1 and 113 degrees of freedom
    assert frrc["ndf"] == 1 and frrc["ddf"] == 113
    check(frrc["p"], "0.021034969")
    check(frrc["differences"][0]["ci_low"], "-0.080883031")
    check(frrc["differences"][0]["ci_high"], "-0.0067176131")


def random_study(seed, tests=2, readers=4, abnormal=12, normal=15, levels=5):
    """A fully crossed study of 5-point scores (ties on purpose) from a latent normal model."""
    rng = np.random.default_rng(seed)
    truth = np.r_[np.ones(abnormal, int), np.zeros(normal, int)]
    latent = rng.normal(0, 1, len(truth)) + 1.2 * truth
    rows = []
    for t, r in itertools.product(range(tests), range(readers)):
        score = np.clip(np.round(latent + rng.normal(0, 0.8, len(truth)) + 0.3 * t + 2.5), 1, levels)
        rows.extend({"reader": f"R{r + 1}", "test": f"T{t + 1}", "case": f"c{k}", "truth": truth[k], "score": s}
                    for k, s in enumerate(score))
    return pd.DataFrame(rows)


def test_jackknife_auc_equals_brute_force_leave_one_out():
    frame = random_study(3, tests=1, readers=1)
    scores, truth = frame["score"].to_numpy(), frame["truth"].to_numpy()

    def wilcoxon(s, y):
        a, b = s[y == 1], s[y == 0]
        return ((a[:, None] > b).sum() + 0.5 * (a[:, None] == b).sum()) / (len(a) * len(b))

    auc, jack = auc_and_jackknife(scores, truth)
    assert auc == pytest.approx(wilcoxon(scores, truth), abs=1e-14)  # the same sum of 0, 1/2, 1 over the pairs
    for k in range(len(scores)):
        keep = np.arange(len(scores)) != k
        assert jack[k] == pytest.approx(wilcoxon(scores[keep], truth[keep]), abs=1e-13)  # float rounding only


@pytest.mark.parametrize("seed,tests", [(1, 2), (2, 3)])
def test_dbm_and_or_jackknife_give_the_same_test(seed, tests):
    """Hillis (Stat Med 2005; 2007): with jackknife covariances, OR and DBM with Hillis' ddf are the same F, ddf and p
    (the pseudovalue mean squares are K times the OR ones); equal to float rounding (1e-9 relative)."""
    frame = random_study(seed, tests=tests)
    a, b = or_analysis(frame, "jackknife"), or_analysis(frame, "dbm")
    for key in ("f", "ddf", "p"):
        assert a["rrrc"][key] == pytest.approx(b["rrrc"][key], rel=1e-9)
    k = a["design"]["cases"]
    assert b["dbm"]["ms_t"] == pytest.approx(k * a["variance_components"]["ms_t"], rel=1e-9)
    assert b["dbm"]["ms_tr"] == pytest.approx(k * a["variance_components"]["ms_tr"], rel=1e-9)
    vc = a["variance_components"]  # MS(TC) - MS(TRC) = K r (Cov2 - Cov3)
    assert b["dbm"]["ms_tc"] - b["dbm"]["ms_trc"] == pytest.approx(k * 4 * (vc["cov2"] - vc["cov3"]), rel=1e-9)
    assert len(a["rrrc"]["differences"]) == tests * (tests - 1) // 2


def test_labels_and_row_order_do_not_change_the_result():
    frame = random_study(5, tests=3)
    base = or_analysis(frame)
    shuffled = frame.sample(frac=1.0, random_state=7).replace({"reader": {"R1": "Z9", "R2": "A0"}})
    again = or_analysis(shuffled)
    for key in ("f", "ddf", "p"):
        assert again["rrrc"][key] == pytest.approx(base["rrrc"][key], rel=1e-12)


def test_small_studies_carry_warnings(result):
    small = or_analysis(random_study(4, readers=3, abnormal=6, normal=8), lesion_level=True)
    text = " ".join(small["warnings"])
    assert "Only 3 readers" in text and "Few cases (6 abnormal, 8 normal)" in text and "Lesion level" in text
    # 4 readers, reader errors independent in the simulation (Cov2 - Cov3 <= 0): ddf = (t-1)(r-1) = 3 < 10
    few_df = or_analysis(random_study(4, readers=4, abnormal=30, normal=30))
    assert few_df["rrrc"]["ddf"] == pytest.approx(3.0) and "only 3.0 denominator degrees" in few_df["warnings"][0]
    assert not result["warnings"]  # Van Dyke: 5 readers, 45 and 69 cases, ddf 15.3


def test_one_reader_gives_the_fixed_reader_analysis_only():
    frame = random_study(6, readers=1)
    result = or_analysis(frame)
    assert result["rrrc"]["differences"] == [] and "two readers" in result["rrrc"]["reason"]
    assert result["frrc"]["p"] is not None and "One reader only" in result["warnings"][0]
    # one reader: the FRRC difference's SE is sqrt(2 (Var - Cov1)) of that reader
    vc = result["variance_components"]
    assert result["frrc"]["differences"][0]["se"] == pytest.approx(math.sqrt(2 * (vc["var"] - vc["cov1"])), rel=1e-12)


def test_one_test_gives_intervals_only():
    result = or_analysis(random_study(6, tests=1))
    assert result["rrrc"]["differences"] == [] and len(result["rrrc"]["tests"]) == 1
    assert result["rrrc"]["tests"][0]["ci_low"] < result["rrrc"]["tests"][0]["estimate"]
    assert any("One test only" in w for w in result["warnings"])


def test_result_rows_are_one_long_table(result):
    rows = result_rows(result)
    kinds = {(r["analysis"], r["quantity"]) for r in rows}
    assert ("figure of merit", "auc") in kinds and ("rrrc", "F") in kinds and ("frrc", "chi-square") in kinds
    assert sum(r["quantity"] == "auc" for r in rows) == 10


@pytest.mark.parametrize("change,message", [
    (lambda f: f.drop(index=[3]), "not fully crossed: 1 of 1140"),
    (lambda f: pd.concat([f, f.iloc[[0]]]), "more than once"),
    (lambda f: f.assign(score=f["score"].where(f.index != 5, "high")), "no finite number"),
    (lambda f: f.assign(truth=f["truth"].where(f.index != 5, 2)), "truth is 1 (abnormal) or 0"),
    (lambda f: f.assign(truth=f["truth"].where(f.index != 0, 1 - f["truth"].iloc[0])), "has truth 1 in some rows"),
    (lambda f: f.assign(truth=0), "no abnormal (truth 1) case"),
    (lambda f: f.drop(columns=["score"]), "lack the column(s) score"),
])
def test_bad_input_is_one_sentence(vandyke, change, message):
    with pytest.raises(StatsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_frame(change(vandyke.copy()))


def test_unknown_method_is_refused(vandyke):
    with pytest.raises(StatsError, match="Unknown MRMC method"):
        or_analysis(vandyke, "bootstrap")


# -- from the StudyStats units --------------------------------------------------------------------------------------

def units(rows):
    return pd.DataFrame(rows, columns=["patient_id", "lesion_id", "modality", "tracer", "reader", "truth",
                                       "confidence"])


def test_units_become_the_tidy_frame_with_exclusions_counted():
    rows = []
    for reader, modality in itertools.product(("R1", "R2"), ("PET/CT", "PET/MR")):
        for patient, truth, conf in (("P1", 1, 5), ("P2", 1, 4), ("P3", 0, 2), ("P4", 0, 1)):
            rows.append((patient, "L1", modality, "dotatate", reader, truth, conf))
    rows.append(("P5", "L1", "PET/CT", "dotatate", "R1", 1, 3))               # P5 read by R1 under PET/CT only
    rows.append(("P1", "L1", "PET/CT", "dotatate", "R3", 1, 5))               # R3 read PET/CT only
    rows[0] = ("P1", "L1", "PET/CT", "dotatate", "R1", 1, float("nan"))       # P1: R1's finding without confidence
    frame, notes = mrmc_from_units(units(rows), ["pet/ct  DOTATATE", "PET/MR dotatate"], "lesion")
    assert sorted(frame["case"].unique()) == ["P2/L1", "P3/L1", "P4/L1"]
    assert len(frame) == 3 * 2 * 2 and set(frame["test"]) == {"PET/CT dotatate", "PET/MR dotatate"}
    assert notes[0].startswith("1 reader(s) left out") and "R3" in notes[0]
    assert any(n.startswith("1 of 5 lesion cases left out: a finding there has no confidence") for n in notes)
    assert any(n.startswith("1 of 5 lesion cases left out: not read by every reader") for n in notes)


def test_units_refusals():
    rows = [("P1", "L1", "PET/CT", "dotatate", "R1", 1, 5), ("P2", "L1", "PET/CT", "dotatate", "R1", 0, 1)]
    with pytest.raises(StatsError, match="no test 'PET/MR fdg'"):
        mrmc_from_units(units(rows), ["PET/MR fdg"], "lesion")
    with pytest.raises(StatsError, match="lack confidence"):
        mrmc_from_units(units(rows).drop(columns=["confidence"]), None, "lesion")
    with pytest.raises(StatsError, match="Unknown MRMC level"):
        mrmc_from_units(units(rows), None, "region")


def test_patient_cases_at_several_time_points_are_named_by_time_point():
    rows = [("P1", "PET/CT", "dotatate", "R1", "", 1, 5), ("P1", "PET/CT", "dotatate", "R1", "FU1", 0, 2)]
    frame = pd.DataFrame(rows, columns=["patient_id", "modality", "tracer", "reader", "time_point", "truth",
                                        "confidence"])
    tidy, notes = mrmc_from_units(frame, None, "patient")
    assert sorted(tidy["case"]) == ["P1@FU1", "P1@baseline"] and not notes


# -- through the study table: netpet mrmc -----------------------------------------------------------------------------

def reader_study_files(tmp_path):
    """Six patients (P1-P3 with a malignant lesion, P4-P5 a benign one, P6 none), two readers, DOTATATE PET/CT and
    PET/MR. Patient confidence = its finding's (one finding each), 1 when read without a finding. P7 (malignant) is
    read by R1 under PET/CT only."""
    from Testing.core.test_stats_inputs import finding, write_reference, write_table

    reference = [("P1", "L1", "liver", "1", "histopathology"), ("P2", "L1", "liver", "1", "histopathology"),
                 ("P3", "L1", "bone", "1", "follow-up"), ("P4", "L1", "pancreas", "0", "follow-up"),
                 ("P5", "L1", "bone", "0", "follow-up"), ("P6", "", "", "0", "follow-up"),
                 ("P7", "L1", "liver", "1", "histopathology")]
    confidences = {  # (reader, modality): P1..P6; None = read, nothing found (confidence 1)
        ("R1", "PET/CT"): (5, 4, None, 3, None, None), ("R1", "PET/MR"): (5, 5, 3, 2, None, None),
        ("R2", "PET/CT"): (4, 2, None, 2, None, None), ("R2", "PET/MR"): (5, 3, 2, None, 2, None)}
    rows = []
    for (reader, modality), values in confidences.items():
        for number, value in enumerate(values, start=1):
            patient = f"P{number}"
            if value is None:
                rows.append(finding(patient, "", "", modality, reader=reader, confidence=""))
            else:
                rows.append(finding(patient, "L1", "positive", modality, reader=reader, confidence=str(value)))
    rows.append(finding("P7", "L1", "positive", "PET/CT", reader="R1", confidence="5"))
    header = ("patient_id", "lesion_id", "region", "truth", "standard")
    return (write_table(tmp_path / "table.csv", rows),
            write_reference(tmp_path / "reference.csv", reference, header))


def test_netpet_mrmc_on_a_study_table(tmp_path, capsys):
    import json

    from netpet.cli.main import main
    from netpet.stats.data import load_study, units_for

    table, reference = reader_study_files(tmp_path)
    units = units_for(load_study(table, reference))["patient"]
    if "confidence" not in units.columns:
        pytest.skip("the units do not carry the readers' confidence yet (netpet.stats.data)")
    out = tmp_path / "mrmc"
    code = main(["mrmc", "--table", table, "--reference", reference, "--level", "patient", "--tests",
                 "PET/CT dotatate", "PET/MR dotatate", "--out", str(out), "--json"])
    assert code == 0
    printed_result = json.loads(capsys.readouterr().out)
    written = json.loads((out / "mrmc.json").read_text())
    assert written == printed_result and (out / "mrmc.csv").exists()
    # AUC by hand over the 3 x 3 (abnormal, normal) pairs, ties 1/2:
    # R1 CT (5,4,1) vs (3,1,1): 3 + 3 + (0 + 1/2 + 1/2) = 7/9; R1 MR (5,5,3) vs (2,1,1): 9/9;
    # R2 CT (4,2,1) vs (2,1,1): 3 + (1/2 + 1 + 1) + (0 + 1/2 + 1/2) = 6.5/9;
    # R2 MR (5,3,2) vs (1,2,1): 3 + 3 + 2.5 = 8.5/9
    auc = {(r["test"], r["reader"]): r["auc"] for r in written["auc"]}
    assert auc == pytest.approx({("PET/CT dotatate", "R1"): 7 / 9, ("PET/MR dotatate", "R1"): 1.0,
                                 ("PET/CT dotatate", "R2"): 6.5 / 9, ("PET/MR dotatate", "R2"): 8.5 / 9}, abs=1e-12)
    assert written["design"] == {"tests": ["PET/CT dotatate", "PET/MR dotatate"], "readers": ["R1", "R2"],
                                 "cases": 6, "abnormal": 3, "normal": 3}
    assert any(n.startswith("1 of 7 patient cases left out: not read by every reader") for n in written["notes"])
    assert any("Only 2 readers" in w for w in written["warnings"])
    # both readers gain exactly 2/9 with PET/MR (7/9 -> 1, 6.5/9 -> 8.5/9): MS(TR) = 0, so Hillis' ddf is infinite
    # and the fixed-case F test undefined (said so); the wide intervals pass 1 and the result says that too
    assert written["rrrc"]["ddf_infinite"] and written["rrrc"]["ddf"] is None and written["rrrc"]["p"] is not None
    assert written["rrfc"]["f"] is None and "MS(TR) = 0" in written["rrfc"]["reason"]
    assert any("reaches beyond [0, 1]" in w for w in written["warnings"])
    # the same numbers as the Python API on the adapter's frame
    frame, _ = mrmc_from_units(units, ["PET/CT dotatate", "PET/MR dotatate"], "patient")
    api = or_analysis(frame)
    assert written["rrrc"]["f"] == pytest.approx(api["rrrc"]["f"], rel=1e-12)


def test_netpet_mrmc_names_an_unknown_test(tmp_path, capsys):
    from netpet.cli.main import main

    table, reference = reader_study_files(tmp_path)
    code = main(["mrmc", "--table", table, "--reference", reference, "--tests", "PET/CT fdg", "--out",
                 str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 3 and "no test 'PET/CT fdg'" in err and "PET/CT dotatate, PET/MR dotatate" in err
    assert len(err.strip().splitlines()) == 1
