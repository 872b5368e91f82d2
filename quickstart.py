#!/usr/bin/env python3
"""Set NETPET up on a machine that has only python3, then run the demo or the test suite.

    python3 quickstart.py demo    # set up, then run the end-to-end demo on the synthetic study
    python3 quickstart.py test    # set up, then run the whole test suite (what CI runs)

Setting up means: the Debian packages listed in packaging/debian-packages.txt (installed with
apt-get when missing and this user may), a virtual environment in .venv, and NETPET installed
into it with its test dependencies and those of the browser review app (extras ``test`` and ``gui``:
the tests drive the app in a browser). It is repeated only when pyproject.toml or the package list
changes. Extra arguments after ``test`` go to pytest; after ``demo``, to ``netpet demo``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv

ROOT = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(ROOT, ".venv")
STAMP = os.path.join(VENV, ".netpet-setup")
DEBIAN_LIST = os.path.join(ROOT, "packaging", "debian-packages.txt")


def say(message: str) -> None:
    print(f"[quickstart] {message}", flush=True)


def run(command, **kwargs) -> None:
    say(" ".join(command))
    subprocess.run(command, check=True, **kwargs)


def debian_packages() -> list:
    if not os.path.exists(DEBIAN_LIST):
        return []
    with open(DEBIAN_LIST, encoding="utf-8") as handle:
        lines = [line.split("#", 1)[0].strip() for line in handle]
    return [line for line in lines if line]


def ensure_debian_packages() -> None:
    """Install the listed Debian packages that are missing (apt-get, as root or with sudo)."""
    wanted = debian_packages()
    if not wanted:
        return
    if shutil.which("dpkg-query") is None:
        say(f"not a Debian system: install these yourself if tests need them: {' '.join(wanted)}")
        return
    missing = []
    for name in wanted:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True)
        if "install ok installed" not in status.stdout:
            missing.append(name)
    if not missing:
        return
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if prefix is None:
        raise SystemExit(f"[quickstart] missing Debian packages {missing}; install them as root "
                         f"(apt-get install {' '.join(missing)}) and run again")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(prefix + ["apt-get", "update", "-qq"], env=env)
    run(prefix + ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, env=env)


def venv_python() -> str:
    return os.path.join(VENV, "bin", "python") if os.name != "nt" else os.path.join(VENV, "Scripts", "python.exe")


def fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (os.path.join(ROOT, "pyproject.toml"), DEBIAN_LIST):
        if os.path.exists(path):
            with open(path, "rb") as handle:
                digest.update(handle.read())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_venv() -> str:
    python = venv_python()
    if not os.path.exists(python):
        say(f"creating the virtual environment {VENV}")
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        except Exception as exc:  # ensurepip missing on minimal Debian images
            if shutil.which("apt-get") and os.geteuid() == 0:
                version = f"python3.{sys.version_info.minor}-venv"
                subprocess.run(["apt-get", "install", "-y", "-qq", version, "python3-venv"], check=False)
                venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
            else:
                raise SystemExit(f"[quickstart] cannot create a virtual environment ({exc}); "
                                 "install python3-venv and run again") from exc
    current = fingerprint()
    done = open(STAMP, encoding="utf-8").read() if os.path.exists(STAMP) else ""
    if done != current:
        run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        run([python, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test,gui]"])
        with open(STAMP, "w", encoding="utf-8") as handle:
            handle.write(current)
    return python


def main(argv: list) -> int:
    if not argv or argv[0] not in ("demo", "test", "setup"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_debian_packages()
    python = ensure_venv()
    os.chdir(ROOT)
    if command == "setup":
        return 0
    if command == "demo":
        args = rest or ["--out", os.path.join(ROOT, "demo-output")]
        return subprocess.run([python, "-m", "netpet.cli.main", "demo"] + args).returncode
    return subprocess.run([python, "-m", "pytest"] + rest).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
