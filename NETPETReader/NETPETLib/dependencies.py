"""The Python packages the NETPET core needs beyond those shipped with Slicer, installed on first use
without changing any package already in Slicer's Python.

Slicer ships numpy, scipy, SimpleITK, pydicom, Pillow, packaging, requests and more in its Python
(SuperBuild/External_python-*.cmake); pandas, scikit-learn, statsmodels, matplotlib, tqdm, slicerio and
highdicom are listed in NETPETReader's ``Resources/requirements.txt`` and installed on first use with
Slicer's installer (``slicer.util.pip_install``), after the Widget has asked the user.

The rules, as Slicer and SlicerNNUnet do it:

- versions, not imports, decide what is missing: a requirement is met when its distribution is
  installed at a version its specifier accepts (importlib.metadata + packaging, as SlicerNNUnet's
  InstallLogic.isPackageInstalledAndCompatible);
- pip gets a constraints file (``-c``) pinning every distribution already installed to its installed
  version, as Slicer 5.11's own installer does (Base/Python/slicer/packaging.py,
  ``_generate_environment_constraints``, ``protect_environment``); Slicer 5.8 and 5.10 do not, so
  NETPET does it itself. pip then refuses, rather than upgrades, a package Slicer ships;
- highdicom is narrowed to the versions that work with the pydicom and numpy Slicer ships: highdicom
  0.23 and later need pydicom >= 3.0.1 (Slicer 5.8 and 5.10 ship pydicom 2.4; Slicer 5.12 ships 3.0);
  highdicom 0.22 accepts pydicom 2.3-2.4 but uses ``numpy.float_``, removed in numpy 2. With pydicom 2
  and numpy 2 no highdicom fits: it is not installed and DICOM SEG export says why;
- the installed versions are compared before and after: a changed package is reported, never hidden.

``slicer.util.pip_install`` takes a list of command-line arguments in 5.8 and 5.10 (util.py: "It can be
either a single string or a list of command-line arguments") and delegates to slicer.packaging in 5.11+,
so ``["-c", constraints, *requirements]`` works in every version.
"""

import importlib.util
import os
import re
import tempfile

REQUIREMENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Resources",
                            "requirements.txt")
#: distribution name -> module name, where they differ (used when a distribution has no metadata)
IMPORT_NAMES = {"scikit-learn": "sklearn", "SimpleITK": "SimpleITK", "pillow": "PIL"}
#: packages Slicer ships in its Python that NETPET's requirements depend on: reported by name when a change
#: is refused or happens (every installed distribution is pinned, these are the ones that matter most)
BUNDLED = ("numpy", "scipy", "SimpleITK", "pydicom", "pillow", "vtk", "packaging", "requests")
#: what each optional package is for, said when it cannot be installed in this Slicer
PURPOSE = {"highdicom": "DICOM SEG export"}


class DependencyError(RuntimeError):
    """Installing would change a package Slicer ships, or did; or a requirement cannot be met here."""


def canonicalName(name):
    """PEP 503 normalised distribution name (as packaging.utils.canonicalize_name)."""
    return re.sub(r"[-_.]+", "-", str(name)).lower()


def requirements(path=REQUIREMENTS):
    """The requirement lines of the file (comments, blanks and pip options left out)."""
    with open(path, encoding="utf-8") as handle:
        lines = [line.split(" #")[0].strip() for line in handle]
    return [line for line in lines if line and not line.startswith(("#", "-"))]


def _name(requirement):
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1) if match else requirement.strip()


def installedVersions():
    """{canonical distribution name: version} of everything installed in this Python."""
    import importlib.metadata

    importlib.invalidate_caches()  # see what a pip subprocess just wrote
    out = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out[canonicalName(name)] = dist.metadata["Version"]
    return out


def _major(text):
    match = re.match(r"\s*(\d+)", text or "")
    return int(match.group(1)) if match else None


def satisfied(requirement, installed, findSpec=importlib.util.find_spec):
    """Whether ``requirement`` (text) is met by the installed versions (``installed`` as installedVersions).

    A distribution without metadata (a module an application vendors) counts as met when importable."""
    name = _name(requirement)
    version = installed.get(canonicalName(name))
    if version is None:
        return findSpec(IMPORT_NAMES.get(name, name.replace("-", "_"))) is not None
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - Slicer ships packaging (SuperBuild/External_python-packaging.cmake)
        return True
    parsed = Requirement(requirement)
    if parsed.marker is not None and not parsed.marker.evaluate():
        return True
    return parsed.specifier.contains(version, prereleases=True)


def compatible(requirement, installed):
    """The requirement narrowed to the versions that work with the packages Slicer ships: returns
    (requirement text, '') or (None, the reason no version can be installed here)."""
    if canonicalName(_name(requirement)) != "highdicom":
        return requirement, ""
    pydicom, numpy = installed.get("pydicom"), installed.get("numpy")
    pydicomMajor, numpyMajor = _major(pydicom), _major(numpy)
    if pydicomMajor is None or pydicomMajor >= 3:
        return requirement, ""  # the constraints keep pydicom; pip picks a highdicom that accepts it
    if numpyMajor is not None and numpyMajor >= 2:
        return None, (f"highdicom ({PURPOSE['highdicom']}) needs pydicom 3 (highdicom 0.23 and later) or numpy "
                      f"below 2 (highdicom 0.22), and this Slicer ships pydicom {pydicom} with numpy {numpy}; "
                      "NETPET leaves Slicer's packages as they are, so DICOM SEG export is not available here")
    return f"{requirement},<0.23", ""


