"""Register every session of a study table to its patient's reference session (``netpet register``'s core).

Each session of the study table is found in a DICOM tree by the PET series the table names
(``series_uid``) and the PET's CT or MR partner (the index's pairing); every other session of a
patient is registered to the patient's reference session (default: the first by time point, then
session id; :func:`netpet.match.correspondence._session_order`) with
:func:`netpet.match.registration.register_and_store`, which stores the transforms in ``transforms/``
beside the table. A stored transform made from the same series and parameters is reused without
reading any image. A registration of poor quality is refused: nothing is written for it, its record
says why, and the other pairs are still registered.

The patients run in parallel worker processes (``jobs``, default one per core; 1 runs in this process, as
Slicer does); within a patient the reference session is read and prepared once for all its pairs.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from netpet.errors import AmbiguousInputError, DicomInputError, NetpetError, printable
from netpet.progress import ProgressCallback, report


def table_sessions(table_path: str) -> Tuple[Dict[Tuple[str, str], str], Dict[str, List[str]]]:
    """{(patient, session): PET series UID} and {patient: sessions in registration order} of a study table.

    Raises
    ------
    DicomInputError
        A table without ``series_uid``, a session without one, or a session naming two PET series.
    """
    from netpet.match.correspondence import _session_order, table_reads
    from netpet.stats.data import read_table

    frame, _ = read_table(table_path)
    if "series_uid" not in frame:
        raise DicomInputError(f"The study table {printable(table_path)} has no series_uid column, so its sessions "
                              "cannot be found in the DICOM tree; export it again with netpet quantify or SUV Quant.")
    uids: Dict[Tuple[str, str], str] = {}
    for (patient, session), group in frame.groupby(["patient_id", "session_id"], sort=False):
        values = [v for v in dict.fromkeys(group["series_uid"]) if v]
        if not values:
            raise DicomInputError(f"{group.iloc[0]['table_row']}: column series_uid is empty for session "
                                  f"{printable(session)} of patient {printable(patient)}; quantify the session again "
                                  "so that the table names its PET series.")
        if len(values) > 1:
            other = group[group["series_uid"] == values[1]].iloc[0]
            raise DicomInputError(f"{other['table_row']}: column series_uid is {printable(values[1])} but "
                                  f"{group.iloc[0]['table_row']} gives session {printable(session)} of patient "
                                  f"{printable(patient)} the PET series {printable(values[0])}; a session has one PET "
                                  "series: give the other one its own session id.")
        uids[(patient, session)] = values[0]
    reads = table_reads(frame)  # with days_from_baseline: the same session order as netpet match
    order = {p: _session_order(reads, p) for p in dict.fromkeys(frame["patient_id"])}
    return uids, order


def find_session_series(index, uid: str, patient: str):
    """The PET record of a table session in a DICOM index and its anatomical partner (None when it has none).

    Raises
    ------
    DicomInputError
        The series is not in the tree, or is not a PET.
    AmbiguousInputError
        The series appears under several patients.
    """
    found = [r for r in index.all_series() if r.series_uid == uid]
    if len(found) > 1:
        found = [r for r in found if r.patient_id == patient] or found
    if not found:
        raise DicomInputError(f"The PET series {printable(uid)} of patient {printable(patient)} is not under "
                              f"{printable(index.root)}; give the --dicom folder that holds the study's sessions.")
    if len(found) > 1:
        names = ", ".join(printable(r.patient_id) for r in found)
        raise AmbiguousInputError(f"The PET series {printable(uid)} appears under several patients ({names}) in "
                                  f"{printable(index.root)}; give a --dicom folder with one copy of the study.")
    pet = found[0]
    if not pet.is_pet:
        raise DicomInputError(f"Series {printable(uid)} of patient {printable(patient)} under {printable(index.root)} "
                              f"is {printable(pet.modality)}, not PET; check the table's series_uid.")
    anatomy = None
    if pet.partner_series_uid:
        anatomy = index.series(pet.partner_series_uid, patient_id=pet.patient_id, study_uid=None)
    return pet, anatomy


def register_study(table_path: str, index, patients: Optional[List[str]] = None,
                   reference_session: Optional[str] = None, basis: str = "auto", recompute: bool = False,
                   grid_mm: Optional[float] = None, progress: Optional[ProgressCallback] = None,
                   jobs: Optional[int] = None) -> List[Dict[str, Any]]:
    """Register the sessions of each patient of the study table to the patient's reference session.

    Parameters
    ----------
    table_path : str
        The study table (``series_uid`` per session); transforms go to ``transforms/`` beside it.
    index : netpet.dicom.index.DicomIndex
        The index of the DICOM tree holding the sessions (:func:`netpet.dicom.index.index_tree`).
    patients : list of str, optional
        The patients to register (default: every patient of the table).
    reference_session : str, optional
        The session the others are registered to (default: each patient's first session).
    basis, recompute, grid_mm
        As :func:`netpet.match.registration.register_and_store` (``grid_mm`` None: its default).
    jobs : int, optional
        Worker processes (default: the cores of this machine, at most one per patient to register); the patients'
        pairs run in parallel, each worker keeping to its share of the cores' ITK threads. 1 registers in this
        process (as Slicer does).

    Returns
    -------
    list of dict
        One record per (patient, moving session): ``patient_id``, ``moving_session``,
        ``fixed_session``, ``reference_rule``, ``file``, ``status`` (``registered``, ``reused`` or
        ``refused``), ``reason`` when refused, else ``basis``, ``registration_error_mm`` and the
        quality (:meth:`~netpet.match.registration.Registration.quality`).

    Raises
    ------
    NetpetError
        A patient or reference session the table lacks, or a session not found in the index.
    """
    from netpet.dicom.files import default_jobs
    from netpet.match.registration import stored_registration, transform_path

    uids, order = table_sessions(table_path)
    chosen = list(order) if patients is None else list(patients)
    for patient in chosen:
        if patient not in order:
            raise DicomInputError(f"Patient {printable(patient)} is not in the study table {printable(table_path)}; its "
                                  f"patients are: {', '.join(printable(p) for p in list(order)[:10])}.")
        if reference_session is not None and reference_session not in order[patient]:
            raise NetpetError(f"The reference session {printable(reference_session)} is not a session of patient "
                              f"{printable(patient)} in the table (its sessions: "
                              f"{', '.join(printable(s) for s in order[patient])}); choose one of them.")
    folder = os.path.dirname(os.path.abspath(table_path))
    options = {"grid_mm": grid_mm} if grid_mm is not None else {}
    rule = "given" if reference_session else "first by time point, then session id"
    # every pair in order; a stored transform of the same series and parameters is reused without reading images,
    # the others are registered per patient (its reference session read and prepared once for all its pairs)
    records: List[Dict[str, Any]] = []
    work: List[tuple] = []
    for patient in chosen:
        reference = reference_session or order[patient][0]
        found: Dict[str, Any] = {}

        def series(session: str, patient: str = patient, found: Dict[str, Any] = found):
            if session not in found:
                found[session] = find_session_series(index, uids[(patient, session)], patient)
            return found[session]

        def session_uids(session: str) -> Dict[str, str]:
            pet, anatomy = series(session)
            return {"pet_series_uid": pet.series_uid, "anatomy_series_uid": anatomy.series_uid if anatomy else ""}

        todo = []
        for session in order[patient]:
            if session == reference:
                continue
            record: Dict[str, Any] = {"patient_id": patient, "moving_session": session, "fixed_session": reference,
                                      "reference_rule": rule, "file": transform_path(folder, patient, session, reference)}
            records.append(record)
            result = None if recompute else stored_registration(
                folder, patient, reference, session, session_uids(reference), session_uids(session), basis, **options)
            if result is not None:
                record.update(_outcome(result))
            else:
                todo.append(session)
        if todo:
            files = {s: _files(series(s)) for s in [reference] + todo}
            work.append((patient, reference, todo, files, folder, basis, recompute, options))
    pairs = sum(len(job[2]) for job in work)
    jobs = min(default_jobs() if jobs is None else max(1, jobs), len(work))
    done = 0

    def finished(patient: str, outcomes: List[Tuple[str, Dict[str, Any]]]) -> None:
        for session, outcome in outcomes:
            next(r for r in records if r["patient_id"] == patient and r["moving_session"] == session).update(outcome)

    if jobs <= 1:
        for job in work:
            images: Dict[str, Any] = {}  # the patient's reference session, read and prepared once
            for session in job[2]:
                if report(progress, done / max(pairs, 1), f"Registering {job[0]} {session} to {job[1]}"):
                    return [r for r in records if "status" in r]
                finished(job[0], _register_patient(job[:2] + ([session],) + job[3:], images))
                done += 1
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        from netpet.dicom.files import process_context

        report(progress, 0.0, f"Registering {pairs} session pair(s) of {len(work)} patient(s) in {jobs} processes")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=process_context(), initializer=_worker_threads,
                                 initargs=(jobs,)) as pool:
            futures = {pool.submit(_register_patient, job): job for job in work}
            for future in as_completed(futures):
                job = futures[future]
                finished(job[0], future.result())
                done += len(job[2])
                if report(progress, done / max(pairs, 1), f"Registered {job[0]}: {len(job[2])} session(s) to {job[1]}"):
                    for other in futures:
                        other.cancel()
                    return [r for r in records if "status" in r]
    report(progress, 1.0, f"{len(records)} registration(s)")
    return records


def _files(found) -> Tuple[List[str], Optional[List[str]]]:
    """The PET's files and its partner's (None without one): what a worker process needs to read a session."""
    pet, anatomy = found
    return list(pet.files), (list(anatomy.files) if anatomy is not None else None)


def _register_patient(job, images: Optional[Dict[str, Any]] = None) -> List[Tuple[str, Dict[str, Any]]]:
    """Register the sessions ``job`` names to the patient's reference session (in a worker process, or in this
    one; ``images``: the patient's sessions read so far, kept for the next call). Returns (session, outcome) per
    session: the record's ``status`` and quality, or ``refused`` with the reason."""
    from netpet.match.registration import RegistrationError, read_session, register_and_store

    patient, reference, sessions, files, folder, basis, recompute, options = job
    images = {} if images is None else images

    def session_images(session: str):
        if session not in images:
            images[session] = read_session(*files[session], label=session)
        return images[session]

    outcomes = []
    for session in sessions:
        try:
            result = register_and_store(session_images(reference), session_images(session), folder, patient,
                                        reference, session, basis=basis, recompute=recompute, **options)
        except RegistrationError as exc:
            outcomes.append((session, {"status": "refused", "reason": str(exc)}))
        else:
            outcomes.append((session, _outcome(result)))
        if session != reference:
            images.pop(session, None)  # a moving session is registered once: only the reference is kept
    return outcomes


def _outcome(result) -> Dict[str, Any]:
    return {"status": "reused" if result.reused else "registered", "basis": result.basis,
            "registration_error_mm": result.error_mm, **result.quality()}


def _worker_threads(workers: int) -> None:  # pragma: no cover - runs in worker processes
    """Pairs register in parallel processes: each keeps to its share of the cores' ITK threads."""
    import SimpleITK as sitk

    from netpet.dicom.files import default_jobs

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(max(1, default_jobs() // workers))
