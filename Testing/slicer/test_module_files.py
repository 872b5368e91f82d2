"""The module files compile and import without the Slicer application; their Module classes carry
Slicer's metadata (title, category, help with the citation, dependencies); the Logic is usable
without the Widget (the Widgets need Qt and the application and are not exercised here)."""

import importlib
import os
import py_compile
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = {"NETPETReader": [], "SUVQuant": ["NETPETReader"], "StudyStats": ["NETPETReader"]}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_imports_and_metadata(mrml, name):
    for base, _dirs, files in os.walk(os.path.join(ROOT, name)):
        for file in files:
            if file.endswith(".py"):
                py_compile.compile(os.path.join(base, file), doraise=True)
    module = importlib.import_module(name)
    parent = types.SimpleNamespace()
    getattr(module, name)(parent)
    assert parent.title and parent.categories == ["Nuclear Medicine"]
    assert parent.dependencies == MODULES[name]
    assert "cite" in parent.acknowledgementText.lower() and len(parent.helpText) > 100
    for part in ("Widget", "Logic", "Test", "ParameterNode"):
        assert hasattr(module, name + part), part
    logic = getattr(module, name + "Logic")()
    assert logic.getParameterNode() is not None  # a parameter node in the scene, no Widget needed


# -- what a real Slicer 5.8 / 5.10 does with the module files (issue 12): checked where it can be, statically
# (the Widgets need Qt and the application; Testing/slicer/test_slicer_gui_side.py runs their plumbing on
# stand-ins that reproduce Slicer's source, each named there) ------------------------------------------------

import ast  # noqa: E402
import re  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402

#: widgets whose range Slicer's GUI connectors set from the parameter's annotation, -inf..inf or
#: -2^31..2^31-1 without WithinRange, overwriting the .ui limits (Base/Python/slicer/parameterNodeWrapper/
#: guiConnectors.py: QSliderOrSpinBoxToIntConnector, QDoubleSpinBoxCtkSliderWidgetToFloatConnector; 5.8, 5.10)
RANGED = {"QSpinBox": int, "QSlider": int, "QDoubleSpinBox": float, "ctkSliderWidget": float}
#: the module constants that state each ranged field's limits in Python (Logic checks, messages)
RANGE_CONSTANTS = {("NETPETReader", "suvWindowMax"): "SUV_WINDOW_MAX_RANGE",
                   ("NETPETReader", "fusionOpacity"): "OPACITY_RANGE",
                   ("SUVQuant", "backgroundDiameterMm"): "BACKGROUND_DIAMETER_RANGE_MM",
                   ("StudyStats", "bootstrap"): "BOOTSTRAP_RANGE",
                   ("StudyStats", "readingSeed"): "READING_SEED_RANGE"}


def _ui(module):
    """{widget name: (class, SlicerParameterName or None, {property: element})} of the module's .ui."""
    tree = ET.parse(os.path.join(ROOT, module, "Resources", "UI", f"{module}.ui"))
    out = {}
    for element in tree.iter("widget"):
        props = {p.get("name"): p for p in element.findall("property")}
        parameter = props["SlicerParameterName"].find("string").text if "SlicerParameterName" in props else None
        out[element.get("name")] = (element.get("class"), parameter, props)
    return out


