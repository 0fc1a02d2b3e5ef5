"""GenFX inference server: the only package that imports torch and diffusers.

Models are only ever loaded from local directories, so the Hugging Face libraries are put in offline
mode before anything imports them: a missing file must fail loudly, never reach for the network.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
