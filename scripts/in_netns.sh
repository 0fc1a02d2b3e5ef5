#!/usr/bin/env bash
# Run a command inside a private network namespace with only loopback up (we are root).
# Ray binds to the machine's address otherwise, and tests may only use loopback.
set -euo pipefail
exec unshare -n -- bash -c 'ip link set lo up && exec "$@"' in_netns "$@"
