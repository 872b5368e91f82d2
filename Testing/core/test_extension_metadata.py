"""The Slicer extension's files agree with each other and with the Slicer Extensions Index's rules:
CMake metadata, the catalog entry (packaging/ExtensionsIndex), the README, icons, licence, and each
module's CMakeLists (every script and resource listed exists and every module file is listed). Also:
the .ui files and the module files agree (every ``self.ui.<name>`` exists, every SlicerParameterName
is a parameter-node field of a type its widget can show).

The index's rules are those of Slicer/ExtensionsIndex ``scripts/check_description_files.py`` (JSON
schema, category, repository name, scm_url, the top-level CMakeLists' project name, icon and screenshot
URLs, licence) and its new-extension checklist ``.github/PULL_REQUEST_TEMPLATE/new_extension.md``
(repository Slicer + extension name, topic ``3d-slicer-extension``, homepage content); the catalog
entry's keys are those of Slicer's ``Schemas/slicer-extension-catalog-entry-schema-v1.0.2.json``."""

from __future__ import annotations

import ast
import json
import os
import re
import struct
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = ("NETPETReader", "SUVQuant", "StudyStats")
#: the extension's name: the CMake project, the catalog entry's file name and the modules' category owner
EXTENSION = "NETPET"
CATALOG = os.path.join(ROOT, "packaging", "ExtensionsIndex", f"{EXTENSION}.json")
#: the keys a catalog entry may have (Slicer's schema slicer-extension-catalog-entry-schema-v1.0.2:
#: additionalProperties false) and those it must have
CATALOG_ALLOWED = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
                   "dicom_support_rule", "build_subdirectory", "enabled", "tier"}
CATALOG_REQUIRED = {"$schema", "category", "scm_url"}
#: the index's project-name rule (check_cmakelists_content: the first project() names the extension)
INDEX_PROJECT_PATTERN = r"project\s*\(\s*([^\s\)\n\r]+)"
#: GitHub topic the new-extension checklist asks the repository to carry
INDEX_TOPIC = "3d-slicer-extension"
#: Firstname Lastname ([SubOrg, ]Org), ... (Slicer's Utilities/Templates/Extensions/extension_description.s4ext.in)
CONTRIBUTOR_PATTERN = r"[^(),]+ \([^()]+\)"


def cmake_sets(path):
    text = open(path, encoding="utf-8").read()
    return {m.group(1): m.group(2) for m in re.finditer(r'set\((\w+)\s+"([^"]*)"\)', text)}


def png_size(path):
    with open(path, "rb") as handle:
        header = handle.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def _raw_prefix(entry):
    """Raw-file URL prefix of this repository at the entry's revision."""
    owner_repo = urllib.parse.urlsplit(entry["scm_url"]).path.strip("/").removesuffix(".git")
    return f"https://raw.githubusercontent.com/{owner_repo}/{entry['scm_revision']}/"


def test_catalog_entry_meets_the_index_rules():
    meta = cmake_sets(os.path.join(ROOT, "CMakeLists.txt"))
    entry = json.load(open(CATALOG, encoding="utf-8"))
    # the JSON schema (check_json_schema)
    assert set(entry) <= CATALOG_ALLOWED and CATALOG_REQUIRED <= set(entry)
    assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.2.json#")
    assert isinstance(entry["tier"], int) and 1 <= entry["tier"] <= 5
    assert isinstance(entry["scm_revision"], str) and entry["scm_revision"]
    # check_category: one of ACCEPTED_EXTENSION_CATEGORIES; the CMake metadata says the same
    assert entry["category"] == meta["EXTENSION_CATEGORY"] == "Nuclear Medicine"
    depends = [] if meta["EXTENSION_DEPENDS"] == "NA" else meta["EXTENSION_DEPENDS"].split()
    assert entry["build_dependencies"] == depends
    # check_scm_url_syntax: scheme://host/path with git or https
    url = urllib.parse.urlsplit(entry["scm_url"])
    assert "://" in entry["scm_url"] and url.scheme in ("git", "https"), entry["scm_url"]
    # check_git_repository_name ("slicer" in the name) and the checklist: Slicer + the extension's name
    repository = os.path.splitext(url.path.split("/")[-1])[0]
    assert repository == "Slicer" + EXTENSION, repository
    # one name and one homepage: the repository's page is the homepage
    assert entry["scm_url"].removesuffix(".git") == meta["EXTENSION_HOMEPAGE"]
    assert meta["EXTENSION_HOMEPAGE"] == f"https://github.com/{url.path.strip('/').removesuffix('.git')}"
    # check_cmakelists_content: the catalog file is named after the CMake project
    text = open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8").read()
    assert re.findall(INDEX_PROJECT_PATTERN, text, re.IGNORECASE)[0] == EXTENSION
    assert os.path.basename(CATALOG) == f"{EXTENSION}.json"
    for module in MODULES:
        assert f"add_subdirectory({module})" in text
    # one or two sentences for non-experts (new_extension.md)
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", meta["EXTENSION_DESCRIPTION"].strip()) if s]
    assert 1 <= len(sentences) <= 2, meta["EXTENSION_DESCRIPTION"]
    contributors = meta["EXTENSION_CONTRIBUTORS"].split(", ")
    assert contributors and all(re.fullmatch(CONTRIBUTOR_PATTERN, c) for c in contributors), contributors
    # check_cmakelists_content: the icon is an http(s) URL of an image: here a 128 x 128 PNG of this
    # repository at the entry's revision
    prefix = _raw_prefix(entry)
    icon = meta["EXTENSION_ICONURL"]
    assert icon.startswith(prefix), icon
    assert png_size(os.path.join(ROOT, icon[len(prefix):])) == (128, 128)


