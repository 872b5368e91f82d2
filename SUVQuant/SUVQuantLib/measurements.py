"""What SUVQuant measures, with units and DICOM codes (quantity, units, derivation).

Used by the results table (columns with their units, the status, flags and warnings of each
lesion), the panel's status line and the review messages (``summary``, ``row_messages``: plain
text, no Slicer), and by the SegmentStatistics plugin (measurement info). Codes: DICOM PS3.16 (DCM 126401 SUVbw and its siblings, DCM 126031
Peak Value Within ROI, DCM 126033 Total Lesion Glycolysis), SNOMED CT for the statistics
(Maximum 56851009, Mean 373098007, Minimum 255605001, Standard Deviation 386136009, Volume
118565006); the ratios have no standard code and use the local scheme 99NETPET.
"""

#: SUV type -> (code value, scheme, meaning) of the quantity, and its UCUM unit
SUV_QUANTITY = {
    "bw": (("126401", "DCM", "SUVbw"), ("{SUVbw}g/ml", "UCUM", "Standardized Uptake Value body weight")),
    "lbm": (("126406", "DCM", "SUVlbm(James128)"), ("{SUVlbm}g/ml", "UCUM", "Standardized Uptake Value lean body mass")),
    "lbmjanma": (("126405", "DCM", "SUVlbm(Janma)"), ("{SUVlbm}g/ml", "UCUM",
                                                      "Standardized Uptake Value lean body mass")),
    "bsa": (("126403", "DCM", "SUVbsa"), ("{SUVbsa}cm2/ml", "UCUM", "Standardized Uptake Value body surface area")),
    "ibw": (("126404", "DCM", "SUVibw"), ("{SUVibw}g/ml", "UCUM", "Standardized Uptake Value ideal body weight")),
}

#: key -> (title, unit label, derivation code or None, quantity override or None, units override or None)
MEASUREMENTS = {
    "suv_max": ("SUVmax", "SUV", ("56851009", "SCT", "Maximum"), None, None),
    "suv_peak": ("SUVpeak", "SUV", ("126031", "DCM", "Peak Value Within ROI"), None, None),
    "suv_mean": ("SUVmean", "SUV", ("373098007", "SCT", "Mean"), None, None),
    "suv_min": ("SUVmin", "SUV", ("255605001", "SCT", "Minimum"), None, None),
    "suv_sd": ("SUV SD", "SUV", ("386136009", "SCT", "Standard Deviation"), None, None),
    "mtv_ml": ("MTV", "mL", None, ("118565006", "SCT", "Volume"), ("ml", "UCUM", "milliliter")),
    "tla": ("TLA", "SUV x mL", None, ("126033", "DCM", "Total Lesion Glycolysis"), ("g", "UCUM", "gram")),
    "tb_ratio": ("T/B", "ratio", None, ("tb_ratio", "99NETPET", "Tumour to background SUVmax ratio"),
                 ("1", "UCUM", "no units")),
    "tl_ratio": ("T/L", "ratio", None, ("tl_ratio", "99NETPET", "Tumour SUVmax to liver SUVmean ratio"),
                 ("1", "UCUM", "no units")),
}

#: what the SegmentStatistics plugin reports besides the numbers: key -> (title, description)
#: (no DICOM code exists for them; their measurement info carries name and description only)
CATEGORICAL = {
    "call": ("Call", "Liver-threshold call: positive (above the liver), equivocal (equal to the liver within its "
                     "noise, Krenning 2) or negative"),
    "segmentation_status": ("Segmentation", "segmented, or not separable (no volume: the 1 mL sphere at the click, "
                                            "where the local uptake was measured)"),
}

#: the three calls, in reading order (colours: netpet.quant.export.COLORS, the one place they are defined)
CALLS = ("positive", "equivocal", "negative")
NOT_SEPARABLE = "not separable"

#: columns of the results table, in order, with their units. Status, flags and warnings come right
#: after the call so that a reader sees at once what to distrust; the free-text warnings come last.
TABLE_COLUMNS = (
    ("lesion_id", ""), ("region", ""), ("lesion_type", ""), ("call", ""), ("krenning", "0-4"),
    ("segmentation_status", ""), ("flags", ""),
    ("suv_max", "SUV"), ("suv_peak", "SUV"), ("suv_mean", "SUV"), ("suv_min", "SUV"), ("suv_sd", "SUV"),
    ("mtv_ml", "mL"), ("tla", "SUV x mL"), ("tb_ratio", "ratio"), ("tl_ratio", "ratio"), ("tl_peak_ratio", "ratio"),
    ("liver_suv_mean", "SUV"), ("liver_suv_sd", "SUV"), ("liver_peak_sd", "SUV"), ("background_suv_mean", "SUV"),
    ("background_source", ""), ("voxels", "voxels"), ("longest_diameter_mm", "mm"), ("peak_shift_mm", "mm"),
    ("contrast_to_noise", "noise SD"), ("centroid_r", "mm"), ("centroid_a", "mm"), ("centroid_s", "mm"),
    ("threshold_suv", "SUV"), ("method", ""), ("warnings", ""),
)
NUMERIC = {name for name, unit in TABLE_COLUMNS if unit not in ("", "0-4")}
#: row keys with this prefix (the details of the call: its uptake, band or noise limits, as the core
#: reports them) are shown too, after the fixed columns, numeric when their values are numbers
CALL_DETAIL_PREFIX = "call_"


