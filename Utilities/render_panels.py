"""Render the NETPET Slicer module panels to PNG screenshots without Slicer.

The three module panels are Qt Designer files that use Slicer and CTK widgets
(qMRMLWidget, ctkCollapsibleButton, ctkDirectoryButton, ctkPathLineEdit,
qMRMLNodeComboBox, qSlicerMarkupsPlaceWidget, qMRMLTableView). This script reads
each .ui file, replaces those classes by plain Qt widgets that look close to
Slicer's, loads the result with PyQt5.uic, fills the widgets with sample content
(so the screenshot shows the module in use) and saves a PNG of the panel:

    NETPETReader/Resources/UI/NETPETReader.ui -> Docs/Screenshots/NETPETReader.png
    SUVQuant/Resources/UI/SUVQuant.ui         -> Docs/Screenshots/SUVQuant.png
    StudyStats/Resources/UI/StudyStats.ui     -> Docs/Screenshots/StudyStats.png

Run it from anywhere (paths are relative to the repository root), again
whenever a .ui file changes:

    /work/main/.venv/bin/python Utilities/render_panels.py

It needs PyQt5 (``.venv/bin/pip install PyQt5``). No display is needed: the
script sets QT_QPA_PLATFORM=offscreen itself. It does not import the project's
packages. The panels are drawn with the Fusion style and Slicer's light palette
and layout spacing, 420 px wide; the sample values below are illustrative only.
"""

import io
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from PyQt5 import QtCore, QtGui, QtWidgets, uic

REPO = Path(__file__).resolve().parent.parent
OUTPUT_DIR = REPO / "Docs" / "Screenshots"
PANEL_WIDTH = 420
FONT_POINT_SIZE = 9
TABLE_ROWS = 5  # visible rows of every table
TEXT_LINES = 10  # visible lines of the provenance text box

# ---------------------------------------------------------------------------
# Look: Fusion with Slicer's light palette and layout metrics
# (qSlicerStyle: layout margins 6, 4 inside a collapsible button, spacing 3).
# ---------------------------------------------------------------------------

SLICER_LIGHT_PALETTE = {
    QtGui.QPalette.Window: "#ffffff",
    QtGui.QPalette.WindowText: "#000000",
    QtGui.QPalette.Base: "#ffffff",
    QtGui.QPalette.AlternateBase: "#e4e4fe",
    QtGui.QPalette.ToolTipBase: "#ffffdc",
    QtGui.QPalette.ToolTipText: "#000000",
    QtGui.QPalette.Text: "#000000",
    QtGui.QPalette.Button: "#fcfcfc",
    QtGui.QPalette.ButtonText: "#000000",
    QtGui.QPalette.BrightText: "#ff0000",
    QtGui.QPalette.Light: "#c8c8c8",
    QtGui.QPalette.Midlight: "#e6e6e6",
    QtGui.QPalette.Dark: "#aaaaaa",
    QtGui.QPalette.Mid: "#c8c8c8",
    QtGui.QPalette.Shadow: "#5a5a5a",
    QtGui.QPalette.Highlight: "#308cc6",
    QtGui.QPalette.HighlightedText: "#ffffff",
    QtGui.QPalette.Link: "#0000ff",
}
SLICER_DISABLED_COLORS = {
    QtGui.QPalette.WindowText: "#bebebe",
    QtGui.QPalette.Text: "#bebebe",
    QtGui.QPalette.ButtonText: "#bebebe",
    QtGui.QPalette.Highlight: "#919191",
}


class SlicerLikeStyle(QtWidgets.QProxyStyle):
    """Fusion with the tighter layout margins and spacing of Slicer's qSlicerStyle."""

    def pixelMetric(self, metric, option=None, widget=None):
        if metric in (QtWidgets.QStyle.PM_LayoutLeftMargin, QtWidgets.QStyle.PM_LayoutTopMargin,
                      QtWidgets.QStyle.PM_LayoutRightMargin, QtWidgets.QStyle.PM_LayoutBottomMargin):
            if widget is not None and widget.property("ctkCollapsibleButton"):
                return 4
            return 6
        if metric in (QtWidgets.QStyle.PM_LayoutHorizontalSpacing, QtWidgets.QStyle.PM_LayoutVerticalSpacing):
            return 3
        return super().pixelMetric(metric, option, widget)


