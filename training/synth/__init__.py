"""Procedural collapse data: a building of slabs and columns falling under gravity, rendered with exact
depth and motion (``genfx-train synth``)."""
