#!/usr/bin/env bash
# The GPU suite (benchmarks/gpu_suite.py): GPU tests and every benchmark with --device cuda, one markdown report.
# Usage: benchmarks/gpu_suite.sh [--dry-run] [--report FILE] [--steps NAME ...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec python benchmarks/gpu_suite.py "$@"