def slicer_palette():
    palette = QtGui.QPalette()
    for role, color in SLICER_LIGHT_PALETTE.items():
        for group in (QtGui.QPalette.Active, QtGui.QPalette.Inactive, QtGui.QPalette.Disabled):
            palette.setColor(group, role, QtGui.QColor(color))
    for role, color in SLICER_DISABLED_COLORS.items():
        palette.setColor(QtGui.QPalette.Disabled, role, QtGui.QColor(color))
    return palette


# ---------------------------------------------------------------------------
# .ui rewriting: Slicer/CTK classes -> plain Qt stand-ins
# ---------------------------------------------------------------------------

# properties the stand-ins keep; every other property of a custom widget is Slicer-only
KEPT_PROPERTIES = {"toolTip", "enabled", "sizePolicy", "minimumSize", "maximumSize"}


def _element(tag, text=None, **attributes):
    element = ET.Element(tag, attributes)
    element.text = text
    return element


def _property(name, kind, value, stdset=True):
    prop = _element("property", name=name)
    if not stdset:
        prop.set("stdset", "0")
    prop.append(_element(kind, value))
    return prop


def _kept_properties(widget):
    return [p for p in widget.findall("property") if p.get("name") in KEPT_PROPERTIES]


def _horizontal_box(name, items, stretch=False):
    """A QWidget with a zero-margin QHBoxLayout holding ``items`` (widget elements)."""
    container = _element("widget", **{"class": "QWidget", "name": name})
    layout = _element("layout", **{"class": "QHBoxLayout", "name": name + "Layout"})
    for key in ("leftMargin", "topMargin", "rightMargin", "bottomMargin"):
        layout.append(_property(key, "number", "0"))
    for item_widget in items:
        item = _element("item")
        item.append(item_widget)
        layout.append(item)
    if stretch:
        item = _element("item")
        spacer = _element("spacer", name=name + "Stretch")
        spacer.append(_property("orientation", "enum", "Qt::Horizontal"))
        spacer.append(_property("sizeType", "enum", "QSizePolicy::Expanding"))
        size_hint = _element("property", name="sizeHint", stdset="0")
        size = _element("size")
        size.extend([_element("width", "0"), _element("height", "0")])
        size_hint.append(size)
        spacer.append(size_hint)  # uic ignores sizeType without a sizeHint
        item.append(spacer)
        layout.append(item)
    container.append(layout)
    return container


def _plain_widget(cls, name, properties=()):
    widget = _element("widget", **{"class": cls, "name": name})
    widget.extend(properties)
    return widget


def _replace_collapsible_button(widget, collapsed):
    widget.set("class", "QGroupBox")
    title = ""
    for prop in list(widget.findall("property")):
        name = prop.get("name")
        if name == "text":
            title = prop.findtext("string", "")
            widget.remove(prop)
        elif name == "collapsed":
            if prop.findtext("bool", "false") == "true":
                collapsed.add(widget.get("name"))
            widget.remove(prop)
        elif name not in KEPT_PROPERTIES:
            widget.remove(prop)
    marker = "\u25b6" if widget.get("name") in collapsed else "\u25bc"
    widget.insert(0, _property("title", "string", f"{marker}  {title}"))
    widget.insert(1, _property("ctkCollapsibleButton", "bool", "true", stdset=False))
    return widget


def _replace_path_line_edit(widget):
    name = widget.get("name")
    line_edit = _plain_widget("QLineEdit", name, _kept_properties(widget))
    browse = _plain_widget("QToolButton", name + "BrowseButton", [_property("text", "string", "...")])
    return _horizontal_box(name + "Container", [line_edit, browse])


