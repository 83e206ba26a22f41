#!/usr/bin/env bash
# run_tutorial.sh EXE EXPECTED: runs a tutorial and diffs its output.
set -euo pipefail
out=$("$1")
if ! diff -u "$2" <(printf '%s\n' "$out"); then
  echo "tutorial output differs from $2" >&2
  exit 1
fi
