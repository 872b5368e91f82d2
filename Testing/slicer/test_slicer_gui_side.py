"""The Slicer-side plumbing of the three modules, run headless where slicer-core allows (issue 12, item 1).

The Widgets need Qt and the Slicer application; what they rely on is exercised here on small stand-ins,
each reproducing the Slicer source it names (5.8 and 5.10), never a friendlier behaviour:

- the parameter-node GUI binding: Slicer 5.8's ``connectGui`` returns no tag (Base/Python/slicer/
  parameterNodeWrapper/wrapper.py ``_connectGui``), and its enum combo-box connector clears and refills the
  combo box when it is created (guiConnectors.py ``QComboBoxToEnumConnector.__init__``);
- the DICOM browser's plugin API (Modules/Scripted/DICOMLib/DICOMPlugin.py: ``DICOMPlugin`` with ``tags``,
  ``DICOMLoadable``) and database (``slicer.dicomDatabase.fileValue``, ``seriesForStudy``,
  ``filesForSeries``: the tag values Slicer caches at import);
- the progress dialog (a QProgressDialog's ``setValue``/``setLabelText``/``wasCanceled``/``close``).

MRML, the core and the Logic classes are real.
"""

import builtins
import enum
import importlib
import json
import os
import pathlib
import subprocess
import sys
import types

import pydicom
import pytest

import slicer


# -- the 5.8 parameter-node GUI binding --------------------------------------------------------------------

class _Signal:
    def __init__(self):
        self.slots = []

    def connect(self, slot):
        self.slots.append(slot)

    def disconnect(self, slot):
        self.slots.remove(slot)

    def emit(self, *args):
        for slot in list(self.slots):
            slot(*args)


class _ComboBox:
    """QComboBox as the connector uses it: clear() on a filled box makes the current index -1 and says so;
    the first addItem() makes it 0 and says so (Qt's QComboBox)."""

    def __init__(self, parameterName):
        self._parameterName = parameterName
        self.items, self._index = [], -1
        self.currentIndexChanged = _Signal()

    def property(self, name):
        return self._parameterName if name == "SlicerParameterName" else None

    def clear(self):
        had = bool(self.items)
        self.items = []
        if had:
            self._setIndex(-1)

    def addItem(self, text):
        self.items.append(text)
        if len(self.items) == 1:
            self._setIndex(0)

    def _setIndex(self, index):
        if index != self._index:
            self._index = index
            self.currentIndexChanged.emit(index)

    # (the builtin: this class's own ``property`` is Qt's dynamic-property getter)
    currentIndex = builtins.property(lambda self: self._index, lambda self, index: self._setIndex(index))


class _EnumConnector:
    """guiConnectors.py QComboBoxToEnumConnector (5.8, 5.10)."""

    def __init__(self, widget, datatype):
        self._widget, self._callback = widget, None
        labelFunc = getattr(datatype, "label", lambda x: x.name)
        self._labelToEnum = [(labelFunc(e), e) for e in datatype]
        self._widget.clear()
        for label, _member in self._labelToEnum:
            self._widget.addItem(label)

    def changed(self, *args):
        if self._callback:
            self._callback()

    def onChanged(self, callback):
        self._callback = callback
        if callback is None:
            self._widget.currentIndexChanged.disconnect(self.changed)
        else:
            self._widget.currentIndexChanged.connect(self.changed)

    def read(self):
        return self._labelToEnum[self._widget.currentIndex][1]

    def write(self, value):
        self._widget.currentIndex = next(i for i, (_l, e) in enumerate(self._labelToEnum) if e == value)


