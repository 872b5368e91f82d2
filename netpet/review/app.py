"""The browser review and teaching app: trame-slicer views over the same Logic as the Slicer modules.

A thin shell (DESIGN.md section 1): the sessions are indexed and loaded by ``NETPETReaderLogic`` (PET as SUV
fused over its CT or MR), lesions are segmented, measured, exported, read and retracted by ``SUVQuantLogic``;
both run on trame-slicer's MRML scene, published to them by :func:`netpet.slicer_runtime.attach`. What the app
adds is the page: session choice, slice views, a coronal MIP, the lesion list linked to the views, the reading
form, PET/CT beside PET/MR, and in teaching mode the trainee's marks and the feedback after Finish.

Everything runs on the trame server's one asyncio thread except the pure segmentation compute of a click
(``SUVQuantLogic.computeLesion`` in a worker thread); MRML and VTK are touched on the loop thread only. Every
slice view is asked for a render after each Logic call.

This module imports trame, VTK and slicer-core: only the ``netpet review`` / ``netpet teach`` commands import it.
``VTK_DEFAULT_OPENGL_WINDOW`` must name an off-screen window (the commands set ``vtkEGLRenderWindow``, Mesa EGL)
before VTK is first imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")  # no display: Mesa EGL (llvmpipe)

import asyncio  # noqa: E402
import base64  # noqa: E402
import contextlib  # noqa: E402
import functools  # noqa: E402
import inspect  # noqa: E402
import io  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable, Dict, List, Optional, Tuple  # noqa: E402

import numpy as np  # noqa: E402
from trame.app import TrameApp  # noqa: E402
from trame.app.asynchronous import create_task  # noqa: E402
from trame.widgets import client, html  # noqa: E402
from trame_slicer.core import LayoutManager, SlicerApp  # noqa: E402
from trame_slicer.rca_view import register_rca_factories  # noqa: E402
from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition, ViewProps, ViewType  # noqa: E402
from trame_vuetify.ui.vuetify3 import SinglePageWithDrawerLayout  # noqa: E402

from netpet import slicer_runtime  # noqa: E402
from netpet.errors import printable  # noqa: E402
from netpet.review import serving, study as studies  # noqa: E402

log = logging.getLogger("netpet.review")

#: the slice views of a session (singleton tag, orientation, colour); the partner session's views add "2"
SLICE_VIEWS = (("Red", "Axial", "#F34A33"), ("Green", "Coronal", "#6DAD4A"), ("Yellow", "Sagittal", "#EFD64D"))
#: PET over CT/MR: NETPETReader's defaults (its parameter node: suvWindowMax 10, fusionOpacity 0.5)
DEFAULT_WINDOW_MAX, DEFAULT_OPACITY = 10.0, 0.5
#: a press and release within this many pixels is a click (segment there), farther a drag (the view's own)
CLICK_TOLERANCE_PX = 3
#: loaded sessions kept in the scene (switching back to one of them costs nothing); older ones are removed
LOADED_SESSIONS = 4
#: the segmentation methods the Edit choice offers (the core's, as SUVQuant's panel lists them)
EDIT_METHODS = ("adaptive", "fixed41", "fixed50", "liver-percist", "liver-max", "gradient")
#: height of the MIP image on the page (px); its width follows the body's physical aspect
MIP_HEIGHT_PX = 560


def _testid(name) -> Dict[str, Any]:
    """The stable DOM hook of a widget: ``data-testid`` (a string, or a (JavaScript expression,) tuple)."""
    return {"__properties": [("testid", "data-testid")], "testid": name}


def _text(value, digits: int = 2) -> str:
    """A table cell for the page: numbers rounded, None as ''."""
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else ""
    return str(value)


def _number(value) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _guarded(handler):
    """A handler of the page (a button, a state change, a click in a view, a background task): an exception that
    escapes it becomes one sentence on the status line and one line in the server's log (its traceback only at
    debug level), never a traceback in the page or the server's output; the server goes on. The state is sent to
    the page when it ends (:meth:`ReviewApp.say` does not send it: its sentence reaches the page with the list
    it speaks of)."""

    def report(app, exc):
        log.error("%s failed: %s: %s", handler.__name__, type(exc).__name__, exc)
        log.debug("%s failed", handler.__name__, exc_info=True)
        app.say(f"Unexpected error ({type(exc).__name__}: {exc}); nothing more was changed. The server goes on; "
                "report it with what you did.")
        with contextlib.suppress(Exception):
            app.render()

    if inspect.iscoroutinefunction(handler):
        @functools.wraps(handler)
        async def guarded_task(app, *args, **kwargs):
            try:
                return await handler(app, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 (the page's last resort: see the docstring)
                report(app, exc)
            finally:
                app.state.flush()
        return guarded_task

    @functools.wraps(handler)
    def guarded(app, *args, **kwargs):
        try:
            return handler(app, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 (the page's last resort: see the docstring)
            report(app, exc)
        finally:
            app.state.flush()
    return guarded


class _Warnings(logging.Handler):
    """Collects the warnings the Logic logs during one call (each is shown on the status line)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _collect_warnings():
    handler = _Warnings()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.messages
    finally:
        root.removeHandler(handler)


class Loaded:
    """A loaded session: its record, PET and anatomical nodes, study-table key and the per-volume state."""

    def __init__(self, record, pet, anatomical, session_id, patient_id):
        self.record, self.pet, self.anatomical = record, pet, anatomical
        self.session_id, self.patient_id = session_id, patient_id
        self.suv_max = 0.0
        self.liver_ras = None
        self.mip = None  # (MIP values, (row, col) -> RAS of the hottest voxel on that ray, display size)
        self.segmentations: Dict[str, Any] = {}  # finding id -> its own segmentation node
        self.pending: Dict[str, Dict[str, Any]] = {}  # finding id -> the finding segmented here, not yet accepted
        self.saved: Dict[str, Any] = {}  # .seg.nrrd path -> the node showing the saved findings it holds