def _replace_markups_place_widget(widget):
    name = widget.get("name")
    buttons = [
        _plain_widget("QToolButton", name + "PlaceButton",
                      [_property("text", "string", "Place point"), _property("checkable", "bool", "true")]
                      + _kept_properties(widget)),
        _plain_widget("QToolButton", name + "DeleteButton", [_property("text", "string", "Delete last")]),
        _plain_widget("QToolButton", name + "DeleteAllButton", [_property("text", "string", "Delete all")]),
        _plain_widget("QToolButton", name + "MoreButton", [_property("text", "string", "\u22ef")]),
    ]
    return _horizontal_box(name, buttons, stretch=True)


SIMPLE_REPLACEMENTS = {
    "qMRMLWidget": "QWidget",
    "qSlicerWidget": "QWidget",
    "ctkDirectoryButton": "QPushButton",
    "qMRMLNodeComboBox": "QComboBox",
    "qMRMLTableView": "QTableWidget",
}


def plain_qt_ui(ui_path):
    """The .ui file rewritten with plain Qt classes, and the names of the collapsed sections."""
    root = ET.parse(ui_path).getroot()
    for tag in ("customwidgets", "connections"):
        for element in root.findall(tag):
            root.remove(element)
    # Slicer's parameter-node bindings mean nothing here
    for parent in root.iter():
        for prop in parent.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                parent.remove(prop)

    collapsed = set()
    for parent in list(root.iter()):
        for index, child in enumerate(list(parent)):
            if child.tag != "widget":
                continue
            cls = child.get("class")
            if cls == "ctkCollapsibleButton":
                _replace_collapsible_button(child, collapsed)
            elif cls == "ctkPathLineEdit":
                parent.remove(child)
                parent.insert(index, _replace_path_line_edit(child))
            elif cls == "qSlicerMarkupsPlaceWidget":
                parent.remove(child)
                parent.insert(index, _replace_markups_place_widget(child))
            elif cls in SIMPLE_REPLACEMENTS:
                child.set("class", SIMPLE_REPLACEMENTS[cls])
                for prop in child.findall("property"):
                    if prop.get("name") not in KEPT_PROPERTIES:
                        child.remove(prop)
    return ET.tostring(root, encoding="utf-8"), collapsed


def load_panel(ui_path):
    xml, collapsed = plain_qt_ui(ui_path)
    panel = uic.loadUi(io.BytesIO(xml))
    return panel, collapsed


# ---------------------------------------------------------------------------
# Filling helpers
# ---------------------------------------------------------------------------

def child(panel, name, cls=QtWidgets.QWidget):
    widget = panel.findChild(cls, name)
    if widget is None:
        raise LookupError(f"{panel.objectName()}: no {cls.__name__} named {name!r} in the .ui file")
    return widget


def set_combo(panel, name, items, current=None):
    combo = child(panel, name, QtWidgets.QComboBox)
    combo.clear()
    combo.addItems(items)
    combo.setCurrentIndex(items.index(current) if current is not None else 0)


def set_node_combo(panel, name, node_name):
    """A qMRMLNodeComboBox stand-in showing one selected node; it fills the row like the real one."""
    set_combo(panel, name, [node_name])
    combo = child(panel, name, QtWidgets.QComboBox)
    combo.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)


def set_directory(panel, name, path):
    """A ctkDirectoryButton stand-in: folder icon and path, left aligned."""
    button = child(panel, name, QtWidgets.QPushButton)
    button.setText(path)
    button.setIcon(button.style().standardIcon(QtWidgets.QStyle.SP_DirIcon))
    button.setStyleSheet("text-align: left; padding: 3px 6px;")
    button.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)


def set_path(panel, name, path):
    """A ctkPathLineEdit stand-in (line edit plus browse button)."""
    child(panel, name, QtWidgets.QLineEdit).setText(path)
    child(panel, name + "Container").setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)


def set_text(panel, name, text):
    child(panel, name).setText(text)