class _Wrapper58:
    """wrapper.py of Slicer 5.8 (and the 5.10-era source): ``_connectParametersToGui`` returns its tag,
    ``_connectGui`` calls it without returning it, ``_disconnectGui`` disconnects a known tag only; the
    GUI-to-parameter callback writes unless the GUI is being updated from the parameter node."""

    def __init__(self, datatypes, values):
        self._types, self._values = datatypes, dict(values)
        self._parameterGUIs, self._nextTag, self._updating = {}, 0, False

    def getValue(self, name):
        return self._values[name]

    def setValue(self, name, value):
        self._values[name] = value

    def connectParametersToGui(self, mapping):
        connectors = {name: _EnumConnector(widget, self._types[name]) for name, widget in mapping.items()}
        tag = self._nextTag
        self._nextTag += 1
        self._parameterGUIs[tag] = connectors
        for name, connector in connectors.items():
            connector.write(self.getValue(name))

            def callback(name=name, connector=connector):
                if not self._updating:
                    self.setValue(name, connector.read())

            connector.onChanged(callback)
        return tag

    def connectGui(self, gui):
        mapping = {w.property("SlicerParameterName"): w for w in vars(gui).values() if w.property("SlicerParameterName")}
        self.connectParametersToGui(mapping)  # 5.8: the tag is not returned

    def disconnectGui(self, tag):
        if tag in self._parameterGUIs:
            for connector in self._parameterGUIs.pop(tag).values():
                connector.onChanged(None)


def _choices():
    from NETPETLib.widgets import LabelledChoice

    return LabelledChoice("SUVType", [("bw", "Body weight"), ("lbm", "Lean body mass"), ("bsa", "Body surface area")])


def test_slicer58_connect_gui_resets_a_choice_on_every_module_entry(mrml):
    """The bug, reproduced on Slicer 5.8's own logic: the template's ``tag = p.connectGui(ui)`` gets None, exit
    disconnects nothing, and the next entry's new combo connector fires the old one: the choice is lost."""
    SUVType = _choices()
    ui = types.SimpleNamespace(suvTypeComboBox=_ComboBox("suvType"))
    p = _Wrapper58({"suvType": SUVType}, {"suvType": SUVType["bw"]})
    tag = p.connectGui(ui)  # module entry
    ui.suvTypeComboBox.currentIndex = 1  # the user chooses "Lean body mass"
    assert p.getValue("suvType") is SUVType["lbm"] and tag is None
    p.disconnectGui(tag)  # module exit
    p.connectGui(ui)  # next entry
    assert p.getValue("suvType") is SUVType["bw"]


def test_widget_binding_keeps_the_tag_and_the_choice(mrml):
    """NETPET's Widgets bind through connectParametersToGui (which returns the tag in every version): exit
    really disconnects, and a choice survives leaving and entering the module any number of times."""
    from NETPETLib.widgets import ParameterNodeWidgetMixin, parameterWidgets

    SUVType = _choices()
    ui = types.SimpleNamespace(suvTypeComboBox=_ComboBox("suvType"), label=_ComboBox(None))
    assert parameterWidgets(ui) == {"suvType": ui.suvTypeComboBox}
    p = _Wrapper58({"suvType": SUVType}, {"suvType": SUVType["bw"]})
    widget = ParameterNodeWidgetMixin()
    widget.ui, widget.logic = ui, types.SimpleNamespace(getParameterNode=lambda: p)
    widget.enter()
    ui.suvTypeComboBox.currentIndex = 2
    for _ in range(3):
        widget.exit()
        assert p._parameterGUIs == {}  # nothing left connected
        widget.enter()
        assert p.getValue("suvType") is SUVType["bsa"] and ui.suvTypeComboBox.currentIndex == 2
    assert ui.suvTypeComboBox.items == ["Body weight", "Lean body mass", "Body surface area"]  # labels, not keys
    widget.setParameterNode(None)
    assert p._parameterGUIs == {}


def test_labelled_choices_store_keys_show_labels(mrml):
    """Enum members are named by the keys the scene stored before (Slicer's EnumSerializer writes
    ``member.name``: serializers.py), keys may carry '-', and ``label`` is what the combo box shows."""
    from NETPETLib.widgets import LabelledChoice

    from SUVQuant import Method

    assert issubclass(Method, LabelledChoice) and issubclass(Method, enum.Enum)
    assert Method["liver-percist"].key == "liver-percist" and Method["liver-percist"].name == "liver-percist"
    assert Method.label(Method["fixed41"]) == "41 % of SUVmax"  # the connector calls label(member) on the class


