"""Matched lesions in Slicer: stored registrations as transform nodes, and two sessions side by side.

- :func:`loadRegistration` reads a transform ``netpet register`` stored (``transforms/*.h5``) the way
  Slicer's "Add data" does: a ``vtkMRMLLinearTransformNode`` read by a ``vtkMRMLTransformStorageNode``
  (Slicer's ITK transform converter turns ITK's LPS resampling transform into the node's RAS
  "to parent" transform, moving session -> fixed session). Volumes of the moving session placed
  under it show aligned with the fixed session.
- :func:`showSideBySide` shows a matched pair (:func:`netpet.match.pairs.matched_pairs`): Slicer's
  side-by-side layout (Red and Yellow slice views, both axial, as ``vtkMRMLLayoutLogic`` defines
  ``SlicerLayoutSideBySideView``), each view on its own session's PET (over its CT or MR when
  given), unlinked, each centred on its own finding's centroid. Each view keeps its own session's
  coordinates: no registration is needed to look at a pair. A side without finding (a lesion one
  session shows and the other misses) is centred on the other side's point brought over by the
  registration when one is given, else on the same RAS point, and says so.
No dialogs here: the module Widgets call these inside ``slicer.util.tryWithErrorDisplay``.
"""

import math
import os

import slicer

from NETPETLib import nodes

#: the side-by-side layout's slice views, left then right (Slicer's vtkMRMLLayoutLogic sideBySideView)
SIDE_BY_SIDE_VIEWS = ("Red", "Yellow")


def loadRegistration(path, name=None):
    """A linear transform node read from a stored registration (.h5 / .tfm), named after the file.

    Raises
    ------
    ValueError
        The file does not exist or Slicer cannot read it as a transform.
    """
    if not path or not os.path.isfile(path):
        raise ValueError(f"The registration {path} does not exist; run netpet register (or match) on the study table "
                         "first.")
    scene = slicer.mrmlScene
    node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", name or os.path.splitext(os.path.basename(path))[0])
    storage = scene.AddNewNodeByClass("vtkMRMLTransformStorageNode")
    storage.SetFileName(path)
    if not storage.ReadData(node):
        scene.RemoveNode(node)
        scene.RemoveNode(storage)
        raise ValueError(f"Slicer cannot read {path} as a transform; delete it and its .json sidecar and register "
                         "again.")
    node.SetAndObserveStorageNodeID(storage.GetID())
    return node


def transformPoint(transformNode, ras):
    """A RAS point of the transform's child space (the moving session) in its parent (the fixed session)."""
    if transformNode is None:
        return tuple(float(v) for v in ras)
    return tuple(transformNode.GetTransformToParent().TransformPoint([float(v) for v in ras]))


def petNodeForSeries(seriesUID):
    """The SUV volume node loaded from the PET series with this SeriesInstanceUID (None when not loaded)."""
    if not seriesUID:
        return None
    volumes = slicer.mrmlScene.GetNodesByClass("vtkMRMLScalarVolumeNode")
    for index in range(volumes.GetNumberOfItems()):
        node = volumes.GetItemAsObject(index)
        if node.GetAttribute(nodes.ATTRIBUTE_PREFIX + "SeriesInstanceUID") == seriesUID and \
                node.GetAttribute(nodes.ATTRIBUTE_PREFIX + "SUVType"):
            return node
    return None


def _point(pair, side):
    values = [pair.get(f"centroid_{axis}_{side}") for axis in "ras"]
    try:
        point = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        return None
    return point if all(math.isfinite(v) for v in point) else None


def _sliceNodes():
    out = []
    for name in SIDE_BY_SIDE_VIEWS:
        sliceNode = slicer.mrmlScene.GetSingletonNode(name, "vtkMRMLSliceNode")
        composite = slicer.mrmlScene.GetSingletonNode(name, "vtkMRMLSliceCompositeNode")
        if sliceNode is None or composite is None:
            raise ValueError(f"The scene has no {name} slice view; open Slicer's side-by-side layout first.")
        out.append((sliceNode, composite))
    return out


def showSideBySide(pair, petA, petB, anatomyA=None, anatomyB=None, transformBToA=None, petOpacity=0.6):
    """Show a matched pair: session a in the Red view, session b in the Yellow view, each on its lesion.

    Parameters
    ----------
    pair : dict
        A row of :func:`netpet.match.pairs.matched_pairs` (``centroid_*_a``, ``centroid_*_b`` in RAS mm of
        each session).
    petA, petB : vtkMRMLScalarVolumeNode
        The SUV volumes of the two sessions.
    anatomyA, anatomyB : vtkMRMLScalarVolumeNode, optional
        Their CT or MR, shown under the PET.
    transformBToA : vtkMRMLLinearTransformNode, optional
        The registration of session b to session a (:func:`loadRegistration`); used only to place a side
        that has no finding.

    Returns
    -------
    dict
        ``points``: the RAS point each view is centred on; ``notes``: what a reader should know (a side
        without finding and how its point was chosen).

    Raises
    ------
    ValueError
        No PET for a side, a pair without any centroid, or a scene without the two slice views.
    """
    if petA is None or petB is None:
        raise ValueError("Load the PET of both sessions first (NETPET Reader); one of them is not in the scene.")
    pointA, pointB = _point(pair, "a"), _point(pair, "b")
    notes = []
    if pointA is None and pointB is None:
        raise ValueError(f"Track {pair.get('track_id')} has no centroid in either session; measure the findings "
                         "again.")
    if pointB is None:
        inverse = None
        if transformBToA is not None:
            inverse = transformBToA.GetTransformFromParent()
            pointB = tuple(inverse.TransformPoint(list(pointA)))
        else:
            pointB = pointA
        notes.append(f"No finding of track {pair.get('track_id')} in session {pair.get('session_id_b')}: the right "
                     f"view shows {'the registered place' if inverse is not None else 'the same RAS point (no registration given)'} "
                     "of the left finding.")
    if pointA is None:
        pointA = transformPoint(transformBToA, pointB)
        notes.append(f"No finding of track {pair.get('track_id')} in session {pair.get('session_id_a')}: the left "
                     f"view shows {'the registered place' if transformBToA is not None else 'the same RAS point (no registration given)'} "
                     "of the right finding.")
    layout = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLLayoutNode")
    if layout is not None:
        layout.SetViewArrangement(slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView)
    for (sliceNode, composite), pet, anatomy, point in zip(_sliceNodes(), (petA, petB), (anatomyA, anatomyB),
                                                          (pointA, pointB)):
        composite.SetLinkedControl(False)
        if anatomy is not None:
            composite.SetBackgroundVolumeID(anatomy.GetID())
            composite.SetForegroundVolumeID(pet.GetID())
            composite.SetForegroundOpacity(petOpacity)
        else:
            composite.SetBackgroundVolumeID(pet.GetID())
            composite.SetForegroundVolumeID(None)
        sliceNode.SetOrientation("Axial")
        sliceNode.JumpSliceByCentering(*point)
    return {"points": {"a": tuple(pointA), "b": tuple(pointB)}, "notes": notes}
