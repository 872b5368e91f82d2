"""Lazy package exports: a package's public names imported from their modules on first use (PEP 562), so
that importing one light module of the package (``netpet.stats.intervals`` for a command's choices) does not
import every heavy one (pandas, scipy.stats, matplotlib) with it. ``netpet --help`` and the commands that
need none of them start faster."""

from __future__ import annotations

import importlib
from typing import Callable, Dict, Iterable, List, Tuple


def exports(package: str, modules: Dict[str, Iterable[str]]) -> Tuple[Callable[[str], object], Callable[[], List[str]],
                                                                          List[str]]:
    """(``__getattr__``, ``__dir__``, ``__all__``) of ``package``: each name of ``modules[module]`` is
    imported from ``package.module`` when first asked for."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> List[str]:
        return sorted(where)

    return __getattr__, __dir__, list(where)