# -- unset folders, progress, reload ----------------------------------------------------------------------

@pytest.mark.parametrize("folder", ["", ".", pathlib.Path(), None])
def test_unset_folder_is_refused_not_the_working_directory(mrml, folder):
    from NETPETReader import NETPETReaderLogic

    with pytest.raises(ValueError, match="No DICOM folder is chosen"):
        NETPETReaderLogic().indexFolder(folder)


def test_unset_study_paths_are_refused(mrml, tmp_path):
    from StudyStats import StudyStatsLogic

    with pytest.raises(ValueError, match="No study table is chosen"):
        StudyStatsLogic().run(pathlib.Path(), str(tmp_path / "reference.csv"), "")
    with pytest.raises(ValueError, match="No reference standard is chosen"):
        StudyStatsLogic().run(str(tmp_path / "study.csv"), ".", "")


class _Dialog:
    def __init__(self, cancelAfter=None):
        self.values, self.labels, self.closed, self.calls, self.cancelAfter = [], [], False, 0, cancelAfter

    def setValue(self, value):
        self.values.append(value)

    def setLabelText(self, text):
        self.labels.append(text)

    @property
    def wasCanceled(self):
        self.calls += 1
        return self.cancelAfter is not None and self.calls > self.cancelAfter

    def close(self):
        self.closed = True


def test_progress_processes_user_input_and_cancels(mrml, reference_study):
    """The callback processes every pending event (the Cancel click among them: processEvents is called with
    no flag, as DICOMWidgets.py's progress callbacks do) and a cancel stops the core, without an error."""
    from NETPETLib.progress import progressDialog

    from NETPETReader import NETPETReaderLogic

    out, _summary = reference_study
    flags, clock = [], iter(range(0, 10 ** 6))
    dialog = _Dialog(cancelAfter=2)
    with progressDialog("Indexing", dialog=dialog, processEvents=lambda *a: flags.append(a),
                        clock=lambda: next(clock)) as progress:
        NETPETReaderLogic().indexFolder(str(out / "dicom"), progress=progress)
        pytest.fail("the core went on after Cancel")
    assert progress.cancelled and dialog.closed
    assert flags and all(a == () for a in flags)  # no ExcludeUserInputEvents
    with progressDialog("Indexing", dialog=_Dialog(), processEvents=lambda: None) as progress:
        index = NETPETReaderLogic().indexFolder(str(out / "dicom"), progress=progress)
    assert not progress.cancelled and index.pet_series()


