"""Body-size normalisations for SUV: lean body mass, body surface area, ideal body weight.

Formulas as in ``shared/reference/suv-computation-manual.txt`` (section "Units = GML"), which
follows Sugawara et al., Radiology 1999;213:521-525 and the DICOM SUVType (0054,1006) terms:

* ``LBM`` (Morgan / James 120): male 1.10 W - 120 (W/H)^2, female 1.07 W - 148 (W/H)^2
* ``LBMJAMES128`` (James 1976 with DICOM's 128 factor): male 1.10 W - 128 (W/H)^2,
  female 1.07 W - 148 (W/H)^2
* ``LBMJANMA`` (Janmahasatian et al., Clin Pharmacokinet 2005;44:1051-1065):
  male 9270 W / (6680 + 216 BMI), female 9270 W / (8780 + 244 BMI), BMI = W / (H/100)^2
* ``IBW`` (Devine): male 48.0 + 1.06 (H - 152), female 45.5 + 0.91 (H - 152)
* ``BSA`` (Du Bois & Du Bois, Arch Intern Med 1916;17:863-871): 0.007184 H^0.725 W^0.425

W is the weight in kg and H the height in cm. For PatientSex "O" the manual suggests the mean
of the male and female values; NETPET does that and says so in the provenance.

The SUV normalisation factor ``N`` multiplies activity concentration (Bq/mL) and divides the
dose (Bq): grams for BW, LBM and IBW (kg x 1000), square centimetres for BSA (m^2 x 10^4).
"""

from __future__ import annotations

from typing import Callable, Dict

SEXES = ("M", "F", "O")


def _lbm_james(weight_kg: float, height_cm: float, sex: str, male_factor: float) -> float:
    ratio_sq = (weight_kg / height_cm) ** 2
    male = 1.10 * weight_kg - male_factor * ratio_sq
    female = 1.07 * weight_kg - 148.0 * ratio_sq
    return _by_sex(male, female, sex)


def lbm_morgan_kg(weight_kg: float, height_cm: float, sex: str) -> float:
    """Lean body mass by Morgan (DICOM SUVType ``LBM``), kg."""
    return _lbm_james(weight_kg, height_cm, sex, 120.0)


def lbm_james128_kg(weight_kg: float, height_cm: float, sex: str) -> float:
    """Lean body mass by James with the 128 male factor (SUVType ``LBMJAMES128``), kg."""
    return _lbm_james(weight_kg, height_cm, sex, 128.0)


def lbm_janmahasatian_kg(weight_kg: float, height_cm: float, sex: str) -> float:
    """Lean body mass by Janmahasatian (SUVType ``LBMJANMA``), kg."""
    bmi = weight_kg / (height_cm / 100.0) ** 2
    male = 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)
    female = 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)
    return _by_sex(male, female, sex)


def ibw_kg(weight_kg: float, height_cm: float, sex: str) -> float:
    """Ideal body weight (SUVType ``IBW``), kg; the weight is not used."""
    male = 48.0 + 1.06 * (height_cm - 152.0)
    female = 45.5 + 0.91 * (height_cm - 152.0)
    return _by_sex(male, female, sex)


def bsa_dubois_m2(weight_kg: float, height_cm: float) -> float:
    """Body surface area by Du Bois, m^2."""
    return 0.007184 * height_cm ** 0.725 * weight_kg ** 0.425


def _by_sex(male: float, female: float, sex: str) -> float:
    if sex == "M":
        return male
    if sex == "F":
        return female
    if sex == "O":
        return 0.5 * (male + female)
    raise ValueError(f"sex must be one of {SEXES}, got {sex!r}")


#: NETPET SUV type -> (DICOM SUVType term, needs height and sex, human name)
SUV_TYPE_INFO: Dict[str, tuple] = {
    "bw": ("BW", False, "body weight"),
    "lbm": ("LBMJAMES128", True, "lean body mass (James, 128)"),
    "lbmjanma": ("LBMJANMA", True, "lean body mass (Janmahasatian)"),
    "bsa": ("BSA", True, "body surface area (Du Bois)"),
    "ibw": ("IBW", True, "ideal body weight"),
}

#: DICOM SUVType term -> NETPET normalisation key
DICOM_SUV_TYPES: Dict[str, str] = {
    "BW": "bw",
    "LBM": "lbm_morgan",
    "LBMJAMES128": "lbm",
    "LBMJANMA": "lbmjanma",
    "BSA": "bsa",
    "IBW": "ibw",
}

#: Normalisation keys that need height (and, except BSA, sex).
NEEDS_HEIGHT = {"lbm_morgan", "lbm", "lbmjanma", "bsa", "ibw"}
NEEDS_SEX = {"lbm_morgan", "lbm", "lbmjanma", "ibw"}


def normalisation(key: str, weight_kg: float, height_cm: float = 0.0, sex: str = "") -> float:
    """The SUV normaliser N for a normalisation key: grams (BW, LBM*, IBW) or cm^2 (BSA).

    Parameters
    ----------
    key : str
        ``bw``, ``lbm_morgan``, ``lbm`` (James 128), ``lbmjanma``, ``bsa`` or ``ibw``.
    weight_kg : float
        Body weight, kg.
    height_cm : float
        Height, cm (not used for ``bw``).
    sex : str
        ``M``, ``F`` or ``O`` (not used for ``bw`` and ``bsa``).

    Returns
    -------
    float
        N such that SUV = activity concentration (Bq/mL) x N / dose (Bq).
    """
    mass: Callable[[float, float, str], float]
    if key == "bw":
        return weight_kg * 1000.0
    if key == "bsa":
        return bsa_dubois_m2(weight_kg, height_cm) * 1.0e4
    mass = {
        "lbm_morgan": lbm_morgan_kg,
        "lbm": lbm_james128_kg,
        "lbmjanma": lbm_janmahasatian_kg,
        "ibw": ibw_kg,
    }[key]
    return mass(weight_kg, height_cm, sex) * 1000.0
