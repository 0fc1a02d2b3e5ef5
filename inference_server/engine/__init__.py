"""Diffusion engine: one file per mode (each exports its Mode; modes.py collects them), the shot renderer,
reprojection and temporal planning, upscaling, the warping-error metric. Knows nothing of jobs or RPCs."""
