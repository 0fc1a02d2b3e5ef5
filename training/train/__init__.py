"""The trainer (`genfx-train fit`): LoRA, sim-pass ControlNet and full-UNet training on accelerate."""
