"""The synthetic adult body: geometry of organs and skeleton, and their imaging properties.

Geometry is a simplified whole-body anatomy in the body frame of :mod:`netpet.phantom.shapes`
(vertex at z = 0, feet at z = -height), laid out for a 1.70 m adult and scaled to each
patient: lengths by height, widths by sqrt(BMI / 22). The arms are left out, as if raised above
the head out of the reconstructed field of view (the usual position for PET/CT of the trunk). Positions and sizes of organs follow
standard adult anatomy (ICRP Publication 89 reference organ masses and the ICRP 110
reference computational phantoms give the sizes matched here, e.g. liver ~1.5-1.8 L,
spleen ~150-200 mL, kidney ~150 mL each).

Imaging properties per tissue (PET uptake per tracer as SUVbw, CT Hounsfield units, MR
T1-weighted signal) are in :data:`TISSUES` with their sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from netpet.phantom.shapes import (
    Ellipsoid, Grid, ProfileCylinder, Shape, Structure, Tube, Union, paint,
)

REFERENCE_HEIGHT_MM = 1700.0
#: Reference-body points (mm) deep in the right liver lobe and in the spleen where a 3 cm
#: reference sphere (PERCIST) fits the organ; the phantom keeps lesions away from them.
LIVER_REFERENCE_CENTER = (-85.0, 10.0, -600.0)
SPLEEN_REFERENCE_CENTER = (100.0, 50.0, -600.0)


@dataclass(frozen=True)
class Tissue:
    """Imaging properties of one label.

    suv_dotatate, suv_fdg : SUVbw of the tissue (mean, noise-free)
    hu : CT number, HU
    t1_ms : T1 relaxation time at 3 T, ms
    pd : proton density relative to water
    """

    label: int
    name: str
    suv_dotatate: float
    suv_fdg: float
    hu: float
    t1_ms: float
    pd: float


# PET uptake (SUVbw of the tissue; organ SUVmax values in the literature are converted to the
# tissue mean by x 0.75, the ratio of mean to maximum in a noisy homogeneous organ).
#   68Ga-DOTATATE: Kuyumcu S et al., Ann Nucl Med 2013 (mean SUVmax spleen 24.7, kidneys 14.3,
#   adrenals 13.7, liver 9.1, pituitary 9.7); Prasad V, Baum RP, Q J Nucl Med Mol Imaging
#   2010;54:61-67 (68Ga-DOTANOC: thyroid 3.4, lung 0.9, GI tract 2.3, muscle 1.0, femur 0.8,
#   blood pool 2.6); Jacobsson H et al., Clin Nucl Med 2012 (uncinate process SUVmean 6.0-7.8);
#   Mapelli P et al., Nucl Med Commun 2014;35:613 (pancreatic body/tail SUVmax 3.8-6.6);
#   Ozguven S et al., Mol Imaging Radionucl Ther 2021;30:39 (order: stomach > small intestine).
#   18F-FDG: Boktor RR et al., J Nucl Med 2013;54:677 (blood pool SUVmean 1.55, liver 2.2);
#   Wang Y et al., Mol Imaging Biol 2007;9:83 (cerebellum 8.0); brain here averages grey and
#   white matter; myocardium is set per patient (fasting-dependent, see netpet.phantom.study).
# CT numbers (unenhanced): Lamba R et al. / standard tables (fat -100, liver 45-65, spleen 35-55,
#   kidney 20-40, lung -850 to -910); Park YS et al., Radiology 2011;258:760 (liver exceeds spleen
#   by 1-18 HU); Jang S et al., Radiology 2019;291:360 (trabecular L1 226 HU below 30 years,
#   falling 2.5 HU a year: set per patient age in netpet.phantom.study).
# MR: T1 at 3 T from de Bazelaire CM et al., Radiology 2004;230:652 (fat 382, marrow 586, pancreas
#   725, liver 809, muscle 898, kidney cortex 1142, spleen 1328 ms); blood 1850 ms in vivo; CSF and
#   urine about 4300 ms. The T1-weighted (spoiled gradient-echo, Dixon in-phase) signal is computed
#   from T1 and proton density in netpet.phantom.render.
TISSUES: Tuple[Tissue, ...] = (
    Tissue(0, "air", 0.0, 0.0, -1000.0, 1000.0, 0.0),
    Tissue(1, "fat", 0.2, 0.3, -100.0, 382.0, 0.9),
    Tissue(2, "soft tissue", 0.7, 0.8, 45.0, 898.0, 0.75),
    Tissue(3, "lung", 0.6, 0.5, -870.0, 1200.0, 0.12),
    Tissue(4, "brain", 0.15, 6.5, 33.0, 1100.0, 0.75),
    Tissue(5, "pituitary", 7.3, 2.5, 40.0, 900.0, 0.8),
    Tissue(6, "cortical bone", 0.3, 0.5, 1000.0, 1000.0, 0.05),
    Tissue(7, "red marrow", 1.0, 1.5, 226.0, 586.0, 0.8),
    Tissue(8, "spinal canal", 0.1, 0.3, 8.0, 4300.0, 1.0),
    Tissue(9, "myocardium", 1.2, 3.5, 45.0, 1400.0, 0.8),
    Tissue(10, "blood", 1.5, 1.6, 42.0, 1850.0, 0.85),
    Tissue(11, "liver", 6.8, 2.2, 56.0, 809.0, 0.7),
    Tissue(12, "spleen", 18.5, 1.9, 47.0, 1328.0, 0.8),
    Tissue(13, "kidney", 10.7, 2.5, 30.0, 1142.0, 0.8),
    Tissue(14, "renal pelvis urine", 18.0, 15.0, 8.0, 4300.0, 1.0),
    Tissue(15, "adrenal", 10.3, 1.6, 25.0, 1000.0, 0.75),
    Tissue(16, "pancreas", 3.5, 1.5, 42.0, 725.0, 0.75),
    Tissue(17, "uncinate process", 6.5, 1.5, 42.0, 725.0, 0.75),
    Tissue(18, "stomach", 3.0, 2.0, 20.0, 1000.0, 0.8),
    Tissue(19, "small bowel", 2.2, 1.8, 30.0, 1000.0, 0.8),
    Tissue(20, "colon", 1.5, 1.8, 15.0, 1000.0, 0.7),
    Tissue(21, "bladder urine", 25.0, 20.0, 8.0, 4300.0, 1.0),
    Tissue(22, "thyroid", 2.6, 1.5, 100.0, 900.0, 0.8),
    Tissue(23, "salivary gland", 2.0, 2.0, 30.0, 900.0, 0.8),
    Tissue(24, "yellow marrow", 0.6, 0.6, -50.0, 400.0, 0.9),
)

LABEL: Dict[str, int] = {t.name: t.label for t in TISSUES}
BONE_LABELS = (LABEL["cortical bone"], LABEL["red marrow"], LABEL["yellow marrow"])


def tissue_table(attribute: str) -> np.ndarray:
    """Lookup array label -> property (``suv_dotatate``, ``suv_fdg``, ``hu``, ``t1_ms``, ``pd``)."""
    table = np.zeros(256, dtype=np.float32)
    for tissue in TISSUES:
        table[tissue.label] = getattr(tissue, attribute)
    return table


@dataclass(frozen=True)
class Body:
    """Size of one synthetic patient.

    height_mm : body height
    bmi : body-mass index, kg/m^2 (widths scale with sqrt(bmi / 22))
    whole_body : True to model down to the feet (TIO work-up), else vertex to mid-thigh
    """

    height_mm: float
    bmi: float
    whole_body: bool

    @property
    def zf(self) -> float:
        return self.height_mm / REFERENCE_HEIGHT_MM

    @property
    def w(self) -> float:
        return float(np.sqrt(self.bmi / 22.0))

    @property
    def organ_w(self) -> float:
        """Organs widen far less than the body outline with BMI."""
        return 1.0 + 0.3 * (self.w - 1.0)

    @property
    def fat_mm(self) -> float:
        """Subcutaneous fat thickness of the trunk, mm (about 10 mm at BMI 20, 35 mm at 35)."""
        return float(np.clip(10.0 + 1.7 * (self.bmi - 20.0), 6.0, 45.0))

    @property
    def bottom_z(self) -> float:
        """Lowest modelled z: soles of the feet, or mid-thigh."""
        return -self.height_mm if self.whole_body else -0.62 * self.height_mm

    def p(self, x: float, y: float, z: float, organ: bool = True) -> Tuple[float, float, float]:
        """Scale a reference-body position (mm) to this patient."""
        w = self.organ_w if organ else self.w
        return (x * w, y * w, z * self.zf)

    def r(self, rx: float, ry: float, rz: float, organ: bool = True) -> Tuple[float, float, float]:
        w = self.organ_w if organ else self.w
        return (rx * w, ry * w, rz * self.zf)

    def model_grid(self, spacing: float = 2.0, margin: float = 40.0) -> Grid:
        """The body-frame grid that holds the whole modelled body (plus a margin)."""
        half_x = 215.0 * self.w + margin
        low_y, high_y = -175.0 * self.w - margin, 150.0 * self.w + margin
        top, bottom = margin, self.bottom_z - margin
        size = (int(np.ceil(2 * half_x / spacing)) + 1, int(np.ceil((high_y - low_y) / spacing)) + 1,
                int(np.ceil((top - bottom) / spacing)) + 1)
        return Grid(origin=(-half_x, low_y, bottom), spacing=(spacing, spacing, spacing), size=size)


def _ellipsoid(body: Body, center, radii, yaw: float = 0.0, organ: bool = True) -> Ellipsoid:
    return Ellipsoid(body.p(*center, organ=organ), body.r(*radii, organ=organ), yaw)


def _tube(body: Body, points, radius: float, organ: bool = True) -> Tube:
    return Tube([body.p(*pt, organ=organ) for pt in points], radius * (body.organ_w if organ else 1.0))


def _bone(body: Body, name: str, outer: Shape, inner: Shape, marrow: str) -> List[Structure]:
    return [Structure(f"{name} cortex", LABEL["cortical bone"], outer), Structure(f"{name} marrow", LABEL[marrow], inner)]


def structures(body: Body) -> List[Structure]:
    """The body's structures in painting order (later ones overwrite earlier ones)."""
    b = body
    zf = b.zf
    out: List[Structure] = []
    mirror = (-1.0, 1.0)  # patient right (x < 0), left (x > 0)

    # -- outline: head, neck, trunk, arms, legs; subcutaneous fat as the outer layer ---------------
    trunk_knots = [(-290, 0, 10, 70, 60), (-320, 0, 10, 165, 100), (-450, 0, 5, 160, 110),
                   (-600, 0, 5, 150, 108), (-720, 0, 5, 148, 105), (-850, 0, 5, 165, 105), (-910, 0, 5, 160, 100)]
    trunk = [(z * zf, cx, cy * b.w, ax * b.w, ay * b.w) for z, cx, cy, ax, ay in trunk_knots]
    neck = [(-195 * zf, 0, 10, 55 * b.w, 55 * b.w), (-300 * zf, 0, 10, 62 * b.w, 60 * b.w)]
    head = _ellipsoid(b, (0, 0, -115), (78, 95, 115))
    limbs: List[Shape] = []
    inner_limbs: List[Shape] = []
    for side in mirror:
        leg = [(-880 * zf, side * 88 * b.w, 5, 80 * b.w, 80 * b.w), (-1230 * zf, side * 80 * b.w, 0, 55 * b.w, 55 * b.w),
               (-1300 * zf, side * 80 * b.w, 5, 50 * b.w, 55 * b.w), (-1420 * zf, side * 80 * b.w, 10, 52 * b.w, 55 * b.w),
               (-1615 * zf, side * 80 * b.w, 5, 32 * b.w, 35 * b.w)]
        foot = Ellipsoid((side * 80 * b.w, -50.0, -1655 * zf), (45.0, 110.0, 40.0 * zf))
        limbs += [ProfileCylinder(leg), foot]
        inner_limbs += [ProfileCylinder(leg, inset=8.0)]
    outline = Union([head, ProfileCylinder(neck), ProfileCylinder(trunk)] + limbs)
    out.append(Structure("subcutaneous fat", LABEL["fat"], outline))
    out.append(Structure("head", LABEL["soft tissue"], _ellipsoid(b, (0, 0, -115), (72, 89, 109))))
    out.append(Structure("neck", LABEL["soft tissue"], ProfileCylinder(neck, inset=5.0)))
    out.append(Structure("trunk", LABEL["soft tissue"], ProfileCylinder(trunk, inset=b.fat_mm)))
    for i, limb in enumerate(inner_limbs):
        out.append(Structure(f"limb {i}", LABEL["soft tissue"], limb))
    for side in mirror:
        out.append(Structure("foot", LABEL["soft tissue"], Ellipsoid((side * 80 * b.w, -50.0, -1655 * zf), (38.0, 100.0, 33.0 * zf))))

    # -- head and neck -----------------------------------------------------------------------------
    out.append(Structure("skull", LABEL["cortical bone"], _ellipsoid(b, (0, 5, -100), (72, 88, 98))))
    out.append(Structure("brain", LABEL["brain"], _ellipsoid(b, (0, 5, -100), (65, 81, 90))))
    out.append(Structure("pituitary", LABEL["pituitary"], _ellipsoid(b, (0, -8, -128), (6, 5, 4))))
    for side in mirror:
        out.append(Structure("parotid", LABEL["salivary gland"], _ellipsoid(b, (side * 47, 12, -178), (11, 16, 20))))
        out.append(Structure("thyroid lobe", LABEL["thyroid"], _ellipsoid(b, (side * 17, -28, -272), (9, 8, 22))))

    # -- thorax ------------------------------------------------------------------------------------
    out.append(Structure("left lung", LABEL["lung"], _ellipsoid(b, (82, 15, -450), (62, 78, 120))))
    out.append(Structure("right lung", LABEL["lung"], _ellipsoid(b, (-82, 15, -455), (68, 80, 115))))
    out.append(Structure("heart", LABEL["myocardium"], _ellipsoid(b, (25, -30, -515), (58, 50, 62), yaw=30)))
    out.append(Structure("heart chambers", LABEL["blood"], _ellipsoid(b, (25, -30, -515), (45, 37, 49), yaw=30)))
    out.append(Structure("aorta", LABEL["blood"], _tube(b, [(20, 45, -430), (15, 40, -600), (5, 25, -800)], 12)))

    # -- abdomen -----------------------------------------------------------------------------------
    out.append(Structure("liver", LABEL["liver"], Union([_ellipsoid(b, (-70, 0, -615), (95, 85, 80)),
                                                        _ellipsoid(b, (15, -45, -595), (60, 40, 45))])))
    out.append(Structure("spleen", LABEL["spleen"], _ellipsoid(b, (100, 50, -600), (35, 45, 55), yaw=-30)))
    out.append(Structure("stomach", LABEL["stomach"], _ellipsoid(b, (50, -32, -615), (42, 35, 50))))
    for side in mirror:
        out.append(Structure("kidney", LABEL["kidney"], _ellipsoid(b, (side * 80, 62, -695), (32, 30, 58))))
        out.append(Structure("renal pelvis", LABEL["renal pelvis urine"], _ellipsoid(b, (side * 66, 56, -695), (12, 10, 24))))
        out.append(Structure("adrenal", LABEL["adrenal"], _ellipsoid(b, (side * 60, 52, -628), (13, 6, 18))))
    out.append(Structure("pancreas head", LABEL["pancreas"], _ellipsoid(b, (-30, -5, -672), (24, 20, 26))))
    out.append(Structure("pancreas body and tail", LABEL["pancreas"],
                         _tube(b, [(-10, -15, -662), (40, -10, -652), (85, 25, -642)], 13)))
    out.append(Structure("uncinate process", LABEL["uncinate process"], _ellipsoid(b, (-24, 8, -702), (13, 11, 13))))
    out.append(Structure("small bowel", LABEL["small bowel"], _tube(
        b, [(-80, -40, -730), (60, -52, -735), (70, -20, -765), (-70, -35, -770), (-80, -10, -805), (60, -25, -810),
            (40, -5, -840)], 14)))
    out.append(Structure("colon", LABEL["colon"], _tube(
        b, [(-105, 0, -835), (-110, 10, -705), (-90, -48, -688), (85, -48, -683), (105, 20, -676), (105, 15, -805),
            (40, 40, -855), (0, 62, -875)], 20)))
    out.append(Structure("bladder", LABEL["bladder urine"], _ellipsoid(b, (0, -32, -862), (42, 35, 32))))

    # -- skeleton ----------------------------------------------------------------------------------
    spine = [(0, 25, -235), (0, 35, -320), (0, 62, -450), (0, 55, -600), (0, 38, -720), (0, 52, -805)]
    posterior = [(x, y + 32, z) for x, y, z in spine]
    out += _bone(b, "vertebral bodies", _tube(b, spine, 19), _tube(b, spine, 16), "red marrow")
    out.append(Structure("posterior elements", LABEL["cortical bone"], _tube(b, posterior, 13)))
    out.append(Structure("spinal canal", LABEL["spinal canal"], _tube(b, posterior, 7)))
    out += _bone(b, "sternum", _tube(b, [(0, -102, -385), (0, -106, -525)], 10), _tube(b, [(0, -102, -385), (0, -106, -525)], 7),
                 "red marrow")
    for k in range(10):
        z = -365.0 - 24.0 * k
        for side in mirror:
            # from beside the spine (theta 15 deg, posterior) round the side to the front (160 deg)
            theta = np.radians(np.linspace(15, 160, 9))
            ax, ay = 138.0 - 2.0 * abs(k - 4), 92.0
            points = [(side * ax * np.sin(t), ay * np.cos(t) + 10.0, z - 10.0 * np.sin(t)) for t in theta]
            out.append(Structure("rib", LABEL["cortical bone"], _tube(b, points, 5)))
    for side in mirror:
        wing = _ellipsoid(b, (side * 95, 25, -800), (22, 55, 55), yaw=side * 20)
        out += _bone(b, "iliac wing", wing, _ellipsoid(b, (side * 95, 25, -800), (17, 50, 50), yaw=side * 20), "red marrow")
        head_c = (side * 88, 5, -882)
        out += _bone(b, "femoral head", _ellipsoid(b, head_c, (24, 24, 24)), _ellipsoid(b, head_c, (20, 20, 20)), "red marrow")
        rami = [(side * 88, -12, -882), (side * 22, -62, -880)]
        out += _bone(b, "pubic ramus", _tube(b, rami, 10), _tube(b, rami, 6), "red marrow")
        # the femur runs from the femoral head (placed with the pelvis) down the leg (placed with the outline)
        femur = [b.p(*head_c), b.p(side * 95, 10, -915, organ=False), b.p(side * 82, 5, -1235, organ=False)]
        out += _bone(b, "femur", Tube(femur, 15.0), Tube(femur, 9.0), "yellow marrow")
        if body.whole_body:
            tibia = [(side * 80, 0, -1255), (side * 82, 10, -1605)]
            out += _bone(b, "tibia", _tube(b, tibia, 14, organ=False), _tube(b, tibia, 8, organ=False), "yellow marrow")
            calcaneus = (side * 80, 30, -1668)
            out += _bone(b, "calcaneus", _ellipsoid(b, calcaneus, (16, 35, 20), organ=False),
                         _ellipsoid(b, calcaneus, (13, 31, 17), organ=False), "red marrow")
            metatarsals = (side * 80, -72, -1672)
            out += _bone(b, "metatarsals", _ellipsoid(b, metatarsals, (30, 50, 10), organ=False),
                         _ellipsoid(b, metatarsals, (27, 46, 7), organ=False), "red marrow")
    sacrum = (0, 72, -815)
    out += _bone(b, "sacrum", _ellipsoid(b, sacrum, (40, 20, 45)), _ellipsoid(b, sacrum, (35, 16, 41)), "red marrow")
    return out


def rasterise(body: Body, grid: Grid) -> np.ndarray:
    """Tissue labels (uint8, [z, y, x]) of the body on a body-frame grid."""
    labels = np.zeros((grid.size[2], grid.size[1], grid.size[0]), dtype=np.uint8)
    for structure in structures(body):
        paint(labels, grid, structure.shape, structure.label, only_inside=structure.only_inside)
    return labels