def _fields(module):
    """{field: (annotation AST, default AST or None)} of the module's @parameterNodeWrapper class."""
    tree = ast.parse(open(os.path.join(ROOT, module, f"{module}.py"), encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(ast.unparse(d) == "parameterNodeWrapper" for d in node.decorator_list):
            return {item.target.id: (item.annotation, item.value) for item in node.body if isinstance(item, ast.AnnAssign)}
    raise AssertionError(f"{module}.py has no @parameterNodeWrapper class")


def _withinRange(annotation):
    """(base type name, (minimum, maximum)) of ``Annotated[base, WithinRange(a, b)]``; range None without one."""
    if not (isinstance(annotation, ast.Subscript) and ast.unparse(annotation.value) == "Annotated"):
        return ast.unparse(annotation), None
    base, *extras = annotation.slice.elts
    for extra in extras:
        if isinstance(extra, ast.Call) and ast.unparse(extra.func) == "WithinRange":
            return ast.unparse(base), tuple(ast.literal_eval(a) for a in extra.args)
    return ast.unparse(base), None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_ranged_field_declares_the_ui_limits(mrml, name):
    """Every spin box or slider bound to a parameter has WithinRange on that parameter, with the .ui's limits
    (else Slicer's connector replaces them), a default inside them, and the module constant that states them."""
    module = importlib.import_module(name)
    fields = _fields(name)
    ranged = [(widget, cls, parameter, props) for widget, (cls, parameter, props) in _ui(name).items()
              if parameter and cls in RANGED]
    for widget, cls, parameter, props in ranged:
        base, declared = _withinRange(fields[parameter][0])
        assert declared is not None, f"{name}.{parameter} ({widget}, {cls}) has no WithinRange"
        assert base == RANGED[cls].__name__, (parameter, base, cls)
        limits = tuple(RANGED[cls](props[k].find("double" if cls in ("QDoubleSpinBox", "ctkSliderWidget") else "number").text)
                       for k in ("minimum", "maximum"))
        assert declared == limits, f"{name}: {widget} shows {limits}, {parameter} declares WithinRange{declared}"
        default = ast.literal_eval(fields[parameter][1])
        assert declared[0] <= default <= declared[1], (parameter, default, declared)
        assert tuple(getattr(module, RANGE_CONSTANTS[(name, parameter)])) == declared, parameter
    assert {p for _w, _c, p, _props in ranged} == {p for (m, p) in RANGE_CONSTANTS if m == name}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_combo_boxes_show_labels_and_store_the_core_keys(mrml, name):
    """A QComboBox bound to a parameter shows labels (a LabelledChoice enum: Slicer's enum connector shows
    ``label(member)``, its str connector would show the raw keys) and stores the keys the core takes."""
    from NETPETLib.widgets import LabelledChoice

    from netpet.dicom.suv.record import SUV_TYPES
    from netpet.quant.segment import METHODS
    from netpet.stats.data import CALL_SOURCES
    from netpet.stats.intervals import CI_METHODS
    from netpet.stats.mrmc import CASE_LEVELS
    from netpet.reading.findings import FORM_CHOICES

    core = {"SUVType": SUV_TYPES, "Method": METHODS, "CIMethod": CI_METHODS, "EquivocalRule": ("negative", "positive"),
            "CallSource": CALL_SOURCES, "MRMCLevel": CASE_LEVELS}
    core.update(FORM_CHOICES)  # the reading form's choices (issue 14): "unset" is an empty cell
    module = importlib.import_module(name)
    fields = _fields(name)
    combos = [parameter for _w, (cls, parameter, _p) in _ui(name).items() if cls == "QComboBox" and parameter]
    assert combos
    for parameter in combos:
        annotation, default = fields[parameter]
        enum = getattr(module, ast.unparse(annotation))
        assert issubclass(enum, LabelledChoice), parameter
        assert enum.keys() == tuple(core[enum.__name__]), parameter
        labels = [member.label() for member in enum]
        assert all(labels) and len(set(labels)) == len(labels)
        assert not set(labels) & set(enum.keys()), f"{parameter} shows keys, not labels"
        assert ast.unparse(default).startswith(f"{enum.__name__}[")  # a member of the field's own enum
        assert "Choice(" not in ast.unparse(annotation)


#: core functions that start worker processes by default (jobs None = all cores) and the Slicer-side files
#: that call the core
PARALLEL_DEFAULTS = {"index_tree", "convert_to_suv", "read_series", "run_manifest"}
SLICER_SIDE = [os.path.join(ROOT, m, f"{m}.py") for m in MODULES] + [
    os.path.join(ROOT, "NETPETReader", "NETPETLib", f) for f in sorted(os.listdir(os.path.join(ROOT, "NETPETReader", "NETPETLib")))
    if f.endswith(".py")]


@pytest.mark.parametrize("path", SLICER_SIDE, ids=lambda p: os.path.relpath(p, ROOT))
def test_no_worker_processes_on_slicer_paths(path):
    """Inside the Slicer GUI every core call runs in the application's process: a call to a core function that
    parallelises by default passes jobs, and every jobs given is 1 (the module constant JOBS = 1)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func).split(".")[-1]
        jobs = [k.value for k in node.keywords if k.arg == "jobs"]
        if name in PARALLEL_DEFAULTS:
            assert jobs, f"{os.path.relpath(path, ROOT)}:{node.lineno} {name}() without jobs starts worker processes"
        for value in jobs:
            assert ast.unparse(value) in ("JOBS", "1"), f"{os.path.relpath(path, ROOT)}:{node.lineno} jobs={ast.unparse(value)}"
        assert "ProcessPoolExecutor" not in ast.unparse(node.func) and "multiprocessing" not in ast.unparse(node.func)
    if path.endswith("NETPETReader.py"):
        assert importlib.import_module("NETPETReader").JOBS == 1


def test_requirements_and_their_constraints():
    """The first-use requirements: the packages Slicer ships are not listed (they are pinned, not installed);
    highdicom's range is narrowed to the bundled pydicom and numpy by the installer."""
    from NETPETLib import dependencies

    listed = dependencies.requirements()
    names = {dependencies.canonicalName(dependencies._name(r)) for r in listed}
    assert not names & {dependencies.canonicalName(n) for n in dependencies.BUNDLED}
    assert all(re.search(r"(>=|==|~=)", r) for r in listed), "every requirement states the version it needs"
    assert "highdicom" in names
    slicer58 = {"pydicom": "2.4.4", "numpy": "1.26.4", "simpleitk": "2.4.0", "pillow": "10.1.0"}
    install, refused = dependencies.plan(listed, slicer58)
    assert "highdicom>=0.22,<0.23" in install and not refused
    assert dependencies.plan(listed, {**slicer58, "pydicom": "3.0.1", "numpy": "2.2.0"})[0] == listed
    install, refused = dependencies.plan(listed, {**slicer58, "numpy": "2.1.0"})
    assert not any(r.startswith("highdicom") for r in install) and "pydicom 2.4.4" in refused["highdicom>=0.22"]
    constraints = dependencies.constraintsText(slicer58, exclude=["pandas"])
    assert "pydicom==2.4.4\n" in constraints and "numpy==1.26.4\n" in constraints


@pytest.mark.parametrize("name", sorted(MODULES))
def test_help_links_to_the_documentation(mrml, name):
    """Each module's help ends with a link to its section of the project's README, at the extension's
    homepage (CMakeLists EXTENSION_HOMEPAGE)."""
    from NETPETLib import HOMEPAGE

    cmake = open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8").read()
    assert re.search(r'set\(EXTENSION_HOMEPAGE\s+"([^"]+)"\)', cmake).group(1) == HOMEPAGE
    parent = types.SimpleNamespace()
    getattr(importlib.import_module(name), name)(parent)
    link = re.search(r'<a href="([^"#]+)#([^"]+)">', parent.helpText)
    assert link and link.group(1) == HOMEPAGE, parent.helpText[-200:]
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", readme, re.M)}
    assert link.group(2) in anchors, f"{name}: no README heading for #{link.group(2)}"


def test_no_user_input_excluded_while_a_job_runs():
    """The Cancel button can be clicked: nothing on the Slicer side processes events without user input."""
    for path in SLICER_SIDE:
        tree = ast.parse(open(path, encoding="utf-8").read())
        used = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "ExcludeUserInputEvents"]
        assert not used, f"{os.path.relpath(path, ROOT)}:{used[0].lineno if used else ''}"
