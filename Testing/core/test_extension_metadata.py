"""The Slicer extension's files agree with each other: CMake metadata, the Extensions Index catalog
entry, icons, screenshots, licence, and each module's CMakeLists (every script and resource listed
exists and every module file is listed). Also: the .ui files and the module files agree
(every ``self.ui.<name>`` exists, every SlicerParameterName is a parameter-node field of a type
its widget can show)."""

from __future__ import annotations

import ast
import json
import os
import re
import struct
import xml.etree.ElementTree as ET

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = ("NETPETReader", "SUVQuant", "StudyStats")
#: the keys a catalog entry may have (Slicer's schema slicer-extension-catalog-entry-schema-v1.0.2:
#: additionalProperties false) and those it must have
CATALOG_ALLOWED = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
                   "dicom_support_rule", "build_subdirectory", "enabled", "tier"}
CATALOG_REQUIRED = {"$schema", "category", "scm_url"}


def cmake_sets(path):
    text = open(path, encoding="utf-8").read()
    return {m.group(1): m.group(2) for m in re.finditer(r'set\((\w+)\s+"([^"]*)"\)', text)}


def png_size(path):
    with open(path, "rb") as handle:
        header = handle.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def test_catalog_entry_agrees_with_cmake():
    meta = cmake_sets(os.path.join(ROOT, "CMakeLists.txt"))
    entry = json.load(open(os.path.join(ROOT, "packaging", "ExtensionsIndex", "NETPET.json")))
    assert set(entry) <= CATALOG_ALLOWED and CATALOG_REQUIRED <= set(entry)
    assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.2.json#")
    assert entry["category"] == meta["EXTENSION_CATEGORY"] == "Nuclear Medicine"
    depends = [] if meta["EXTENSION_DEPENDS"] == "NA" else meta["EXTENSION_DEPENDS"].split()
    assert entry["build_dependencies"] == depends
    assert entry["scm_url"].removesuffix(".git") == meta["EXTENSION_HOMEPAGE"]
    assert isinstance(entry["tier"], int) and 1 <= entry["tier"] <= 5
    # the project name, the catalog file name and the CMake project agree
    text = open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8").read()
    assert re.search(r"project\(NETPET\)", text)
    for module in MODULES:
        assert f"add_subdirectory({module})" in text
    assert meta["EXTENSION_DESCRIPTION"] and meta["EXTENSION_CONTRIBUTORS"]
    # icon and screenshots: raw URLs of files in this repository (same owner/name as scm_url)
    owner_repo = entry["scm_url"].removesuffix(".git").split("github.com/")[1]
    prefix = f"https://raw.githubusercontent.com/{owner_repo}/{entry['scm_revision']}/"
    urls = [meta["EXTENSION_ICONURL"], *meta["EXTENSION_SCREENSHOTURLS"].split()]
    assert len(urls) >= 4  # the icon and a screenshot per module
    for url in urls:
        assert url.startswith(prefix), url
        assert os.path.isfile(os.path.join(ROOT, url[len(prefix):])), url
    assert png_size(os.path.join(ROOT, meta["EXTENSION_ICONURL"][len(prefix):])) == (128, 128)


def test_licence_and_module_icons():
    text = open(os.path.join(ROOT, "LICENSE"), encoding="utf-8").read()
    assert "Apache License" in text and "Version 2.0" in text
    for module in MODULES:
        assert png_size(os.path.join(ROOT, module, "Resources", "Icons", f"{module}.png")) == (128, 128)


@pytest.mark.parametrize("module", MODULES)
def test_module_cmake_lists_every_file(module):
    folder = os.path.join(ROOT, module)
    text = open(os.path.join(folder, "CMakeLists.txt"), encoding="utf-8").read()
    assert "slicerMacroBuildScriptedModule(" in text and "WITH_GENERIC_TESTS" in text
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in text
    listed = set()
    for block in re.findall(r"set\(MODULE_PYTHON_(?:SCRIPTS|RESOURCES)\s+(.*?)\)", text, re.S):
        listed |= {item.replace("${MODULE_NAME}", module) for item in block.split()}
    for item in listed:
        assert os.path.isfile(os.path.join(folder, item)), f"{module}/CMakeLists.txt lists a missing {item}"
    on_disk = set()
    for base, _dirs, files in os.walk(folder):
        if "Testing" in os.path.relpath(base, folder).split(os.sep) or "__pycache__" in base:
            continue
        for name in files:
            if name.endswith((".py", ".ui", ".png", ".txt")) and name != "CMakeLists.txt":
                on_disk.add(os.path.relpath(os.path.join(base, name), folder))
    assert on_disk == listed, f"{module}: not listed {sorted(on_disk - listed)}"
    tests = open(os.path.join(folder, "Testing", "Python", "CMakeLists.txt"), encoding="utf-8").read()
    for script in re.findall(r"SCRIPT \$\{CMAKE_CURRENT_SOURCE_DIR\}/(\S+)\)", tests):
        assert os.path.isfile(os.path.join(folder, "Testing", "Python", script))


# -- the .ui files and the module files -----------------------------------------------------------------