def table_columns(rows):
    """(columns, numeric columns) of the results table for these rows: :data:`TABLE_COLUMNS` and the
    call details the rows carry (whatever the core reports about the call is shown)."""
    columns = [name for name, _unit in TABLE_COLUMNS]
    numeric = set(NUMERIC)
    for row in rows:
        for key, value in row.items():
            if key.startswith(CALL_DETAIL_PREFIX) and key not in columns:
                columns.insert(columns.index("warnings"), key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    numeric.add(key)
    return columns, numeric


def _ids(rows, test):
    return [str(r.get("lesion_id", "")) for r in rows if test(r)]


def summary(rows, errors=None):
    """One paragraph for the panel's status line: how many lesions, their calls, how many are not
    separable or equivocal (by id), how many carry warnings, and the lesions that failed."""
    errors = errors or {}
    parts = []
    if rows:
        counts = [f"{sum(1 for r in rows if r.get('call') == c)} {c}" for c in CALLS]
        parts.append(f"{len(rows)} lesion(s) measured: " + ", ".join(counts) + ".")
        loose = _ids(rows, lambda r: r.get("segmentation_status") == NOT_SEPARABLE)
        if loose:
            parts.append(f"{len(loose)} not separable ({', '.join(loose)}): no volume, the 1 mL sphere at the click "
                         "is shown and its local uptake reported.")
        equivocal = _ids(rows, lambda r: r.get("call") == "equivocal")
        if equivocal:
            parts.append(f"{len(equivocal)} equivocal ({', '.join(equivocal)}): equal to the liver within its noise.")
        warned = _ids(rows, lambda r: r.get("warnings"))
        if warned:
            parts.append(f"{len(warned)} with warnings ({', '.join(warned)}): see the flags and warnings columns.")
    if errors:
        parts.append(f"{len(errors)} not segmented: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
    return " ".join(parts) if parts else "No lesion measured."


def row_messages(row):
    """The sentences a reader should see when a study-table row is reopened: its status, call and
    every warning (the row's own and its SUV conversion's)."""
    lesion = row.get("lesion_id") or "session"
    messages = []
    if row.get("segmentation_status") == NOT_SEPARABLE:
        messages.append(f"{lesion}: not separable: no volume, the 1 mL sphere at the click holds its local uptake.")
    if row.get("call") == "equivocal":
        messages.append(f"{lesion}: equivocal: equal to the liver within its noise (Krenning 2).")
    for text in str(row.get("warnings") or "").split(" | "):
        if text.strip():
            messages.append(f"{lesion}: {text.strip()}")
    if row.get("flags") and not row.get("warnings"):
        messages.append(f"{lesion}: flags {row['flags']}")
    for text in str(row.get("suv_warnings") or "").split(" | "):
        if text.strip():
            messages.append(f"SUV: {text.strip()}")
    return messages


def coded(entry):
    """'CodeValue:..|CodingSchemeDesignator:..|CodeMeaning:..' as Slicer's measurement info writes codes."""
    if entry is None:
        return None
    value, scheme, meaning = entry
    return f"CodeValue:{value}|CodingSchemeDesignator:{scheme}|CodeMeaning:{meaning}"


def measurement_info(key, suv_type="bw"):
    """Name, units and DICOM codes of one measurement for the given SUV type (for the categorical
    keys of :data:`CATEGORICAL`: name and description, no units and no codes)."""
    if key in CATEGORICAL:
        title, description = CATEGORICAL[key]
        return {"name": title, "title": title, "description": description, "units": "",
                "DICOM.QuantityCode": None, "DICOM.UnitsCode": None, "DICOM.DerivationCode": None}
    title, unit, derivation, quantity, units = MEASUREMENTS[key]
    suv_quantity, suv_units = SUV_QUANTITY.get(suv_type, SUV_QUANTITY["bw"])
    return {
        "name": title, "title": title, "description": title, "units": unit,
        "DICOM.QuantityCode": coded(quantity or suv_quantity),
        "DICOM.UnitsCode": coded(units or suv_units),
        "DICOM.DerivationCode": coded(derivation),
    }
