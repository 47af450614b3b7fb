#!/usr/bin/env bash
# Install vitbench into the current Python environment.
#   scripts/setup.sh          runtime dependencies
#   scripts/setup.sh --test   plus the test dependencies
# torch==2.13.0 is installed first, and only when no torch is importable: an unpinned torch would
# pull several GB of CUDA packages, and a torch the user already has is never replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "setup: no torch found; installing torch==2.13.0"
    "$PY" -m pip install --quiet "torch==2.13.0"
else
    echo "setup: using installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
fi
extra=""
if [[ "${1:-}" == "--test" ]]; then extra="[test]"; fi
"$PY" -m pip install --quiet -e ".${extra}"
echo "setup: vitbench $("$PY" -c 'import vitbench; print(vitbench.__version__)') installed"
