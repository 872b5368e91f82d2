"""MRML <-> core conversions shared by the NETPET modules (the one place that crosses the boundary).

The core works in LPS (SimpleITK, DICOM); MRML volumes carry an IJK-to-RAS matrix. Everything
here is plain MRML and numpy: it runs in Slicer and on the ``slicer-core`` package alike.
"""

import json
import math

import numpy as np
import vtk

import slicer

#: node attributes that carry NETPET information on MRML nodes
ATTRIBUTE_PREFIX = "NETPET."
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def _matrixFromArray(array):
    matrix = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            matrix.SetElement(row, column, float(array[row, column]))
    return matrix


def _arrayFromMatrix(matrix):
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def ijkToRASFromImage(image):
    """The 4x4 IJK-to-RAS matrix of a SimpleITK image (LPS geometry)."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    matrix = np.eye(4)
    matrix[:3, :3] = LPS_TO_RAS @ direction @ np.diag(spacing)
    matrix[:3, 3] = LPS_TO_RAS @ np.asarray(image.GetOrigin(), dtype=float)
    return matrix


def volumeNodeFromImage(image, name, volumeNode=None):
    """A scalar volume node holding a SimpleITK image (values and geometry)."""
    import SimpleITK as sitk

    array = sitk.GetArrayFromImage(image)
    matrix = _matrixFromArray(ijkToRASFromImage(image))
    if volumeNode is None:
        volumeNode = slicer.util.addVolumeFromArray(array, ijkToRAS=matrix, name=name)
    else:
        volumeNode.SetIJKToRASMatrix(matrix)
        slicer.util.updateVolumeFromArray(volumeNode, array)
    return volumeNode


def suvVolumeFromNode(volumeNode):
    """The core's SUVVolume (values [z, y, x] and LPS geometry) of a volume node."""
    from netpet.quant.volume import SUVVolume

    if volumeNode is None or volumeNode.GetImageData() is None:
        raise ValueError("Select a PET volume with image data.")
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    m = _arrayFromMatrix(matrix)
    lps = LPS_TO_RAS @ m[:3, :3]
    spacing = np.linalg.norm(lps, axis=0)
    direction = lps / spacing
    origin = LPS_TO_RAS @ m[:3, 3]
    values = slicer.util.arrayFromVolume(volumeNode).astype(np.float32, copy=False)
    return SUVVolume(values, tuple(origin), tuple(spacing), tuple(direction.ravel()), volumeNode.GetName())


def setProvenance(volumeNode, provenance, seriesRecord=None):
    """Record the SUV provenance on the node: one JSON attribute plus the values readers look for."""
    volumeNode.SetAttribute(ATTRIBUTE_PREFIX + "Provenance", json.dumps(provenance, default=str))
    for key, attribute in (("suv_type", "SUVType"), ("units", "Units"), ("decay_correction", "DecayCorrection"),
                           ("reference_time", "ReferenceTime"), ("injection_time", "InjectionTime"),
                           ("weight_kg", "WeightKg"), ("dose_bq", "DoseBq"), ("factor", "Factor")):
        if provenance.get(key) is not None:
            volumeNode.SetAttribute(ATTRIBUTE_PREFIX + attribute, str(provenance[key]))
    volumeNode.SetAttribute(ATTRIBUTE_PREFIX + "Warnings", " | ".join(provenance.get("warnings") or []))
    if seriesRecord is not None:
        volumeNode.SetAttribute(ATTRIBUTE_PREFIX + "SeriesInstanceUID", seriesRecord.series_uid)
        volumeNode.SetAttribute(ATTRIBUTE_PREFIX + "PatientID", seriesRecord.patient_id or "")
        volumeNode.SetAttribute(ATTRIBUTE_PREFIX + "StudyInstanceUID", seriesRecord.study_uid or "")
        from netpet import schema

        # as the study table labels it (one rule for the panel, the browser plugin and netpet quantify):
        # PET/CT, PET/MR, SPECT/CT, or PET / SPECT alone
        volumeNode.SetAttribute(ATTRIBUTE_PREFIX + "Modality", schema.record_modality(seriesRecord))
        volumeNode.SetAttribute(ATTRIBUTE_PREFIX + "Tracer", seriesRecord.tracer.key if seriesRecord.tracer else "")
        volumeNode.SetAttribute(ATTRIBUTE_PREFIX + "SourceFiles", json.dumps(list(seriesRecord.files)))


