"""The committed stubs are exactly what the pinned grpcio-tools makes from protos/."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_stubs_match_the_proto() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_every_message_field_is_documented() -> None:
    """Every field carries a comment: on its own line, or on the line right above it."""
    lines = (ROOT / "protos" / "genfx" / "v1" / "genfx.proto").read_text().splitlines()
    undocumented = []
    depth = 0
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith(("message ", "enum ", "oneof ")):
            depth += 1
        elif text == "}":
            depth -= 1
        elif depth and "=" in text and not text.startswith("//"):
            is_enum_value = text.split()[0].isupper()
            if not is_enum_value and "//" not in text and not lines[i - 1].strip().startswith("//"):
                undocumented.append(f"line {i + 1}: {text}")
    assert not undocumented, "\n".join(undocumented)
