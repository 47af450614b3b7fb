#!/usr/bin/env bash
# Install vitbench into the current Python environment.
#   scripts/setup.sh          runtime dependencies
#   scripts/setup.sh --test   plus the test dependencies (and Debian's chromium, for the browser test)
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
if [[ "${1:-}" == "--test" ]] && ! command -v chromium >/dev/null 2>&1; then
    # the HTML report's browser test drives Debian's chromium through playwright (no browser download)
    echo "setup: no chromium found; installing Debian's chromium (for the HTML report's browser test)"
    sudo=""; [[ "$(id -u)" == "0" ]] || sudo="sudo"
    $sudo apt-get install -y -q chromium >/dev/null || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null; }
fi
echo "setup: vitbench $("$PY" -c 'import vitbench; print(vitbench.__version__)') installed"