def provenance(volumeNode):
    """The SUV provenance recorded on a node (empty dict when it has none)."""
    text = volumeNode.GetAttribute(ATTRIBUTE_PREFIX + "Provenance") if volumeNode else None
    return json.loads(text) if text else {}


def showAsPET(volumeNode, window=(0.0, 10.0), colorName="PET-Heat"):
    """PET display: a PET colour map and the SUV window (default 0-10)."""
    volumeNode.CreateDefaultDisplayNodes()
    display = volumeNode.GetDisplayNode()
    color = slicer.mrmlScene.GetFirstNodeByName(colorName)
    if color is not None:
        display.SetAndObserveColorNodeID(color.GetID())
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(float(window[0]), float(window[1]))
    return display


def fuse(petNode, anatomicalNode, opacity=0.5):
    """PET over CT/MR in every slice view, views linked. Returns the slice composite nodes set."""
    composites = slicer.mrmlScene.GetNodesByClass("vtkMRMLSliceCompositeNode")
    changed = []
    for index in range(composites.GetNumberOfItems()):
        composite = composites.GetItemAsObject(index)
        composite.SetBackgroundVolumeID(anatomicalNode.GetID() if anatomicalNode else None)
        composite.SetForegroundVolumeID(petNode.GetID() if petNode else None)
        composite.SetForegroundOpacity(opacity)
        composite.SetLinkedControl(True)
        changed.append(composite)
    return changed


def jumpSlicesTo(ras):
    """Centre every slice view on a RAS point."""
    slicer.vtkMRMLSliceNode.JumpAllSlices(slicer.mrmlScene, float(ras[0]), float(ras[1]), float(ras[2]),
                                          slicer.vtkMRMLSliceNode.CenteredJumpSlice)


def tableNodeFromRows(rows, columns=None, name="Table", tableNode=None, numeric=()):
    """A table node with one row per dict; ``numeric`` columns are stored as doubles, the rest as text."""
    if columns is None:
        columns = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
    if tableNode is None:
        tableNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = tableNode.GetTable()
    tableNode.RemoveAllColumns()
    for column in columns:
        array = vtk.vtkDoubleArray() if column in numeric else vtk.vtkStringArray()
        array.SetName(column)
        array.SetNumberOfTuples(len(rows))
        for index, row in enumerate(rows):
            value = row.get(column)
            if column in numeric:
                array.SetValue(index, float(value) if _finite(value) else math.nan)
            else:
                array.SetValue(index, "" if value is None else (f"{value:.6g}" if isinstance(value, float) else str(value)))
        table.AddColumn(array)
    tableNode.Modified()
    return tableNode


def _finite(value):
    try:
        return value is not None and value != "" and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def rowsFromTableNode(tableNode):
    """The table node's rows as dicts of text (numbers as text, as a CSV would give them)."""
    table = tableNode.GetTable()
    names = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
    rows = []
    for r in range(table.GetNumberOfRows()):
        rows.append({name: table.GetValue(r, c).ToString() for c, name in enumerate(names)})
    return rows


def plotChart(name, series, xTitle, yTitle, chartNode=None, kind="line"):
    """A plot chart node; ``series`` is [(label, table node, x column, y column, colour)]."""
    if chartNode is None:
        chartNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLPlotChartNode", name)
    chartNode.RemoveAllPlotSeriesNodeIDs()
    for label, tableNode, xColumn, yColumn, colour in series:
        plot = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", label)
        plot.SetAndObserveTableNodeID(tableNode.GetID())
        plot.SetXColumnName(xColumn)
        plot.SetYColumnName(yColumn)
        plot.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
        if kind == "line":
            plot.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleNone)
            plot.SetLineStyle(slicer.vtkMRMLPlotSeriesNode.LineStyleSolid)
        else:
            plot.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle)
            plot.SetLineStyle(slicer.vtkMRMLPlotSeriesNode.LineStyleNone)
        if colour is not None:
            plot.SetColor(*colour)
        chartNode.AddAndObservePlotSeriesNodeID(plot.GetID())
    chartNode.SetXAxisTitle(xTitle)
    chartNode.SetYAxisTitle(yTitle)
    chartNode.SetTitle(name)
    return chartNode
