"""Houdini side of GenFX: the logic of the genfx::generate_collapse::1.0 asset.

The asset's PythonModule only forwards its callbacks to ``genfx_houdini.node``. Scripts (hython, hbatch,
a farm) can drive a node directly::

    import genfx_houdini
    result = genfx_houdini.generate(hou.node("/obj/geo1/generate_collapse1"))  # blocks without a UI
    print(result.state, result.message)

Importing this package never needs the GenFX client; Generate says how to install it when it is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from genfx_houdini.deps import add_to_path

if TYPE_CHECKING:  # their real types; at run time __getattr__ imports them on first use
    from genfx_houdini.node import cancel as cancel
    from genfx_houdini.node import generate as generate
    from genfx_houdini.node import load_results as load_results

__version__ = "0.1.0"

add_to_path()


def __getattr__(name: str) -> object:
    # generate / cancel / load_results live in genfx_houdini.node, which imports hou: load it on demand.
    if name in ("generate", "cancel", "load_results"):
        from genfx_houdini import node

        return getattr(node, name)
    raise AttributeError(name)