def _unmet(path, installed, findSpec):
    installed = installedVersions() if installed is None else installed
    return [r for r in requirements(path) if not satisfied(r, installed, findSpec)], installed


def missing(path=REQUIREMENTS, installed=None, findSpec=importlib.util.find_spec):
    """Requirements not met in this Python that can be installed here (as written in the file)."""
    unmet, installed = _unmet(path, installed, findSpec)
    return [r for r in unmet if compatible(r, installed)[0] is not None]


def unavailable(path=REQUIREMENTS, installed=None, findSpec=importlib.util.find_spec):
    """{requirement: reason} of requirements not met here that no version can meet without changing a
    package Slicer ships."""
    unmet, installed = _unmet(path, installed, findSpec)
    return {r: compatible(r, installed)[1] for r in unmet if compatible(r, installed)[0] is None}


def plan(needed, installed):
    """What pip is asked for ``needed``: ([narrowed requirement texts], {requirement: reason it cannot be})."""
    install, refused = [], {}
    for requirement in needed:
        narrowed, reason = compatible(requirement, installed)
        if narrowed is None:
            refused[requirement] = reason
        else:
            install.append(narrowed)
    return install, refused


def constraintsText(installed, exclude=()):
    """pip constraints pinning every installed distribution to its installed version (``exclude``: names
    being installed on purpose: a requirement installed at a version its specifier refuses is upgraded)."""
    skip = {canonicalName(n) for n in exclude}
    return "".join(f"{name}=={version}\n" for name, version in sorted(installed.items()) if name not in skip)


def changedPackages(before, after):
    """[(name, version before, version after or None)] of distributions installed before that changed or
    went away (as Slicer 5.11's packaging.py compares versions before and after an install)."""
    return [(name, version, after.get(name)) for name, version in sorted(before.items())
            if after.get(name) != version]


def describeChanges(changes):
    bundled = {canonicalName(n) for n in BUNDLED}
    return "; ".join(f"{name} {old} -> {new or 'removed'}{' (shipped with Slicer)' if name in bundled else ''}"
                     for name, old, new in changes)


def install(requirementList, pipInstall=None, versions=installedVersions):
    """Install with Slicer's pip without changing anything installed (blocks; call from the Widget after
    asking the user). ``versions`` reads the installed versions (before and after). Returns {requirement:
    reason} of the requirements left out because no version fits this Slicer.

    Raises
    ------
    DependencyError
        pip failed (a requirement would need a change to an installed package), or the install changed an
        installed package anyway (named with both versions).
    """
    if pipInstall is None:
        import slicer

        pipInstall = slicer.util.pip_install
    before = versions()
    toInstall, refused = plan(requirementList, before)
    if not toInstall:
        return refused
    handle, constraints = tempfile.mkstemp(prefix="netpet-", suffix="-constraints.txt")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(constraintsText(before, exclude=[_name(r) for r in toInstall]))
        try:
            pipInstall(["-c", constraints, *toInstall])
        except Exception as exc:  # noqa: BLE001 - CalledProcessError and whatever pip_install raises
            raise DependencyError(
                f"pip could not install {', '.join(toInstall)} without changing the packages already in "
                f"Slicer's Python ({exc}); the Python console shows pip's explanation.") from exc
    finally:
        os.unlink(constraints)
    wanted = {canonicalName(_name(r)) for r in toInstall}
    changes = [c for c in changedPackages(before, versions()) if c[0] not in wanted]
    if changes:
        raise DependencyError(f"Installing {', '.join(toInstall)} changed packages already in Slicer's Python: "
                              f"{describeChanges(changes)}. Restart Slicer, and reinstall it if it misbehaves.")
    return refused


def ensureInstalled(askUser=None, pipInstall=None):
    """Widget side: when installable packages are missing, ask the user and install them. True when nothing
    installable is missing afterwards; False if the user declined. Every SUVQuant and StudyStats action
    that needs a package calls this first."""
    needed = missing()
    if not needed:
        return True
    if askUser is None:
        import slicer

        askUser = slicer.util.confirmOkCancelDisplay
    if not askUser("NETPET needs these Python packages in Slicer's Python: " + ", ".join(needed)
                   + ". Install them now? (The packages Slicer ships are left as they are.)"):
        return False
    install(needed, pipInstall=pipInstall)
    return not missing()


def unavailableReason(name, path=REQUIREMENTS, installed=None):
    """Why the requirement of distribution ``name`` cannot be installed in this Slicer ('' when it can)."""
    installed = installedVersions() if installed is None else installed
    for requirement in requirements(path):
        if canonicalName(_name(requirement)) == canonicalName(name):
            return compatible(requirement, installed)[1]
    return ""