class ReviewApp(TrameApp):
    """The review (``mode="review"``) or teaching (``mode="teach"``) page over one study folder.

    Parameters
    ----------
    study : netpet.review.study.StudyFolder
        The folder, its study table and DICOM (every path the app touches lies inside ``study.root``).
    reader : str
        The reader id written with every finding (the trainee's name in teaching mode).
    mode : {"review", "teach"}
    case : netpet.review.teaching.TeachingCase, optional
        The teaching case (teaching mode): its truth stays on the server until Finish.
    server : trame server, optional
    """

    def __init__(self, study, reader: str, mode: str = "review", case=None, server=None):
        super().__init__(server=server, client_type="vue3")
        if mode not in ("review", "teach"):
            raise ValueError(f"mode is {mode!r}; choose 'review' or 'teach'")
        if mode == "teach" and case is None:
            raise ValueError("teaching mode needs its case")
        self.study, self.reader, self.mode, self.case = study, reader, mode, case
        self.timings: Dict[str, float] = {}
        t0 = time.perf_counter()
        self.slicer_app = SlicerApp()
        self.runtime = slicer_runtime.attach(self.slicer_app.scene, self.slicer_app.app_logic)
        import NETPETReader  # the module folders are on sys.path once the runtime is attached
        import SUVQuant

        self.reader_logic = NETPETReader.NETPETReaderLogic()
        self.quant = SUVQuant.SUVQuantLogic()
        register_rca_factories(self.slicer_app.view_manager, self.server, slice_view_ui_f=self._view_ui)
        self.layouts = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager, self.server)
        self.layouts.register_layout_dict(self._layout_dict())
        self.layouts.set_layout("single")
        # the core's index, its headers read on every core: this is a process of its own, where worker processes
        # may start (NETPETReaderLogic.indexFolder reads in one process, as it must inside the Slicer application)
        from netpet.dicom.index import index_tree

        self.index = index_tree(studies.inside(study.root, study.dicom), jobs=None)
        self.sessions = [dict(s, key=f"{s['patient_id']}|{s['pet_series_uid']}")
                         for s in self.reader_logic.sessions(self.index)]
        if not self.sessions:
            raise studies.ReviewError(f"{study.dicom} holds no PET series; give the folder of the study's DICOM.")
        self.loaded: Dict[str, Loaded] = {}
        self.shown: Dict[int, Optional[Loaded]] = {0: None, 1: None}
        #: the lesion list as the server made it (the page's copy in the state is for showing only: every action
        #: looks its finding up here)
        self.items: List[Dict[str, Any]] = []
        self._press: Dict[str, Tuple[int, int]] = {}
        self._busy: Optional[Loaded] = None  # the session a click is being segmented in (one click at a time)
        self.feedback: Optional[Dict[str, Any]] = None
        self.timings["indexed_s"] = time.perf_counter() - t0
        self._init_state()
        self._build_ui()
        self._observe_clicks()
        self.select_session(self.sessions[0]["key"])
        self.timings["built_s"] = time.perf_counter() - t0

    # -- layout and page -------------------------------------------------------------------------------------
    @staticmethod
    def _slice_view(tag: str, orientation: str, colour: str, group: int) -> ViewLayoutDefinition:
        return ViewLayoutDefinition(tag, ViewType.SLICE_VIEW,
                                    ViewProps(orientation=orientation, label=tag, color=colour, group=group))

    def _layout_dict(self) -> Dict[str, Layout]:
        main = [self._slice_view(tag, orientation, colour, 0) for tag, orientation, colour in SLICE_VIEWS]
        partner = [self._slice_view(tag + "2", orientation, colour, 1) for tag, orientation, colour in SLICE_VIEWS]
        return {"single": Layout(LayoutDirection.Horizontal, main),
                "compare": Layout(LayoutDirection.Vertical, [Layout(LayoutDirection.Horizontal, main),
                                                             Layout(LayoutDirection.Horizontal, partner)])}

    def _view_ui(self, server, view_id, view):
        from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui

        create_vertical_slice_view_gutter_ui(server, view_id, view)
        html.Div(view.get_singleton_tag(), classes="netpet-view-label",
                 style="position:absolute;top:2px;left:4px;color:#ddd;font-size:11px;pointer-events:none;",
                 **_testid(f"view-{view.get_singleton_tag()}"))

    def _init_state(self):
        s = self.state
        s.trame__title = "NETPET teaching" if self.mode == "teach" else "NETPET review"
        s.mode = self.mode
        s.reader = self.reader
        patients = sorted({r["patient_id"] for r in self.sessions})
        s.patients = patients
        s.patient = patients[0]
        s.session_items = []
        s.session_key = ""
        s.session_label = ""
        s.partner_label = ""
        s.compare = False
        s.pet_window = DEFAULT_WINDOW_MAX
        s.pet_window_max = 50
        s.lesions = []
        s.selected = ""
        s.selected_warnings = ""
        s.show_segments = True
        s.status = ""
        s.messages = []
        s.busy = False
        s.mip_src = ""
        s.mip_width = 0
        s.goto_text = ""
        s.form_call = "unset"
        s.form_confidence = "unset"
        s.form_correlate = "unset"
        s.form_region = ""
        s.form_lesion_type = ""
        s.form_reason = ""
        s.edit_method = "adaptive"
        s.edit_fraction = ""
        # the threshold fraction of an Edit, where SUVQuantLogic.computeLesion takes one (SegmentOptions.fraction)
        s.fraction_supported = "fraction" in inspect.signature(self.quant.computeLesion).parameters
        from netpet.reading.findings import FORM_CHOICES

        s.call_choices = list(FORM_CHOICES["ReaderCall"])
        s.confidence_choices = list(FORM_CHOICES["Confidence"])
        s.correlate_choices = list(FORM_CHOICES["AnatomicCorrelate"])
        s.method_choices = list(EDIT_METHODS)
        s.quiz = self.case.quiz_markdown if self.mode == "teach" else ""
        s.feedback = None  # teaching: the score, only after Finish
        # the teacher's title names the lesson ("... below, at and above the liver reference"): shown after Finish
        s.case_title = ""
        s.change("patient")(self._on_patient)
        s.change("session_key")(self._on_session)
        s.change("compare")(self._on_compare)
        s.change("show_segments")(self._on_show_segments)
        s.change("pet_window")(self._on_window)

    def _build_ui(self):
        with SinglePageWithDrawerLayout(self.server) as self.ui:
            self.ui.title.set_text("NETPET teaching" if self.mode == "teach" else "NETPET review")
            with self.ui.toolbar:
                self._toolbar()
            with self.ui.drawer as drawer:
                drawer.width = 470
                self._lesion_panel()
            with self.ui.content:
                client.Style(_CSS)
                with html.Div(style="display:flex;height:calc(100vh - 64px);"):
                    with html.Div(style="position:relative;flex:1 1 auto;min-width:0;"):
                        self.layouts.initialize_layout_grid(self.ui)
                    with html.Div(classes="netpet-mip"):
                        html.Img(src=("mip_src",), style=("{width: mip_width + 'px'}",), **_testid("mip"),
                                 click=(self.on_mip_click, "[$event.offsetX, $event.offsetY, "
                                                           "$event.target.clientWidth, $event.target.clientHeight]"))
                        html.Div("coronal MIP: click to go there", classes="netpet-small")
                        with html.Div(v_if="feedback", classes="netpet-feedback", **_testid("feedback")):
                            self._feedback_panel()

    def _toolbar(self):
        with html.Div(classes="netpet-bar"):
            html.Label("patient")
            with html.Select(v_model=("patient",), **_testid("patient-select")):
                html.Option("{{ p }}", v_for="p in patients", key="p", value=("p",))
            html.Label("session")
            with html.Select(v_model=("session_key",), **_testid("session-select")):
                html.Option("{{ s.title }}", v_for="s in session_items", key="s.value", value=("s.value",))
            html.Label("reader")
            html.Span("{{ reader }}", classes="netpet-reader", **_testid("reader"))
            with html.Label():
                html.Input(type="checkbox", v_model=("show_segments",), **_testid("segments-toggle"))
                html.Span("segmentations")
            with html.Label():
                html.Input(type="checkbox", v_model=("compare",), **_testid("compare-toggle"))
                html.Span("compare PET/CT | PET/MR")
            html.Input(v_model=("goto_text",), placeholder="R, A, S (mm)", size=16, **_testid("goto-ras"))
            html.Button("go to", click=self.go_to, **_testid("btn-goto"))
            html.Label("PET SUV 0-{{ pet_window }}")
            html.Input(type="range", min=1, max=("pet_window_max",), step=0.5, value=("pet_window",),
                       change=(self.set_window, "[$event.target.value]"),
                       **_testid("window-slider"))

    def _lesion_panel(self):
        with html.Div(classes="netpet-panel"):
            html.Div("{{ session_label }}", classes="netpet-small", **_testid("session-label"))
            html.Div("{{ partner_label }}", v_if="compare", classes="netpet-small", **_testid("partner-label"))
            with html.Div(v_if="quiz", classes="netpet-quiz", **_testid("quiz")):
                html.Div("{{ case_title }}", style="font-weight:bold")
                html.Pre("{{ quiz }}", classes="netpet-pre")
            with html.Table(classes="netpet-table", **_testid("lesion-list")):
                with html.Thead():
                    with html.Tr():
                        for title in ("lesion", "reader", "region", "call", "Krenning", "SUVmax", "T/L", "status",
                                      "flags"):
                            html.Th(title)
                with html.Tbody():
                    with html.Tr(v_for="l in lesions", key="l.key",
                                 classes=("{selected: l.key === selected, pending: l.pending, partner: l.group}",),
                                 click=(self.select_lesion, "[l.key]"),
                                 __properties=[("testid", "data-testid"), ("reader_attr", "data-reader"),
                                               ("status_attr", "data-status")],
                                 testid=("(l.group ? 'partner-row-' : 'lesion-row-') + l.id",),
                                 reader_attr=("l.reader",),
                                 status_attr=("l.status",)):
                        for key in ("id", "reader", "region", "call", "krenning", "suv_max", "tl_ratio", "status",
                                    "flags"):
                            html.Td(f"{{{{ l.{key} }}}}", classes=f"col-{key}")
            with html.Div(classes="netpet-form"):
                html.Div("{{ selected ? 'finding ' + selected : 'click a lesion in a view to segment it' }}",
                         classes="netpet-small", **_testid("selected"))
                html.Div("{{ selected_warnings }}", v_if="selected && selected_warnings", classes="netpet-small",
                         style="color:#a33", **_testid("finding-warnings"))
                self._select("call", "form_call", "call_choices", "form-call")
                self._select("confidence", "form_confidence", "confidence_choices", "form-confidence")
                self._select("correlate", "form_correlate", "correlate_choices", "form-correlate")
                with html.Div(classes="netpet-row"):
                    html.Label("region")
                    html.Input(v_model=("form_region",), **_testid("form-region"))
                with html.Div(classes="netpet-row"):
                    html.Label("lesion type")
                    html.Input(v_model=("form_lesion_type",), **_testid("form-lesion-type"))
                with html.Div(classes="netpet-row"):
                    html.Button("Accept", click=self.accept, disabled=("busy",), **_testid("btn-accept"))
                    html.Button("Record", click=self.record, disabled=("busy",), **_testid("btn-record"))
                    html.Button("Reject", click=self.reject, disabled=("busy",), **_testid("btn-reject"))
                with html.Div(classes="netpet-row"):
                    html.Label("reason")
                    html.Input(v_model=("form_reason",), placeholder="why a saved finding is retracted",
                               **_testid("form-reason"))
                with html.Div(classes="netpet-row"):
                    self._select("method", "edit_method", "method_choices", "edit-method")
                    html.Label("fraction", v_if="fraction_supported")
                    html.Input(v_model=("edit_fraction",), placeholder="0-1", size=4, v_if="fraction_supported",
                               **_testid("edit-fraction"))
                    html.Button("Edit", click=self.edit, disabled=("busy",), **_testid("btn-edit"))
                if self.mode == "teach":
                    html.Button("Finish", click=self.finish, disabled=("busy || feedback",), **_testid("btn-finish"))
            html.Div("{{ status }}", classes="netpet-status", **_testid("status-line"))
            with html.Div(classes="netpet-messages"):
                html.Div("{{ m }}", v_for="(m, i) in messages", key="i")

    @staticmethod
    def _select(label, model, items, testid):
        with html.Div(classes="netpet-row"):
            html.Label(label)
            with html.Select(v_model=(model,), **_testid(testid)):
                html.Option("{{ c }}", v_for=f"c in {items}", key="c", value=("c",))

    def _feedback_panel(self):
        html.Div("Score", style="font-weight:bold")
        html.Pre("{{ feedback.text }}", classes="netpet-pre", **_testid("feedback-text"))
        with html.Table(classes="netpet-table"):
            with html.Tr():
                for title in ("", "TP", "FP", "FN", "TN", "sensitivity", "specificity"):
                    html.Th(title)
            for level in ("lesion", "patient"):
                with html.Tr(**_testid(f"feedback-{level}")):
                    html.Td(level)
                    for key in ("tp", "fp", "fn", "tn", "sensitivity", "specificity"):
                        html.Td(f"{{{{ feedback.{level}.{key} }}}}", classes=f"fb-{key}")
        html.Div("Lesson", style="font-weight:bold")
        html.Pre("{{ feedback.lesson }}", classes="netpet-pre")
        html.Div("Answers", style="font-weight:bold")
        html.Pre("{{ feedback.answers_markdown }}", classes="netpet-pre")

    # -- status ------------------------------------------------------------------------------------------------
    def say(self, *messages: str):
        """Show the messages (every warning and refusal of a Logic call) on the status line and in the log panel:
        sent to the page with the other changes when the handler ends (or the state is next flushed), so that a
        page reading the status sees the list it speaks of."""
        texts = [str(m) for m in messages if m]
        if not texts:
            return
        for text in texts:
            log.info("%s", text)
        self.state.status = " | ".join(texts)
        self.state.messages = (texts[::-1] + list(self.state.messages or []))[:30]

    def render(self, group: Optional[int] = None):
        """Ask the slice views (of one group, or all) for a frame (after each Logic call: MRML changes do not
        always redraw)."""
        for view in self.slicer_app.view_manager.get_slice_views(group):
            view.schedule_render()

    def _logic_call(self, what: str, function: Callable, /, *args, **kwargs):
        """Run a Logic call on the loop thread: its refusal (a ValueError/NetpetError/OSError sentence) and every
        warning it logs go to the status line, as does any other exception (named by its type, its traceback in the
        server's log at debug level only); returns (ok, result)."""
        from netpet.errors import NetpetError

        with _collect_warnings() as warnings:
            try:
                result = function(*args, **kwargs)
            except (ValueError, NetpetError, OSError) as exc:
                self.say(f"{what}: {exc}", *warnings)
                self.render()
                return False, None
            except Exception as exc:  # noqa: BLE001 (e.g. a KeyError of a damaged file: one sentence, not a crash)
                log.error("%s: %s: %s", what, type(exc).__name__, exc)
                log.debug("%s", what, exc_info=True)
                self.say(f"{what}: unexpected {type(exc).__name__} ({exc}); nothing more was changed.", *warnings)
                self.render()
                return False, None
        if warnings:
            self.say(*warnings)
        self.render()
        return True, result

    # -- sessions ------------------------------------------------------------------------------------------------
    def _record(self, key):
        return next((s for s in self.sessions if s["key"] == key), None)

    @_guarded
    def _on_patient(self, patient, **_):
        items = [{"title": f"{s['session']} ({s['tracer']})", "value": s["key"]} for s in self.sessions
                 if s["patient_id"] == patient]
        self.state.session_items = items
        if items and self.state.session_key not in [i["value"] for i in items]:
            self.state.session_key = items[0]["value"]

    @_guarded
    def _on_session(self, session_key, **_):
        if session_key and (self.shown[0] is None or self.shown[0].record["key"] != session_key):
            self.select_session(session_key)

    def select_session(self, key: str):
        """Load (or show again) a session in the main views; its partner too in compare mode."""
        record = self._record(key)
        if record is None:
            self.say("No such session in this study; choose one in the list.")
            return
        loaded = self._load(record)
        if loaded is None:
            return
        with self.state:
            self.state.patient = record["patient_id"]
            self._on_patient(record["patient_id"])
            self.state.session_key = key
            self.state.session_label = f"{loaded.patient_id} {loaded.session_id}: {record['session']}"
            self.state.selected = ""
            self.state.pet_window_max = max(1, int(math.ceil(loaded.suv_max)))
        self._show(0, loaded)
        if self.state.compare:
            self._show_partner()
        else:
            self._show(1, None)
        self._mip()
        self.refresh_lesions()
        if self.feedback is not None:
            self._show_truth()

    def _load(self, record) -> Optional[Loaded]:
        if record["key"] in self.loaded:
            return self.loaded[record["key"]]
        t0 = time.perf_counter()
        ok, nodes_ = self._logic_call(
            f"Loading {record['session']}", self.reader_logic.loadSession, self.index, record["pet_series_uid"],
            window=(0.0, self._window()), opacity=DEFAULT_OPACITY, patientID=record["patient_id"])
        if not ok:
            return None
        pet, anatomical = nodes_
        ok, key = self._logic_call("The session's id in the study table", self.quant.sessionIDFor, pet,
                                   self.study.table)
        session_id, warning = key if ok else ("", "")
        if warning:
            self.say(warning)
        loaded = Loaded(record, pet, anatomical, session_id, self.quant.session(pet).patient_id)
        from slicer.util import arrayFromVolume

        loaded.suv_max = float(np.nanmax(arrayFromVolume(pet)))
        self.loaded[record["key"]] = loaded
        self._load_saved(loaded)
        self._evict()
        self.timings.setdefault("first_load_s", time.perf_counter() - t0)
        create_task(self._warm_up(loaded))
        return loaded

    def _load_saved(self, loaded: Loaded):
        """Draw the session's saved findings from their .seg.nrrd files (SUVQuantLogic.loadSegmentationFile; every
        reader's in review, the trainee's own in teaching), so that a reviewer sees what was segmented. A retracted
        finding is hidden, and so is one of this reader that this page drew from its own node. Read again after
        each change of the table (Accept, Record, Reject)."""
        from netpet.errors import NetpetError

        if not loaded.session_id or not os.path.exists(self.study.table):
            return
        try:
            rows = studies.session_lesions(self.study.table, loaded.patient_id, loaded.session_id,
                                           reader=self.reader if self.mode == "teach" else None)
        except (NetpetError, ValueError, OSError) as exc:
            self.say(f"Reading {self.study.table}: {exc}")
            return
        files: Dict[str, List[Dict[str, Any]]] = {}
        for row in rows:
            if row.get("lesion_id") and row.get("segmentation_file"):
                files.setdefault(str(row["segmentation_file"]), []).append(row)
        group = next((g for g, v in self.shown.items() if v is loaded), None)
        for name, findings in files.items():
            try:
                path = studies.inside(self.study.root, os.path.join(os.path.dirname(self.study.table), name))
            except NetpetError as exc:
                self.say(f"The segmentation {name} of {findings[0]['reader']}'s findings is not drawn: {exc}")
                continue
            if not os.path.isfile(path):
                self.say(f"The segmentation {name} of {findings[0]['reader']}'s findings "
                         f"({', '.join(r['lesion_id'] for r in findings)}) is missing; export them again (netpet "
                         "quantify or SUV Quant) to see them here.")
                continue
            ok, node = self._logic_call(f"Reading {name}", self.quant.loadSegmentationFile, path)
            if not ok:
                continue
            loaded.saved[path] = node
            hidden = {r["lesion_id"] for r in findings if r.get("retracted")}
            hidden |= {r["lesion_id"] for r in findings if r["reader"] == self.reader and r["lesion_id"] in
                       loaded.segmentations}
            segmentation, display = node.GetSegmentation(), node.GetDisplayNode()
            for number in range(segmentation.GetNumberOfSegments()):
                segment_id = segmentation.GetNthSegmentID(number)
                shown = not ({segment_id, segmentation.GetSegment(segment_id).GetName()} & hidden)
                display.SetSegmentVisibility(segment_id, shown)
            if group is not None and self.slicer_app.view_manager.get_views(group):
                self.slicer_app.display_manager.set_node_visible_in_group(node, group)
                display.SetVisibility(bool(self.state.show_segments))
            else:  # an empty list of views would mean every view
                display.SetVisibility(False)
        self.render()

    def _evict(self):
        """Keep at most LOADED_SESSIONS sessions in the scene (oldest first; never one shown, one a click is being
        segmented in, or one with findings not accepted yet)."""
        kept = {id(v) for v in (*self.shown.values(), self._busy) if v is not None}
        while len(self.loaded) > LOADED_SESSIONS:
            key, old = next(((k, v) for k, v in self.loaded.items() if id(v) not in kept and not v.pending),
                            (None, None))
            if old is None:
                return
            for node in (old.pet, old.anatomical, *old.segmentations.values(), *old.saved.values()):
                if node is not None:
                    self.slicer_app.scene.RemoveNode(node)
            del self.loaded[key]

    @_guarded
    async def _warm_up(self, loaded: Loaded):
        """The PET's per-volume quantities (those SUVQuantLogic.warmUp measures: body level, outline sigma, noise
        correlation) and its automatic liver reference, in a worker thread, so that the first click costs what
        later ones do. warmUp itself is not called: it would read the node and measure in one go, on the loop
        thread; here the prepared volume is read from the node on the loop thread (preparePET) and measured in
        the worker."""
        from netpet.errors import NetpetError
        from netpet.quant.references import auto_liver
        from netpet.quant.segment import warm_up

        await asyncio.sleep(0)  # after the session is on the page
        t0 = time.perf_counter()
        try:
            prepared = self.quant.preparePET(loaded.pet)
            await asyncio.to_thread(warm_up, prepared)
            loaded.liver_ras = tuple(float(v) for v in await asyncio.to_thread(auto_liver, prepared))
        except (NetpetError, ValueError) as exc:  # e.g. no liver found: said now, and again by each measurement
            self.say(f"Preparing {loaded.pet.GetName()}: {exc}")
        self.timings.setdefault("warm_up_s", time.perf_counter() - t0)

    def _show(self, group: int, loaded: Optional[Loaded], reset: bool = True):
        """PET over its CT/MR in the slice views of one group (0: main, 1: partner); ``reset`` fits the views to
        the volume (off: they stay where the reader left them)."""
        self.shown[group] = loaded
        for view in self.slicer_app.view_manager.get_slice_views(group):
            view.set_background_volume_id(loaded.anatomical.GetID() if loaded and loaded.anatomical else None)
            view.set_foreground_volume_id(loaded.pet.GetID() if loaded else None)
            view.set_foreground_opacity(DEFAULT_OPACITY)
        shown = [v for v in self.shown.values() if v is not None]
        for item in self.loaded.values():  # findings show in the views of their own session only
            for node in (*item.segmentations.values(), *item.saved.values()):
                display = node.GetDisplayNode()
                if display is not None:
                    display.SetVisibility(bool(self.state.show_segments) and any(item is v for v in shown))
                    if item is loaded:
                        self.slicer_app.display_manager.set_node_visible_in_group(node, group)
        if loaded is not None:
            self._apply_window(loaded)
            if reset:
                self.slicer_app.display_manager.reset_views(group)
        self.render()

    def _partner(self) -> Optional[dict]:
        current = self.shown[0].record if self.shown[0] else None
        if current is None:
            return None
        partners = studies.partner_sessions(self.sessions, current)
        return partners[0] if partners else None

    def _show_partner(self):
        partner = self._partner()
        if partner is None:
            self.say(f"{self.shown[0].patient_id} has no other hybrid session with the same tracer to compare "
                     "(PET/CT beside PET/MR).")
            self._show(1, None)
            return False
        loaded = self._load(self._record(partner["key"]) if "key" in partner else
                            self._record(f"{partner['patient_id']}|{partner['pet_series_uid']}"))
        if loaded is None:
            return False
        # loadSession fused every view with the partner: the main views back, where the reader left them
        self._show(0, self.shown[0], reset=False)
        self._show(1, loaded)
        with self.state:
            self.state.partner_label = f"beside: {loaded.session_id}: {loaded.record['session']}"
        return True

    @_guarded
    def _on_show_segments(self, show_segments, **_):
        """Show or hide every finding's segmentation (the PET under a contour can be read without it)."""
        shown = [v for v in self.shown.values() if v is not None]
        for item in shown:
            for node in (*item.segmentations.values(), *item.saved.values()):
                if node.GetDisplayNode() is not None:
                    node.GetDisplayNode().SetVisibility(bool(show_segments))
        self.render()

    @_guarded
    def _on_compare(self, compare, **_):
        if compare:
            if self.shown[0] is None or not self._show_partner():
                with self.state:
                    self.state.compare = False
                return
            self.layouts.set_layout("compare")
        else:
            self.layouts.set_layout("single")
            self._show(1, None)
        self.refresh_lesions()
        if self.feedback is not None:
            self._show_truth()
        self.render()

    def _window(self) -> float:
        """The PET window's upper end (SUV): the state's, when it is a positive number (the page can set it)."""
        number = _number(self.state.pet_window)
        return number if number is not None and number > 0 else DEFAULT_WINDOW_MAX

    def _apply_window(self, loaded: Loaded):
        display = loaded.pet.GetDisplayNode()
        if display is not None:
            display.SetWindowLevelMinMax(0.0, self._window())

    @_guarded
    def set_window(self, value):
        """The PET window's upper end (SUV) from the slider, on release."""
        number = _number(value)
        if number is not None and number > 0:
            self.state.pet_window = number

    @_guarded
    def _on_window(self, pet_window, **_):
        if not (_number(pet_window) or 0) > 0:
            return
        for loaded in self.shown.values():
            if loaded is not None:
                self._apply_window(loaded)
        self._mip()
        self.render()

    # -- MIP -----------------------------------------------------------------------------------------------------
    def _mip(self):
        """The coronal MIP of the shown PET as a PNG data URI (inverted grey, SUV 0 to the window)."""
        from PIL import Image

        loaded = self.shown[0]
        if loaded is None:
            return
        if loaded.mip is None:
            loaded.mip = _coronal_mip(loaded.pet)
        values, _, size = loaded.mip
        grey = 255 - np.clip(values / self._window() * 255.0, 0, 255).astype(np.uint8)
        image = Image.fromarray(grey, "L").resize(size, Image.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        with self.state:
            self.state.mip_src = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
            self.state.mip_width = size[0]

    @_guarded
    def on_mip_click(self, x, y, width, height):
        """Centre every slice view on the hottest voxel along the clicked ray of the MIP."""
        loaded = self.shown[0]
        x, y, width, height = (_number(v) for v in (x, y, width, height))
        if loaded is None or loaded.mip is None or None in (x, y) or not width or not height:
            return
        values, argmax_to_ras, _ = loaded.mip
        col = int(min(max(x / width, 0.0), 0.999999) * values.shape[1])
        row = int(min(max(y / height, 0.0), 0.999999) * values.shape[0])
        ras = argmax_to_ras(row, col)
        self.centre_on(ras)
        self.say(f"Centred on {_ras_text(ras)} (the hottest voxel under the MIP click).")

    @_guarded
    def go_to(self):
        """Centre every slice view on the R, A, S point typed (mm)."""
        text = str(self.state.goto_text or "")
        values = [_number(v) for v in re.split(r"[,;\s]+", text.strip()) if v]
        if len(values) != 3 or any(v is None for v in values):
            self.say(f"{printable(text[:40])!r} is not a point R, A, S: give three numbers in mm, e.g. -40, 20, "
                     "-640.")
            return
        self.centre_on(values)
        self.say(f"Centred on {_ras_text(values)}.")

    # -- views and clicks ----------------------------------------------------------------------------------------
    def centre_on(self, ras, group: int = 0):
        """Centre the slice views of one group (0: the session, 1: the compared one) on a RAS point: each session
        has its own scanner frame, so the point of one is not the same place in the other."""
        for view in self.slicer_app.view_manager.get_slice_views(group):
            view.get_view_node().JumpSliceByCentering(float(ras[0]), float(ras[1]), float(ras[2]))
        self.render(group)

    def _observe_clicks(self):
        for view in self.slicer_app.view_manager.get_slice_views():
            interactor = view.interactor()
            interactor.AddObserver("LeftButtonPressEvent", lambda o, e, v=view: self._on_press(v), 10.0)
            interactor.AddObserver("LeftButtonReleaseEvent", lambda o, e, v=view: self._on_release(v), 10.0)

    @_guarded
    def _on_press(self, view):
        self._press[view.get_singleton_tag()] = tuple(view.interactor().GetEventPosition())

    @_guarded
    def _on_release(self, view):
        start = self._press.pop(view.get_singleton_tag(), None)
        x, y = view.interactor().GetEventPosition()
        if start is None or abs(x - start[0]) > CLICK_TOLERANCE_PX or abs(y - start[1]) > CLICK_TOLERANCE_PX:
            return
        xy_to_ras = view.get_view_node().GetXYToRAS()
        ras = tuple(sum(xy_to_ras.GetElement(i, j) * c for j, c in enumerate((x, y, 0.0, 1.0))) for i in range(3))
        self.timings["click_t0"] = time.perf_counter()
        self.segment_at(view.get_view_group(), ras)

    def _next_id(self, loaded: Loaded) -> str:
        """The next free finding id of this reader in the session (L01 ..., T01 ... in teaching)."""
        prefix = "T" if self.mode == "teach" else "L"
        try:
            used = {str(r.get("lesion_id")) for r in self._table_rows(loaded) if r.get("reader") == self.reader}
        except Exception:  # noqa: BLE001 (an unreadable table is said by the list; the ids of this page still count)
            used = set()
        used |= set(loaded.pending)
        used |= set(loaded.segmentations)
        numbers = [int(m.group(1)) for u in used for m in [re.fullmatch(prefix + r"(\d+)", u)] if m]
        return f"{prefix}{(max(numbers) + 1) if numbers else 1:02d}"

    def _refusal(self) -> str:
        """Why the table cannot be changed now ('' when it can): a click still being segmented, or (teaching) the
        round finished (the score shown is of the table as it was at Finish)."""
        if self._busy is not None:
            return "Still segmenting the last click; try again when it is done."
        if self.feedback is not None:
            return "The round is finished: the score shown is final, so the marks and calls stay as they were."
        return ""

    def segment_at(self, group: int, ras, finding_id: Optional[str] = None, method: str = "adaptive",
                   fraction: Optional[float] = None) -> bool:
        """Segment at a RAS point of the session shown in ``group`` through SUVQuantLogic: the compute in a worker
        thread (a task started here), the segment written and measured on the loop thread; the finding is pending
        in that session until Accept, whichever session is shown by then. Returns whether the task started."""
        loaded = self.shown.get(group)
        if loaded is None:
            return False
        refusal = self._refusal()
        if refusal:
            self.say(refusal)
            return False
        if group != 0:
            self.say("Findings are made in the main (upper) views; click there.")
            return False
        self._busy = loaded
        with self.state:
            self.state.busy = True
        create_task(self._segment(loaded, tuple(float(v) for v in ras), finding_id, method, fraction))
        return True

    @_guarded
    async def _segment(self, loaded, ras, finding_id, method, fraction):
        try:
            await self._segment_in(loaded, ras, finding_id or self._next_id(loaded), method, fraction)
        finally:
            self._busy = None
            with self.state:
                self.state.busy = False

    async def _segment_in(self, loaded, ras, finding_id, method, fraction):
        from netpet.errors import NetpetError

        node = loaded.segmentations.get(finding_id)
        if node is None:
            node = self.slicer_app.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{finding_id} {self.reader}")
            node.CreateDefaultDisplayNodes()
            node.SetReferenceImageGeometryParameterFromVolumeNode(loaded.pet)
            self.slicer_app.display_manager.set_node_visible_in_group(node, 0)
        options = {"method": method, "liverRAS": loaded.liver_ras}
        if fraction is not None:
            options["fraction"] = fraction
        with _collect_warnings() as warnings:
            try:
                prepared = self.quant.preparePET(loaded.pet)
                lesion = await asyncio.to_thread(self.quant.computeLesion, prepared, ras, **options)
                if lesion.separable:
                    self.quant.writeLesion(loaded.pet, node, finding_id, lesion, ras)
            except Exception as exc:  # noqa: BLE001 (a refusal, ValueError/NetpetError, or another: one sentence)
                self._drop_node(loaded, finding_id, node)
                if not isinstance(exc, (ValueError, NetpetError)):
                    log.error("Segmenting at %s: %s: %s", _ras_text(ras), type(exc).__name__, exc)
                    log.debug("Segmenting", exc_info=True)
                    exc = f"unexpected {type(exc).__name__} ({exc})"
                self.say(f"No finding at {_ras_text(ras)}: {exc}", *warnings)
                self.render()
                return
        if not lesion.separable:
            self._drop_node(loaded, finding_id, node)
            self.say(self.quant.clickMessage(finding_id, lesion), *warnings)
            self.render()
            return
        loaded.segmentations[finding_id] = node
        ok, rows = self._logic_call(f"Measuring {finding_id}", self.quant.measureSegmentation, loaded.pet, node,
                                    liverRAS=loaded.liver_ras, reader=self.reader, segmentIDs=[finding_id])
        if not ok:
            if finding_id not in loaded.pending:  # a new finding that cannot be measured is not kept
                self.slicer_app.scene.RemoveNode(loaded.segmentations.pop(finding_id))
                self.render()
            return
        row = rows[0]
        loaded.pending[finding_id] = {"row": row, "seed": ras, "method": method, "fraction": fraction}
        self.timings["click_to_lesion_s"] = time.perf_counter() - self.timings.get("click_t0", time.perf_counter())
        messages = [f"{finding_id} at {_ras_text(ras)} (pending: Accept saves it)",
                    self.quant.clickMessage(finding_id, lesion)]
        if loaded is not self.shown[0]:  # the session was changed while the click was segmented
            messages[0] = (f"{finding_id} at {_ras_text(ras)} is pending in {loaded.patient_id} "
                           f"{loaded.record['session']}: open that session again to Accept it")
        messages += [w for w in str(row.get("warnings") or "").split(" | ") if w]
        self.say(*messages, *warnings)
        self.refresh_lesions(select=finding_id if loaded is self.shown[0] else None)
        self.render()

    def _drop_node(self, loaded, finding_id, node):
        if finding_id not in loaded.segmentations:
            self.slicer_app.scene.RemoveNode(node)

    # -- the lesion list -----------------------------------------------------------------------------------------
    def _table_rows(self, loaded: Optional[Loaded]) -> List[Dict[str, Any]]:
        """The session's findings in the study table (teaching: the trainee's only)."""
        if loaded is None or not loaded.session_id or not os.path.exists(self.study.table):
            return []
        reader = self.reader if self.mode == "teach" else None
        return studies.session_lesions(self.study.table, loaded.patient_id, loaded.session_id, reader=reader)

    def refresh_lesions(self, select: Optional[str] = None):
        """The list: the session's rows of the study table (teaching: the trainee's only) and the pending findings."""
        from netpet.errors import NetpetError

        def rows_of(loaded):
            try:
                return [row for row in self._table_rows(loaded) if row.get("lesion_id")]
            except (NetpetError, ValueError, OSError) as exc:
                self.say(f"Reading the study table {os.path.basename(self.study.table)}: {exc}")
                return []

        main = self.shown[0]
        items = [_list_item(row, pending=False) for row in rows_of(main)]
        for finding_id, pending in (main.pending if main is not None else {}).items():
            items.append(_list_item({**pending["row"], "lesion_id": finding_id, "reader": self.reader,
                                     "finding_status": "pending"}, pending=True))
        if self.state.compare and self.shown[1] is not None:  # the compared session's findings, read-only
            for row in rows_of(self.shown[1]):
                item = _list_item(row, pending=False)
                items.append({**item, "key": "partner|" + item["key"], "group": 1})
        self.items = items
        with self.state:
            self.state.lesions = items
            if select is not None:
                key = f"{self.reader}|{select}"
                self.state.selected = key if self._item(key) is not None else ""
                if self.state.selected:
                    self._fill_form(self.state.selected)
            elif self._item(self.state.selected) is None:  # the finding selected is no longer listed
                self.state.selected = ""

    def _item(self, key):
        return next((i for i in self.items if i["key"] == key), None)

    @_guarded
    def select_lesion(self, key):
        """A click on a row: every slice view centres on the finding's centroid; the form shows its reading."""
        item = self._item(key)
        if item is None:
            return
        with self.state:
            self.state.selected = key
            self._fill_form(key)
        if item.get("r") is not None:
            self.centre_on((item["r"], item["a"], item["s"]), item.get("group", 0))

    def _fill_form(self, key):
        item = self._item(key)
        if item is None:
            return
        details = [f"flags: {item['flags']}" if item.get("flags") else "", item.get("warnings") or ""]
        self.state.selected_warnings = " | ".join(d for d in details if d)
        self.state.form_region = item.get("region") or ""
        self.state.form_lesion_type = item.get("lesion_type") or ""
        from netpet.reading.findings import form_key

        self.state.form_call = form_key(item.get("reader_call"))
        self.state.form_confidence = form_key(item.get("confidence_text"))
        self.state.form_correlate = form_key(item.get("anatomic_correlate"))

    def _form_text(self, name: str) -> str:
        """A text field of the form (the page may send any JSON value: anything but text counts as empty)."""
        value = self.state[name]
        return value.strip() if isinstance(value, str) else ""

    def _selected(self):
        """The selected finding of the main session, for a change of the table (None, said why, when there is none
        or the table cannot be changed now)."""
        refusal = self._refusal()
        if refusal:
            self.say(refusal)
            return None
        item = self._item(self.state.selected)
        if item is None:
            self.say("Select a finding in the list first (or click a lesion in a view).")
        elif item.get("group"):
            self.say(f"{item['id']} is a finding of the compared session ({self.shown[1].session_id}); open that "
                     "session to change it.")
            return None
        return item

    # -- accept, reject, edit, record ----------------------------------------------------------------------------
    @_guarded
    def accept(self):
        """Export the selected pending finding: SUVQuantLogic.exportToStudyTable (the study table's code and audit
        trail, its .seg.nrrd beside the table), then the reading form's call and confidence through recordReading."""
        item = self._selected()
        loaded = self.shown[0]
        if item is None or loaded is None:
            return
        if not item["pending"]:
            self.say(f"{item['id']} is in the study table already; Record changes its reading, Reject retracts it.")
            return
        finding_id = item["id"]
        pending, node = loaded.pending.get(finding_id), loaded.segmentations.get(finding_id)
        if pending is None or node is None:
            self.say(f"{finding_id} is no longer pending in this session; the list is shown again.")
            self.refresh_lesions()
            return
        region, lesion_type = self._form_text("form_region"), self._form_text("form_lesion_type")
        regions = {finding_id: region} if region else None
        types = {finding_id: lesion_type} if lesion_type else None
        ok, result = self._logic_call(f"Accepting {finding_id}", self.quant.exportToStudyTable, [pending["row"]],
                                      self.study.table, loaded.pet, node, reader=self.reader,
                                      sessionID=loaded.session_id or None, patientID=loaded.patient_id,
                                      regions=regions, lesionTypes=types)
        if not ok:
            return
        loaded.session_id = result["session_id"]
        del loaded.pending[finding_id]
        self.say(f"{finding_id} saved to {os.path.basename(self.study.table)} (session {result['session_id']}), "
                 f"segmentation {result['segmentation_file']}", *result.get("warnings", []))
        if self._form_values():
            self._record_reading(loaded, finding_id)
        self._load_saved(loaded)
        self.refresh_lesions(select=finding_id)

    def _form_values(self) -> Dict[str, Any]:
        values = {"call": self.state.form_call, "confidence": self.state.form_confidence,
                  "correlate": self.state.form_correlate}
        return {k: v for k, v in values.items() if v and v != "unset"}

    def _record_reading(self, loaded, finding_id) -> bool:
        values = self._form_values()
        if not values:
            self.say(f"Choose a call, a confidence or an anatomic correlate for {finding_id} first.")
            return False
        ok, written = self._logic_call(f"Recording the reading of {finding_id}", self.quant.recordReading,
                                       self.study.table, loaded.pet, self.reader, finding_id,
                                       sessionID=loaded.session_id or None, patientID=loaded.patient_id, **values)
        if ok:
            self.say(f"{finding_id}: reading recorded ({written} change{'s' if written != 1 else ''} in the audit "
                     "trail)")
        return ok

    @_guarded
    def record(self):
        """Record the reader's call, confidence and anatomic correlate of the selected finding (recordReading);
        a changed region or lesion type of a finding segmented here is written by exporting it again, of one saved
        before this page by relabelFinding (the table's labels; its segmentation file keeps its own)."""
        item = self._selected()
        loaded = self.shown[0]
        if item is None or loaded is None:
            return
        finding_id = item["id"]
        if item["reader"] != self.reader:
            self.say(f"{finding_id} is {item['reader']}'s finding; a reader records their own findings only.")
            return
        if item["pending"]:
            self.say(f"{finding_id} is not saved yet; Accept saves it with the reading chosen in the form.")
            return
        region, lesion_type = self._form_text("form_region"), self._form_text("form_lesion_type")
        labels_changed = region != (item.get("region") or "") or lesion_type != (item.get("lesion_type") or "")
        if labels_changed:
            node = loaded.segmentations.get(finding_id)
            if node is None:  # saved before this page: the labels change in the table (its code and audit trail)
                self._logic_call(f"Saving the labels of {finding_id}", self.quant.relabelFinding, self.study.table,
                                 loaded.pet, self.reader, finding_id, region=region,
                                 lesionType=lesion_type, sessionID=loaded.session_id or None,
                                 patientID=loaded.patient_id)
            else:
                ok, rows = self._logic_call(f"Measuring {finding_id}", self.quant.measureSegmentation, loaded.pet,
                                            node, liverRAS=loaded.liver_ras, reader=self.reader,
                                            segmentIDs=[finding_id])
                if ok:
                    self._logic_call(f"Saving the labels of {finding_id}", self.quant.exportToStudyTable, rows,
                                     self.study.table, loaded.pet, node, reader=self.reader,
                                     sessionID=loaded.session_id or None, patientID=loaded.patient_id,
                                     regions={finding_id: region}, lesionTypes={finding_id: lesion_type})
        if self._form_values() or not labels_changed:
            self._record_reading(loaded, finding_id)
        self._load_saved(loaded)
        self.refresh_lesions(select=finding_id)

    @_guarded
    def reject(self):
        """Drop the selected pending finding, or retract a saved one with the reason given (retractFinding)."""
        item = self._selected()
        loaded = self.shown[0]
        if item is None or loaded is None:
            return
        finding_id = item["id"]
        if item["pending"]:
            node = loaded.segmentations.pop(finding_id, None)
            if node is not None:
                self.slicer_app.scene.RemoveNode(node)
            loaded.pending.pop(finding_id, None)
            self.say(f"{finding_id} dropped (it was not saved).")
            self.render()
        else:
            reason = self._form_text("form_reason")
            ok, _ = self._logic_call(f"Retracting {finding_id}", self.quant.retractFinding, self.study.table,
                                     loaded.pet, self.reader, finding_id, reason, sessionID=loaded.session_id or None,
                                     patientID=loaded.patient_id)
            if not ok:
                return
            self.say(f"{finding_id} retracted ({reason}); it stays in the table, counted by no analysis")
        self._load_saved(loaded)
        self.refresh_lesions(select=None)
        with self.state:
            self.state.selected = ""

    @_guarded
    def edit(self):
        """Segment the selected finding again at its seed with the method (and fraction) chosen."""
        item = self._selected()
        loaded = self.shown[0]
        if item is None or loaded is None:
            return
        if not item["pending"]:
            self.say(f"{item['id']} is saved; click at the lesion for a new finding to segment it otherwise.")
            return
        fraction = None
        text = str(self.state.edit_fraction or "").strip()
        if text:
            fraction = _number(text)
            if fraction is None or not 0 < fraction < 1:
                self.say(f"The fraction {text!r} is not a number between 0 and 1 (e.g. 0.41); leave it empty for "
                         "the method's own.")
                return
        method = self.state.edit_method
        if method not in EDIT_METHODS:
            self.say(f"Choose a segmentation method among {', '.join(EDIT_METHODS)}.")
            return
        pending = loaded.pending.get(item["id"])
        if pending is None:
            self.say(f"{item['id']} is no longer pending in this session; the list is shown again.")
            self.refresh_lesions()
            return
        self.segment_at(0, pending["seed"], item["id"], method, fraction)

    # -- teaching ------------------------------------------------------------------------------------------------
    @_guarded
    def finish(self):
        """Score the trainee's table against the case's truth (teaching.score) and show the feedback; the table
        cannot be changed from the page afterwards (the score shown stays the table's)."""
        if self.mode != "teach":
            return
        from netpet.errors import NetpetError
        from netpet.review import teaching

        refusal = self._refusal()
        if refusal:
            self.say(refusal)
            return
        pending = [f"{finding_id} ({loaded.record['session']})" for loaded in self.loaded.values()
                   for finding_id in loaded.pending]
        if pending:
            them = "it" if len(pending) == 1 else "them"
            self.say(f"{', '.join(pending)} not saved yet: Accept or Reject {them} before Finish.")
            return
        try:
            # the table's path, so that its segmentation files are found beside it
            result = teaching.score(self.case, self.study.table if os.path.exists(self.study.table) else [])
            text = teaching.format_feedback(result)
        except (NetpetError, ValueError, OSError) as exc:
            self.say(f"Scoring: {exc}")
            return
        self.feedback = result
        with self.state:
            self.state.feedback = {**result, "text": text}
            self.state.case_title = getattr(self.case, "title", "")
        self._show_truth()
        self.say("Finished: the score and the case's truth are shown beside the views, the truth's contours in them.")

    def _show_truth(self):
        """After Finish: the case's truth segmentation (truth/<patient>/<session>_lesions.seg.nrrd, one segment per
        lesion) drawn as contours over the trainee's marks, in the views of its session (of each session shown
        after Finish too)."""
        for group, loaded in self.shown.items():
            if loaded is None:
                continue
            session = next((s for s in self.case.sessions
                            if s.get("pet_series_uid") and s["pet_series_uid"] == loaded.record.get("pet_series_uid")),
                           None)
            if session is None:
                continue
            path = os.path.join(self.case.root, "truth", self.case.patient_id,
                                f"{session['session_id']}_lesions.seg.nrrd")
            node = loaded.saved.get(path)
            if node is None:
                if not os.path.isfile(path):
                    self.say(f"The case has no truth segmentation for {session['session_id']}: the truth is in the "
                             "feedback's text only.")
                    continue
                ok, node = self._logic_call("Reading the case's truth", self.quant.loadSegmentationFile, path)
                if not ok:
                    continue
            display = node.GetDisplayNode()
            display.SetVisibility2DFill(False)  # contours: the trainee's filled marks stay visible under them
            display.SetSliceIntersectionThickness(2)
            loaded.saved[path] = node
            if self.slicer_app.view_manager.get_views(group):
                self.slicer_app.display_manager.set_node_visible_in_group(node, group)
                display.SetVisibility(bool(self.state.show_segments))
        self.render()


def _ras_text(ras) -> str:
    return ", ".join(f"{v:.1f}" for v in ras)


def _list_item(row: Dict[str, Any], pending: bool) -> Dict[str, Any]:
    """A study-table row (or a pending finding's measured row) as the list shows it."""
    centroid = [_number(row.get(k)) for k in ("centroid_r", "centroid_a", "centroid_s")]
    has_centroid = all(v is not None for v in centroid)
    confidence = row.get("confidence")
    return {
        "key": f"{row.get('reader')}|{row.get('lesion_id')}", "id": str(row.get("lesion_id") or ""),
        "reader": str(row.get("reader") or ""), "region": _text(row.get("region")),
        "lesion_type": _text(row.get("lesion_type")), "call": _text(row.get("call")),
        "krenning": _text(_number(row.get("krenning")), 0) if _number(row.get("krenning")) is not None else "",
        "suv_max": _text(_number(row.get("suv_max"))), "tl_ratio": _text(_number(row.get("tl_ratio"))),
        "status": "pending" if pending else _text(row.get("finding_status") or "active"),
        "flags": _text(row.get("flags")).replace(";", ", "), "warnings": _text(row.get("warnings")),
        "reader_call": _text(row.get("reader_call")),
        "confidence_text": "" if confidence is None else _text(int(confidence) if isinstance(confidence, float)
                                                               and confidence.is_integer() else confidence),
        "anatomic_correlate": _text(row.get("anatomic_correlate")),
        "r": centroid[0] if has_centroid else None, "a": centroid[1] if has_centroid else None,
        "s": centroid[2] if has_centroid else None, "pending": pending,
    }


def _coronal_mip(pet):
    """(MIP values rows x cols, (row, col) -> RAS of the hottest voxel on that ray, display size (w, h)).

    The projection runs along the volume axis closest to A (anterior); rows are S from the top (superior up),
    columns R from the patient's right on the left of the screen, as the slice views show them."""
    import vtk
    from slicer.util import arrayFromVolume

    values = np.asarray(arrayFromVolume(pet), dtype=np.float32)  # k, j, i
    matrix = vtk.vtkMatrix4x4()
    pet.GetIJKToRASMatrix(matrix)
    m = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    # array axis of each of i, j, k: i is axis 2, j axis 1, k axis 0
    axis_of = {0: 2, 1: 1, 2: 0}
    ijk_a = int(np.argmax(np.abs(m[1, :3])))
    rest = [c for c in range(3) if c != ijk_a]
    ijk_r = max(rest, key=lambda c: abs(m[0, c]))
    ijk_s = next(c for c in rest if c != ijk_r)
    mip = values.max(axis=axis_of[ijk_a])
    argmax = values.argmax(axis=axis_of[ijk_a])
    # the two remaining array axes, in array order; put S on rows, R on columns
    remaining = [a for a in (0, 1, 2) if a != axis_of[ijk_a]]
    order = [remaining.index(axis_of[ijk_s]), remaining.index(axis_of[ijk_r])]
    mip, argmax = mip.transpose(order), argmax.transpose(order)
    flip_rows = m[2, ijk_s] > 0  # S grows with the index: superior is the last row, so flip
    flip_cols = m[0, ijk_r] > 0  # R grows with the index: the patient's right must be on the left, so flip
    if flip_rows:
        mip, argmax = mip[::-1], argmax[::-1]
    if flip_cols:
        mip, argmax = mip[:, ::-1], argmax[:, ::-1]
    n_s, n_r = mip.shape
    spacing = np.linalg.norm(m[:3, :3], axis=0)

    def to_ras(row: int, col: int):
        s_index = n_s - 1 - row if flip_rows else row
        r_index = n_r - 1 - col if flip_cols else col
        ijk = [0.0, 0.0, 0.0, 1.0]
        ijk[ijk_s], ijk[ijk_r], ijk[ijk_a] = s_index, r_index, float(argmax[row, col])
        return tuple(float(v) for v in (m @ np.array(ijk))[:3])

    height_mm, width_mm = n_s * spacing[ijk_s], n_r * spacing[ijk_r]
    size = (max(1, int(round(MIP_HEIGHT_PX * width_mm / height_mm))), MIP_HEIGHT_PX)
    return np.ascontiguousarray(mip), to_ras, size


def build_app(study, reader: str, mode: str = "review", case=None, server=None) -> ReviewApp:
    """The review (or teaching) app over ``study`` for ``reader``; see :class:`ReviewApp`."""
    return ReviewApp(study, reader, mode, case, server)


def serve(app: ReviewApp, host: str, port: int, token: Optional[str] = None,
          ready: Optional[Callable[[str], None]] = None) -> None:
    """Serve the app on ``host:port`` until interrupted (Ctrl-C).

    ``host`` and ``token`` must have passed :func:`netpet.review.serving.check_bind`; with a token every HTTP
    request, the websocket's included, must carry it (:func:`netpet.review.serving.token_middleware` on trame's
    aiohttp application). ``ready(url)`` is called once the port is open (the URL with the token when one is
    used).
    """
    import sys

    if token:
        middleware = serving.token_middleware(token)

        def bind(web_server):
            web_server.app.middlewares.append(middleware)

        app.server.controller.on_server_bind.add(bind)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    if ready is not None:
        app.server.controller.on_server_ready.add(lambda **_: ready(url))
    # trame reads its own options (--host, --port ...) from the command line: the command's are not for it
    sys.argv[1:] = []
    app.server.start(host=host, port=port, open_browser=False, show_connection_info=False, timeout=0,
                     disable_logging=True)


_CSS = """
html { overflow-y: auto; }
.netpet-bar { display:flex; gap:8px; align-items:center; font-size:13px; flex-wrap:wrap; }
.netpet-bar select, .netpet-bar input[type=text], .netpet-bar input:not([type]), .netpet-form select, .netpet-form input { border:1px solid #999; border-radius:3px;
  padding:1px 4px; background:#fff; color:#000; max-width:260px; }
.netpet-panel { padding:6px; font-size:12px; }
.netpet-table { border-collapse:collapse; width:100%; font-size:12px; }
.netpet-table th, .netpet-table td { border-bottom:1px solid #ddd; padding:2px 3px; text-align:left; }
.netpet-table tr.selected { background:#ffe9a8; }
.netpet-table tr.pending { font-style:italic; color:#7a4a00; }
.netpet-table tr.partner { color:#1d3f66; background:#eef4fb; }
.netpet-table tbody tr { cursor:pointer; }
.netpet-form { margin-top:8px; border-top:1px solid #ccc; padding-top:6px; }
.netpet-row { display:flex; gap:6px; align-items:center; margin:3px 0; }
.netpet-row label { min-width:70px; }
.netpet-form button { border:1px solid #555; border-radius:3px; padding:1px 10px; background:#eee; }
.netpet-form button:disabled { color:#aaa; }
.netpet-status { margin-top:8px; padding:4px; background:#f3f3f3; border-left:3px solid #c60; min-height:2em; }
.netpet-messages { color:#555; max-height:140px; overflow-y:auto; }
.netpet-small { color:#555; font-size:11px; }
.netpet-mip { flex:0 0 auto; padding:4px; overflow-y:auto; max-width:min(40vw, 480px); }
.netpet-mip img { cursor:crosshair; display:block; }
.netpet-pre { white-space:pre-wrap; font-size:11px; max-height:300px; overflow-y:auto; }
.netpet-feedback { border:1px solid #888; padding:4px; margin-top:6px; font-size:12px; }
.netpet-quiz { border:1px solid #ccc; padding:4px; margin-bottom:6px; }
"""
