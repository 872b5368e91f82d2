"""The Python packages the NETPET core needs beyond those shipped with Slicer.

Slicer ships numpy, scipy, SimpleITK and pydicom; pandas, scikit-learn, statsmodels,
matplotlib, tqdm, slicerio and highdicom are listed in ``Resources/requirements.txt`` of
NETPETReader and installed on first use with Slicer's own installer (``slicer.util.pip_install``),
after the Widget has asked the user. The Logic only reports what is missing.
"""

import importlib.util
import os

REQUIREMENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Resources",
                            "requirements.txt")
#: distribution name -> module name, where they differ
IMPORT_NAMES = {"scikit-learn": "sklearn", "SimpleITK": "SimpleITK"}


def requirements(path=REQUIREMENTS):
    """The requirement lines of the file (comments and blanks left out)."""
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip() and not line.strip().startswith("#")]


def _name(requirement):
    for separator in ("<", ">", "=", "!", "~", "[", ";", " "):
        requirement = requirement.split(separator)[0]
    return requirement.strip()


def missing(path=REQUIREMENTS):
    """Requirements whose module cannot be imported in this Python."""
    out = []
    for requirement in requirements(path):
        name = _name(requirement)
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        if importlib.util.find_spec(module) is None:
            out.append(requirement)
    return out


def install(requirementList):
    """Install with Slicer's pip (blocks; call from the Widget after asking the user)."""
    import slicer

    if requirementList:
        slicer.util.pip_install(" ".join(f'"{r}"' if " " in r else r for r in requirementList))


def ensureInstalled():
    """Widget side: when packages are missing, ask the user and install them; False if declined."""
    import slicer

    needed = missing()
    if not needed:
        return True
    if not slicer.util.confirmOkCancelDisplay(
            "NETPET needs these Python packages in Slicer's Python: " + ", ".join(needed) + ". Install them now?"):
        return False
    install(needed)
    return not missing()