#: which annotation types each widget class can show (as Slicer's parameterNodeWrapper GUI connectors)
WIDGET_TYPES = {
    "QCheckBox": {"bool"}, "QSpinBox": {"int"}, "QSlider": {"int"}, "QDoubleSpinBox": {"float"},
    "ctkSliderWidget": {"float"}, "QLineEdit": {"str"}, "QComboBox": {"choice"},
    "ctkPathLineEdit": {"pathlib.Path"}, "ctkDirectoryButton": {"pathlib.Path"}, "qMRMLNodeComboBox": {"node"},
}


#: widgets whose value range Slicer's GUI connectors set from the parameter's annotation
RANGED_WIDGETS = {"QSpinBox", "QDoubleSpinBox", "QSlider", "ctkSliderWidget"}


def ui_widgets(module):
    tree = ET.parse(os.path.join(ROOT, module, "Resources", "UI", f"{module}.ui"))
    widgets = {}
    for element in tree.iter("widget"):
        parameter = None
        props = {}
        for prop in element.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                parameter = prop.find("string").text
            props[prop.get("name")] = prop
        widgets[element.get("name")] = (element.get("class"), parameter, props)
    connections = {(c.findtext("sender"), c.findtext("signal"), c.findtext("receiver"), c.findtext("slot"))
                   for c in tree.iter("connection")}
    return widgets, connections


def parameter_fields(module):
    tree = ast.parse(open(os.path.join(ROOT, module, f"{module}.py"), encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(getattr(d, "id", None) == "parameterNodeWrapper"
                                                   for d in node.decorator_list):
            fields = {}
            for item in node.body:
                if isinstance(item, ast.AnnAssign):
                    text = ast.unparse(item.annotation)
                    base = text
                    if isinstance(item.annotation, ast.Subscript) and ast.unparse(item.annotation.value) == "Annotated":
                        base = ast.unparse(item.annotation.slice.elts[0])  # Annotated[float, WithinRange(..)] -> float
                    if "Choice(" in text:
                        kind = "choice"
                    elif base.startswith("slicer.vtkMRML"):
                        kind = "node"
                    else:
                        kind = base
                    fields[item.target.id] = (kind, text)
            return fields
    raise AssertionError(f"{module}.py has no @parameterNodeWrapper class")


@pytest.mark.parametrize("module", MODULES)
def test_ui_names_and_parameters_agree(module):
    source = open(os.path.join(ROOT, module, f"{module}.py"), encoding="utf-8").read()
    widgets, connections = ui_widgets(module)
    used = set(re.findall(r"self\.ui\.(\w+)", source))
    assert used, module
    assert used <= set(widgets), f"{module}.py uses self.ui names missing from the .ui: {sorted(used - set(widgets))}"
    fields = parameter_fields(module)
    bound = {parameter: (name, cls) for name, (cls, parameter, _props) in widgets.items() if parameter}
    assert set(bound) == set(fields), (f"{module}: parameters without a widget {sorted(set(fields) - set(bound))}, "
                                       f"widgets without a parameter {sorted(set(bound) - set(fields))}")
    for parameter, (name, cls) in bound.items():
        kind, text = fields[parameter]
        assert kind in WIDGET_TYPES.get(cls, set()), f"{module}: {name} ({cls}) cannot show {parameter}: {text}"
        if kind == "node":
            node_types = [s.text for s in widgets[name][2]["nodeTypes"].iter("string")]
            assert node_types == [text.split(".")[1]], (name, node_types, text)
        # Slicer's GUI connector of a spin box or slider sets the widget's range from the parameter's
        # WithinRange (unbounded without it): where a range is declared, the .ui shows the same limits
        declared = re.search(r"WithinRange\(([^,]+),([^)]+)\)", text)
        if declared and cls in RANGED_WIDGETS:
            props = widgets[name][2]
            limits = tuple(float(props[k][0].text) if k in props else None for k in ("minimum", "maximum"))
            assert limits == (float(declared.group(1)), float(declared.group(2))), (
                f"{module}: {name} shows {limits}, {parameter} declares {declared.group(0)}")
    # every MRML widget receives the scene from the panel
    for name, (cls, _p, _props) in widgets.items():
        if cls.startswith("qMRML") and cls != "qMRMLWidget" or cls == "qSlicerMarkupsPlaceWidget":
            assert (module, "mrmlSceneChanged(vtkMRMLScene*)", name, "setMRMLScene(vtkMRMLScene*)") in connections, name


@pytest.mark.parametrize("module", MODULES)
def test_every_slot_reports_errors(module):
    """Every Widget method connected to a widget signal runs inside slicer.util.tryWithErrorDisplay."""
    source = open(os.path.join(ROOT, module, f"{module}.py"), encoding="utf-8").read()
    tree = ast.parse(source)
    slots = set(re.findall(r"self\.ui\.\w+\.connect\(\s*\"[^\"]+\",\s*self\.(\w+)\)", source))
    assert slots, module
    methods = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    for slot in slots:
        body = ast.unparse(methods[slot])
        assert "slicer.util.tryWithErrorDisplay(" in body, f"{module}.{slot} does not report its errors"