def test_screenshots_are_real_or_the_entry_says_it_is_not_ready():
    """The index refuses an entry without EXTENSION_SCREENSHOTURLS. The panels once listed there were drawn
    from the .ui files with stand-in widgets, so they were removed: until screenshots taken from a GUI
    that renders exist, the README and the entry's README say that the entry cannot be submitted."""
    meta = cmake_sets(os.path.join(ROOT, "CMakeLists.txt"))
    entry = json.load(open(CATALOG, encoding="utf-8"))
    prefix = _raw_prefix(entry)
    screenshots = meta["EXTENSION_SCREENSHOTURLS"].split()
    for url in screenshots:
        assert url.startswith(prefix), url
        path = os.path.join(ROOT, url[len(prefix):])
        assert os.path.isfile(path) and open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n", url
    assert not os.path.exists(os.path.join(ROOT, "Utilities", "render_panels.py"))
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert "render_panels" not in readme and "Docs/Screenshots" not in readme
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme):
        assert image.startswith("http") or os.path.isfile(os.path.join(ROOT, image)), image
    packaging = open(os.path.join(ROOT, "packaging", "ExtensionsIndex", "README.md"), encoding="utf-8").read()
    if not screenshots:
        assert "screenshots will come from a gui that renders" in " ".join(readme.split()).lower()
        assert "Not ready for submission yet" in packaging


def test_readme_names_the_repository_and_the_index_checklist():
    meta = cmake_sets(os.path.join(ROOT, "CMakeLists.txt"))
    readme = " ".join(open(os.path.join(ROOT, "README.md"), encoding="utf-8").read().split())
    assert meta["EXTENSION_HOMEPAGE"] in readme
    assert f"packaging/ExtensionsIndex/{EXTENSION}.json" in readme
    packaging = open(os.path.join(ROOT, "packaging", "ExtensionsIndex", "README.md"), encoding="utf-8").read()
    for rule in (INDEX_TOPIC, "Slicer" + EXTENSION, "check_description_files.py", "new_extension.md"):
        assert rule in packaging, rule


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
    # choices shown by label: enums made with NETPETLib.widgets.LabelledChoice (Slicer's QComboBox connector
    # of an enum.Enum, guiConnectors.py QComboBoxToEnumConnector)
    labelled = {target.id for node in tree.body if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and ast.unparse(node.value.func) == "LabelledChoice" for target in node.targets}
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
                    if "Choice(" in text or base in labelled:
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


# -- the pure core and the Slicer runtime ---------------------------------------------------------------

#: what the pure core never imports (DESIGN: "It never imports slicer, qt, ctk or vtk")
SLICER_SIDE = {"slicer", "qt", "ctk", "vtk"}


def _imports(tree, insideFunctions):
    """Top-level names imported by the module's code outside functions (or only inside them)."""
    found = set()

    def visit(node, inFunction):
        for child in ast.iter_child_nodes(node):
            nested = inFunction or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import) and nested == insideFunctions:
                found.update(alias.name.split(".")[0] for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and nested == insideFunctions:
                found.add(child.module.split(".")[0])
            visit(child, nested)

    visit(tree, False)
    return found


def test_only_the_slicer_runtime_touches_slicer():
    """netpet/ never imports slicer, qt, ctk or vtk, except netpet/slicer_runtime.py (the one module that
    makes Slicer-side Logic run on slicer-core) and netpet/review/app.py (the browser app, a shell over the
    Slicer modules' Logic, as DESIGN.md section 1 places it), and those only inside functions: importing
    netpet, the runtime or the review app's pure modules loads none of them."""
    import subprocess
    import sys

    for base, _dirs, files in os.walk(os.path.join(ROOT, "netpet")):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(base, name)
            tree = ast.parse(open(path, encoding="utf-8").read())
            relative = os.path.relpath(path, ROOT)
            assert not _imports(tree, False) & SLICER_SIDE, relative
            if relative not in (os.path.join("netpet", "slicer_runtime.py"), os.path.join("netpet", "review", "app.py")):
                assert not _imports(tree, True) & SLICER_SIDE, relative
    code = ("import sys, netpet, netpet.slicer_runtime, netpet.review.study, netpet.review.serving, "
            "netpet.review.teaching, netpet.cli.review; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'slicer', 'qt', 'ctk', 'vtk'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
