"""The module files compile and import without the Slicer application; their Module classes carry
Slicer's metadata (title, category, help with the citation, dependencies); the Logic is usable
without the Widget (the Widgets need Qt and the application and are not exercised here)."""

import importlib
import os
import py_compile
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = {"NETPETReader": [], "SUVQuant": ["NETPETReader"], "StudyStats": ["NETPETReader"]}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_imports_and_metadata(mrml, name):
    for base, _dirs, files in os.walk(os.path.join(ROOT, name)):
        for file in files:
            if file.endswith(".py"):
                py_compile.compile(os.path.join(base, file), doraise=True)
    module = importlib.import_module(name)
    parent = types.SimpleNamespace()
    getattr(module, name)(parent)
    assert parent.title and parent.categories == ["Nuclear Medicine"]
    assert parent.dependencies == MODULES[name]
    assert "cite" in parent.acknowledgementText.lower() and len(parent.helpText) > 100
    for part in ("Widget", "Logic", "Test", "ParameterNode"):
        assert hasattr(module, name + part), part
    logic = getattr(module, name + "Logic")()
    assert logic.getParameterNode() is not None  # a parameter node in the scene, no Widget needed