def test_reload_reloads_helper_packages_in_place(tmp_path, monkeypatch):
    """Reload re-executes every loaded module of the helper packages (submodules first), keeping the module
    objects: Slicer's own Reload re-executes the module file only (ScriptedLoadableModule.py onReload ->
    slicer.util.reloadScriptedModule)."""
    from NETPETLib.widgets import ParameterNodeWidgetMixin, reloadPackages

    package = tmp_path / "H6HelperLib"
    package.mkdir()
    (package / "__init__.py").write_text("VERSION = 1\n")
    (package / "tools.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    tools = importlib.import_module("H6HelperLib.tools")
    (package / "tools.py").write_text("VALUE = 2\n")
    (package / "__init__.py").write_text("VERSION = 2\n")
    for path in (package / "tools.py", package / "__init__.py"):
        os.utime(path, (os.path.getmtime(path) + 5, os.path.getmtime(path) + 5))
    assert reloadPackages(["H6HelperLib"]) == ["H6HelperLib.tools", "H6HelperLib"]
    assert tools.VALUE == 2 and sys.modules["H6HelperLib"].VERSION == 2 and sys.modules["H6HelperLib.tools"] is tools

    calls = []

    class Base:
        def onReload(self):
            calls.append("module")

    class Widget(ParameterNodeWidgetMixin, Base):
        helperPackages = ("H6HelperLib",)

    (package / "tools.py").write_text("VALUE = 3\n")
    os.utime(package / "tools.py", (os.path.getmtime(package / "tools.py") + 10,) * 2)
    Widget().onReload()
    assert tools.VALUE == 3 and calls == ["module"]
    from SUVQuant import SUVQuantWidget

    assert SUVQuantWidget.helperPackages == ("NETPETLib", "SUVQuantLib")


# -- the first-use installer ------------------------------------------------------------------------------

SLICER_510 = {"pydicom": "2.4.4", "numpy": "1.26.4", "simpleitk": "2.4.0", "pillow": "10.1.0", "scipy": "1.13.1",
              "packaging": "24.1", "pandas": "1.3.0"}


def test_installer_pins_everything_installed_and_narrows_highdicom():
    from NETPETLib import dependencies

    state, calls = dict(SLICER_510), []

    def pip(args):
        assert args[0] == "-c"
        pins = open(args[1], encoding="utf-8").read().splitlines()
        calls.append((list(args[2:]), pins, args[1]))
        state.update({"pandas": "2.2.3", "highdicom": "0.22.0", "tqdm": "4.67.1"})

    needed = dependencies.missing(installed=state, findSpec=lambda name: None)
    assert "pandas>=1.4" in needed and "highdicom>=0.22" in needed  # pandas 1.3 installed: too old, by version
    refused = dependencies.install(needed, pipInstall=pip, versions=lambda: dict(state))
    assert not refused
    requested, pins, constraints = calls[0]
    assert "highdicom>=0.22,<0.23" in requested  # highdicom 0.23+ would upgrade pydicom to 3
    for name in ("pydicom==2.4.4", "numpy==1.26.4", "simpleitk==2.4.0", "pillow==10.1.0", "scipy==1.13.1"):
        assert name in pins
    assert not any(p.startswith("pandas==") for p in pins)  # the requirement being installed is not pinned
    assert not os.path.exists(constraints)


def test_installer_reports_a_changed_bundled_package_and_a_failed_pip():
    from NETPETLib import dependencies

    state = dict(SLICER_510)

    def upgrading(args):
        state.update({"pydicom": "3.0.1", "highdicom": "0.28.2"})

    with pytest.raises(dependencies.DependencyError, match=r"pydicom 2\.4\.4 -> 3\.0\.1 \(shipped with Slicer\)"):
        dependencies.install(["highdicom>=0.22"], pipInstall=upgrading, versions=lambda: dict(state))

    def failing(args):
        raise subprocess.CalledProcessError(1, ["pip", "install", *args])

    with pytest.raises(dependencies.DependencyError, match="without changing the packages already in"):
        dependencies.install(["pandas>=1.4"], pipInstall=failing, versions=lambda: dict(SLICER_510))


def test_no_highdicom_where_none_fits_and_dicom_seg_says_why(monkeypatch):
    from NETPETLib import dependencies

    numpy2 = {**SLICER_510, "numpy": "2.1.3"}
    assert dependencies.missing(installed=numpy2, findSpec=lambda n: None) == [
        r for r in dependencies.requirements() if not r.startswith("highdicom")]
    reason = dependencies.unavailable(installed=numpy2, findSpec=lambda n: None)["highdicom>=0.22"]
    assert "DICOM SEG export is not available" in reason
    assert dependencies.unavailableReason("highdicom", installed=numpy2) == reason
    assert dependencies.unavailableReason("highdicom", installed={**SLICER_510, "pydicom": "3.0.1"}) == ""
    asked = []
    monkeypatch.setattr(dependencies, "missing", lambda: ["pandas>=1.4"])
    assert dependencies.ensureInstalled(askUser=lambda text: asked.append(text) or False,
                                        pipInstall=lambda a: pytest.fail("installed without asking")) is False
    assert "pandas>=1.4" in asked[0]


# -- no worker processes from Slicer ----------------------------------------------------------------------

def test_slicer_paths_run_in_process(mrml, reference_study, monkeypatch):
    """Index, SUV conversion and a browser load run with jobs=1 even where the core would parallelise (its
    thresholds lowered to 0 here: 400 files and 96 slices, every clinical whole-body PET)."""
    import netpet.dicom.convert as convert
    import netpet.dicom.files as files
    import netpet.dicom.index as index_module

    from NETPETReader import NETPETReaderLogic

    seen = []
    original = files.parallel_map

    def recording(function, items, jobs, chunk, progress=None):
        seen.append(jobs)
        return original(function, items, jobs, chunk, progress)

    monkeypatch.setattr(files, "parallel_map", recording)
    monkeypatch.setattr(index_module, "PARALLEL_MIN_FILES", 0)
    monkeypatch.setattr(convert, "PARALLEL_MIN_FILES", 0)
    monkeypatch.setattr(files, "ProcessPoolExecutor", None)  # any pool would fail
    out, summary = reference_study
    logic = NETPETReaderLogic()
    index = logic.indexFolder(str(out / "dicom"))
    session = summary["patients"][0]["sessions"][0]
    logic.loadSession(index, session["pet_series_uid"])
    logic.loadFiles(index.series(session["pet_series_uid"]).files)
    assert seen and set(seen) == {1}


# -- the DICOM plugin ---------------------------------------------------------------------------------------

def _dicomlib():
    """Modules/Scripted/DICOMLib/DICOMPlugin.py: DICOMLoadable's fields and DICOMPlugin's constructor
    (loadType, loadableCache, tags with seriesDescription and seriesNumber); addSeriesInSubjectHierarchy
    records its call (the real one builds subject-hierarchy items from the database)."""
    module = types.ModuleType("DICOMLib")

    class DICOMLoadable:
        def __init__(self):
            self.files, self.name, self.tooltip, self.warning = [], "Unknown", "No further information available", ""
            self.selected, self.confidence = False, 0.5

    class DICOMPlugin:
        def __init__(self):
            self.loadType = "Generic DICOM"
            self.loadableCache = {}
            self.tags = {"seriesDescription": "0008,103E", "seriesNumber": "0020,0011"}
            self.hierarchy = []

        def addSeriesInSubjectHierarchy(self, loadable, dataNode):
            self.hierarchy.append((loadable, dataNode))

    module.DICOMLoadable, module.DICOMPlugin = DICOMLoadable, DICOMPlugin
    return module


class _Database:
    """slicer.dicomDatabase as the plugin uses it: tag values from its cache (filled at import, here from the
    files beforehand), series of a study, files of a series; counts the values asked."""

    def __init__(self, paths):
        self.values, self.asked, self.series, self.studies = {}, 0, {}, {}
        for path in paths:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            self.values[path] = {f"{t >> 16:04X},{t & 0xFFFF:04X}": str(ds[t].value) for t in
                                 (0x00080060, 0x0020000E, 0x0020000D, 0x00100020, 0x00541001, 0x0008103E) if t in ds}
            self.series.setdefault(str(ds.SeriesInstanceUID), []).append(path)
            self.studies.setdefault(str(ds.StudyInstanceUID), set()).add(str(ds.SeriesInstanceUID))
        self.isOpen = True

    def fileValue(self, path, tag):
        self.asked += 1
        return self.values[path].get(tag.upper(), "")

    def seriesForStudy(self, study):
        return sorted(self.studies.get(study, ()))

    def filesForSeries(self, series):
        return list(self.series.get(series, ()))


@pytest.fixture()
def browser(mrml, reference_study, monkeypatch):
    """The DICOM browser's side: DICOMLib, qt.QSettings and the database, for one patient's files."""
    import netpet.dicom.files as files

    monkeypatch.setitem(sys.modules, "DICOMLib", _dicomlib())
    settings = {}
    qt = types.ModuleType("qt")
    qt.QSettings = lambda: types.SimpleNamespace(value=lambda key, default=None: settings.get(key, default),
                                                 setValue=settings.__setitem__)
    monkeypatch.setitem(sys.modules, "qt", qt)
    previous = sys.modules.pop("NETPETLib.DICOMPlugin", None)  # imported afresh over these stand-ins
    out, summary = reference_study
    patient = summary["patients"][0]
    paths = sorted(str(p) for p in (out / "dicom" / patient["patient_id"]).rglob("*") if p.is_file())
    database = _Database([p for p in paths if files.looks_like_dicom(p)])
    monkeypatch.setattr(slicer, "dicomDatabase", database, raising=False)
    reads = []
    original = files.read_header
    monkeypatch.setattr(files, "read_header", lambda path, specific_tags=None: reads.append(path) or original(
        path, specific_tags=specific_tags))
    yield types.SimpleNamespace(database=database, reads=reads, settings=settings, patient=patient, out=out)
    sys.modules.pop("NETPETLib.DICOMPlugin", None)  # it holds the stand-ins: no later test may import it
    if previous is not None:
        sys.modules["NETPETLib.DICOMPlugin"] = previous


def test_dicom_plugin_registered_at_module_construction(browser):
    from NETPETReader import NETPETReader

    assert not hasattr(slicer.modules, "dicomPlugins")
    NETPETReader(types.SimpleNamespace())
    plugin = slicer.modules.dicomPlugins["NETPETSUVPlugin"]()
    assert plugin.loadType == "NETPET SUV"
    # the tags it reads are declared, so the DICOM module pre-caches them on import
    assert {"0008,0060", "0020,000E", "0020,000D", "0010,0020", "0054,1001"} <= set(plugin.tags.values())


def test_dicom_plugin_examines_through_the_database_and_loads_with_identity(browser):
    """Non-PET series cost no file read; a PET series one header; examining again nothing; the loaded node
    carries the same identity as a load from the panel (patient, study, series, PET/CT, tracer)."""
    from NETPETReader import NETPETReader, NETPETReaderLogic

    NETPETReader(types.SimpleNamespace())
    plugin = slicer.modules.dicomPlugins["NETPETSUVPlugin"]()
    database = browser.database
    fileLists = [sorted(files) for files in database.series.values()]
    pets = [files for files in fileLists if database.values[files[0]]["0008,0060"] == "PT"]
    assert len(fileLists) > len(pets) >= 2 and all(len(files) > 1 for files in fileLists)
    loadables = plugin.examineForImport(fileLists)
    assert len(loadables) == len(pets) and len(browser.reads) == len(pets)
    assert all(loadable.name.endswith("(SUVbw)") and loadable.confidence > 0.5 for loadable in loadables)
    plugin.examineForImport(fileLists)
    assert len(browser.reads) == len(pets)  # the browser keeps its plugin instances: nothing is read again

    session = next(s for s in browser.patient["sessions"] if s["modality"] == "PET/CT")
    loadable = next(item for item in loadables if item.seriesInstanceUID == session["pet_series_uid"])
    browser.settings["NETPET/SUVType"] = "lbm"
    node = plugin.load(loadable)
    assert plugin.hierarchy == [(loadable, node)]
    logic = NETPETReaderLogic()
    index = logic.indexFolder(str(browser.out / "dicom"))
    panel, _ct = logic.loadSession(index, session["pet_series_uid"], "lbm")
    for key in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality", "Tracer", "SUVType", "Units",
                "Factor"):
        assert node.GetAttribute("NETPET." + key) == panel.GetAttribute("NETPET." + key), key
    assert node.GetAttribute("NETPET.Modality") == "PET/CT" and node.GetAttribute("NETPET.PatientID")
    assert sorted(json.loads(node.GetAttribute("NETPET.SourceFiles"))) == sorted(loadable.files)
