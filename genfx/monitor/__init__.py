"""GenFX Monitor: a PySide6 job monitor, standalone (`genfx monitor`) and as a Houdini Python panel.

Layers, each testable on its own:

- `jobs`       pure Python (no Qt): the job book, events and snapshots -> row updates, preview policy;
- `preview`    EXR -> tone-mapped 8-bit sRGB -> QImage;
- `backend`    every network call, on worker threads; results come back as Qt signals;
- `model`      the Qt table model over the job book (plus preview pixmaps);
- `controller` glue: polling, which jobs to watch, which frames to preview, the actions;
- `widget`     the widgets (connection bar, table with progress bars, detail pane, buttons).

Importing this package does not import Qt; `genfx.monitor.widget` does (the `gui` extra).
"""
