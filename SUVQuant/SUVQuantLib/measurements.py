"""What SUVQuant measures, with units and DICOM codes (quantity, units, derivation).

Used by the results table (units in the column properties) and by the SegmentStatistics
plugin (measurement info). Codes: DICOM PS3.16 (DCM 126401 SUVbw and its siblings, DCM 126031
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

#: columns of the results table, in order, with their units
TABLE_COLUMNS = (
    ("lesion_id", ""), ("region", ""), ("call", ""), ("krenning", "0-4"), ("suv_max", "SUV"), ("suv_peak", "SUV"),
    ("suv_mean", "SUV"), ("suv_min", "SUV"), ("suv_sd", "SUV"), ("mtv_ml", "mL"), ("tla", "SUV x mL"),
    ("tb_ratio", "ratio"), ("tl_ratio", "ratio"), ("liver_suv_mean", "SUV"), ("liver_suv_sd", "SUV"),
    ("background_suv_mean", "SUV"), ("voxels", "voxels"), ("longest_diameter_mm", "mm"), ("centroid_r", "mm"),
    ("centroid_a", "mm"), ("centroid_s", "mm"), ("threshold_suv", "SUV"), ("method", ""),
)
NUMERIC = {name for name, unit in TABLE_COLUMNS if unit not in ("", "0-4")}


def coded(entry):
    """'CodeValue:..|CodingSchemeDesignator:..|CodeMeaning:..' as Slicer's measurement info writes codes."""
    if entry is None:
        return None
    value, scheme, meaning = entry
    return f"CodeValue:{value}|CodingSchemeDesignator:{scheme}|CodeMeaning:{meaning}"


def measurement_info(key, suv_type="bw"):
    """Name, units and DICOM codes of one measurement for the given SUV type."""
    title, unit, derivation, quantity, units = MEASUREMENTS[key]
    suv_quantity, suv_units = SUV_QUANTITY.get(suv_type, SUV_QUANTITY["bw"])
    return {
        "name": title, "title": title, "units": unit,
        "DICOM.QuantityCode": coded(quantity or suv_quantity),
        "DICOM.UnitsCode": coded(units or suv_units),
        "DICOM.DerivationCode": coded(derivation),
    }
