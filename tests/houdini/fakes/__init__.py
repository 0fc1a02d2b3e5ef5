"""Fakes of Houdini's ``hou`` and ``hdefereval`` modules (installed into sys.modules by conftest)."""