def fill_table(panel, name, headers, rows, selected_row=None):
    table = child(panel, name, QtWidgets.QTableWidget)
    table.setColumnCount(len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            item = QtWidgets.QTableWidgetItem(str(value))
            if isinstance(value, (int, float)):
                item.setTextAlignment(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter)
            table.setItem(r, c, item)
    table.resizeColumnsToContents()
    if selected_row is not None:
        table.selectRow(selected_row)
    return table


def size_table(table, rows=TABLE_ROWS):
    """Fix the height of a table to show a header and ``rows`` rows (plus its scroll bar if it has one)."""
    height = table.horizontalHeader().sizeHint().height() + rows * table.verticalHeader().defaultSectionSize()
    height += 2 * table.frameWidth()
    if table.horizontalScrollBar().maximum() > 0:
        height += table.horizontalScrollBar().sizeHint().height()
    table.setFixedHeight(height)


def size_text_box(text_box, lines=TEXT_LINES):
    """Fix the height of a text box to show ``lines`` whole lines of text."""
    metrics = QtGui.QFontMetrics(text_box.font())
    line_height = max(metrics.height(), metrics.lineSpacing())  # a laid-out line is font height tall
    height = lines * line_height + 2 * text_box.document().documentMargin() + 2 * text_box.frameWidth()
    if text_box.horizontalScrollBar().maximum() > 0:
        height += text_box.horizontalScrollBar().sizeHint().height()
    text_box.setFixedHeight(int(height))


# ---------------------------------------------------------------------------
# Sample content, one function per panel
# ---------------------------------------------------------------------------

PET_SERIES_UID = "2.25.226184713984761038476159283746501928374"

PROVENANCE = "\n".join([
    "SUVbw (g/mL)",
    f"series    {PET_SERIES_UID} ('PET WB Ga68 DOTATATE AC')",
    "tracer    68Ga-DOTATATE  PET/CT",
    "units     BQML (Units (0054,1001))",
    "decay     START; reference 2025-01-28T11:19:09 [Siemens decay correction datetime (0071,1022)]",
    "injection 2025-01-28T10:21:02 [RadiopharmaceuticalStartDateTime (0018,1078)], uptake 58.1 min",
    "dose      151.30 MBq [RadionuclideTotalDose (0018,1074)]",
    "half-life 4062.6 s [RadionuclideHalfLife (0018,1075)]",
    "weight    71.5 kg [PatientWeight (0010,1030)]",
    "factor    0.00083548652 SUV per BQML unit",
])


def fill_netpet_reader(panel):
    set_directory(panel, "folderButton", "/data/NETPET-study/dicom")
    table = fill_table(
        panel, "sessionTable",
        ["Patient", "Session", "Hybrid", "Tracer", "Files"],
        [
            ("NETPET-001", "S1-DOTATATE-PETCT", "PET/CT", "68Ga-DOTATATE", 342),
            ("NETPET-001", "S2-FDG-PETCT", "PET/CT", "18F-FDG", 389),
            ("NETPET-002", "S1-DOTATOC-PETMR", "PET/MR", "68Ga-DOTATOC", 1184),
            ("NETPET-003", "S1-DOTATATE-PETCT", "PET/CT", "68Ga-DOTATATE", 356),
        ],
        selected_row=0,
    )
    set_text(panel, "petSeriesLineEdit", PET_SERIES_UID)
    child(panel, "petSeriesLineEdit", QtWidgets.QLineEdit).setCursorPosition(0)
    set_combo(panel, "suvTypeComboBox", ["bw", "lbm", "lbmjanma", "bsa", "ibw"], "bw")
    child(panel, "suvWindowMaxSpinBox", QtWidgets.QDoubleSpinBox).setValue(10.0)
    child(panel, "fusionOpacitySpinBox", QtWidgets.QDoubleSpinBox).setValue(0.5)
    child(panel, "loadButton").setEnabled(True)  # a session is selected
    text_box = child(panel, "provenanceText", QtWidgets.QPlainTextEdit)
    text_box.setPlainText(PROVENANCE)
    set_text(panel, "statusLabel", "")
    child(panel, "installButton").hide()
    return [table], [text_box]


def fill_suv_quant(panel):
    set_node_combo(panel, "petVolumeSelector", "NETPET-001 PET/CT SUVbw")
    set_node_combo(panel, "lesionPointsSelector", "Lesions")
    set_node_combo(panel, "liverPointSelector", "Liver reference")
    set_combo(panel, "methodComboBox",
              ["adaptive", "fixed41", "fixed50", "absolute", "liver-percist", "liver-max", "gradient"], "adaptive")
    set_text(panel, "readerLineEdit", "reader1")
    set_node_combo(panel, "segmentationSelector", "NETPET-001 PET/CT SUVbw lesions")
    set_node_combo(panel, "resultsTableSelector", "SUVQuant results")
    table = fill_table(
        panel, "resultsTableView",
        ["lesion_id", "region", "call", "krenning", "SUVmax", "SUVpeak", "MTV [mL]", "T/L"],
        [
            ("L01", "liver", "positive", 3, 12.4, 10.9, 4.2, 1.82),
            ("L02", "liver", "positive", 4, 21.7, 18.3, 9.6, 3.19),
            ("L03", "lymph nodes", "positive", 3, 9.8, 8.1, 1.7, 1.44),
            ("L04", "bone", "negative", 2, 5.1, 4.3, 0.9, 0.75),
        ],
    )
    place = child(panel, "lesionPlaceWidgetPlaceButton", QtWidgets.QToolButton)
    place.setIcon(point_icon())
    place.setToolButtonStyle(QtCore.Qt.ToolButtonTextBesideIcon)
    set_path(panel, "studyTablePathLineEdit", "/data/NETPET-study/study-table.csv")
    child(panel, "dicomSegCheckBox", QtWidgets.QCheckBox).setChecked(True)
    set_text(panel, "statusLabel", "4 lesion(s) segmented")
    return [table], []


def fill_study_stats(panel):
    set_path(panel, "studyTablePathLineEdit", "/data/NETPET-study/study-table.csv")
    set_path(panel, "referencePathLineEdit", "/data/NETPET-study/reference_standard.csv")
    set_directory(panel, "outputFolderButton", "/data/NETPET-study/statistics")
    set_combo(panel, "ciComboBox", ["wilson", "clopper-pearson", "agresti-coull", "jeffreys"], "wilson")
    set_text(panel, "groupByLineEdit", "indication")
    child(panel, "bootstrapSpinBox", QtWidgets.QSpinBox).setValue(2000)
    set_node_combo(panel, "accuracyTableSelector", "StudyStats accuracy")
    set_node_combo(panel, "comparisonsTableSelector", "StudyStats comparisons")
    set_text(panel, "statusLabel", "Report: /data/NETPET-study/statistics/report.html")
    return [], []


def point_icon():
    """A small red markup point, like the one on Slicer's place-point button."""
    pixmap = QtGui.QPixmap(16, 16)
    pixmap.fill(QtCore.Qt.transparent)
    painter = QtGui.QPainter(pixmap)
    painter.setRenderHint(QtGui.QPainter.Antialiasing)
    painter.setPen(QtGui.QPen(QtGui.QColor("#7a1010"), 1))
    painter.setBrush(QtGui.QColor("#e23232"))
    painter.drawEllipse(QtCore.QRectF(3.5, 3.5, 9, 9))
    painter.end()
    return QtGui.QIcon(pixmap)


PANELS = [
    ("NETPETReader/Resources/UI/NETPETReader.ui", "NETPETReader.png", fill_netpet_reader),
    ("SUVQuant/Resources/UI/SUVQuant.ui", "SUVQuant.png", fill_suv_quant),
    ("StudyStats/Resources/UI/StudyStats.ui", "StudyStats.png", fill_study_stats),
]


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------

def add_headers(panel, collapsed):
    """Turn each collapsible-button stand-in into a header bar over its contents, like ctkCollapsibleButton.

    The QGroupBox title becomes a full-width, left-aligned push button drawn by the style (the
    real widget is a push button too); the box frame is dropped. Contents of collapsed sections
    are hidden. Returns the headers, to be placed with ``place_headers`` once the panel is laid out.
    """
    headers = []
    for box in panel.findChildren(QtWidgets.QGroupBox):
        if not box.property("ctkCollapsibleButton"):
            continue
        header = QtWidgets.QPushButton(box.title(), box)
        header.setObjectName(box.objectName() + "Header")
        header.setStyleSheet("text-align: left; padding: 3px 6px;")
        box.setTitle("")
        padding = 3
        if box.objectName() in collapsed:
            for widget in box.findChildren(QtWidgets.QWidget, options=QtCore.Qt.FindDirectChildrenOnly):
                if widget is not header:
                    widget.hide()
            box.layout().setContentsMargins(0, 0, 0, 0)
            padding = 0
        box.setStyleSheet(f"QGroupBox {{ border: none; margin-top: {header.sizeHint().height()}px;"
                          f" padding-top: {padding}px; }}")
        headers.append(header)
    return headers


def place_headers(headers):
    for header in headers:
        header.setGeometry(0, 0, header.parentWidget().width(), header.sizeHint().height())
        header.raise_()
        header.show()


def collapse_vertical_spacers(layout):
    """The spacer at the bottom of a panel only fills Slicer's tall module panel; drop its height."""
    for index in range(layout.count()):
        spacer = layout.itemAt(index).spacerItem()
        if spacer is not None and spacer.expandingDirections() & QtCore.Qt.Vertical:
            spacer.changeSize(0, 0, QtWidgets.QSizePolicy.Minimum, QtWidgets.QSizePolicy.Fixed)
    layout.invalidate()


def settle(panel, app):
    """Lay the panel out at the target width with the height it needs."""
    panel.setFixedWidth(PANEL_WIDTH)
    panel.adjustSize()
    panel.resize(PANEL_WIDTH, panel.sizeHint().height())
    panel.show()
    for _ in range(3):
        app.processEvents()


def render(ui_relative, png_name, fill, app):
    panel, collapsed = load_panel(REPO / ui_relative)
    panel.setAutoFillBackground(True)
    tables, text_boxes = fill(panel)
    headers = add_headers(panel, collapsed)
    collapse_vertical_spacers(panel.layout())
    settle(panel, app)
    for table in tables:
        size_table(table)
    for text_box in text_boxes:
        size_text_box(text_box)
    settle(panel, app)
    place_headers(headers)
    if app.focusWidget() is not None:  # no text cursor or focus frame in the picture
        app.focusWidget().clearFocus()
    app.processEvents()
    image = panel.grab()
    path = OUTPUT_DIR / png_name
    if not image.save(str(path), "PNG"):
        raise OSError(f"could not write {path}")
    report_clipping(panel)
    panel.close()
    return path, image.size()


def report_clipping(panel):
    """Warn about labels and buttons narrower than their text (what a reader would see cut off)."""
    for widget in panel.findChildren(QtWidgets.QWidget):
        if not widget.isVisible() or not isinstance(widget, (QtWidgets.QLabel, QtWidgets.QAbstractButton)):
            continue
        if isinstance(widget, QtWidgets.QLabel) and widget.wordWrap():
            continue
        if widget.width() < widget.minimumSizeHint().width():
            print(f"  warning: {widget.objectName()} is {widget.width()} px wide but needs "
                  f"{widget.minimumSizeHint().width()} px", file=sys.stderr)


# harmless notes of the offscreen platform, not worth printing
QUIET_QT_MESSAGES = ("does not support propagateSizeHints", "XDG_RUNTIME_DIR not set")


def print_qt_message(kind, context, message):
    if not any(note in message for note in QUIET_QT_MESSAGES):
        print(message, file=sys.stderr)


def main():
    QtCore.qInstallMessageHandler(print_qt_message)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setStyle(SlicerLikeStyle(QtWidgets.QStyleFactory.create("Fusion")))
    app.setPalette(slicer_palette())
    font = app.font()
    font.setPointSize(FONT_POINT_SIZE)
    app.setFont(font)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    for ui_relative, png_name, fill in PANELS:
        path, size = render(ui_relative, png_name, fill, app)
        print(f"{path.relative_to(REPO)}: {size.width()} x {size.height()} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
