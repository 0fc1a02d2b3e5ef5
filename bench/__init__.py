"""Speed benches, each run as ``python -m bench.NAME``.

The libraries' notices known to be harmless are filtered here, before any bench imports diffusers or
transformers (they warn on import), so a bench's output is as quiet as the server's log."""

from inference_server import third_party

third_party.drop_known_notices()
