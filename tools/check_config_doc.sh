#!/usr/bin/env bash
# Fails when docs/configuration.md does not contain `inferd config-reference` verbatim.
set -euo pipefail
inferd=$1 doc=$2
ref=$("$inferd" config-reference)
if ! python3 -c 'import sys; sys.exit(0 if sys.argv[1] in open(sys.argv[2]).read() else 1)' "$ref" "$doc"; then
  echo "$doc is out of date: paste the output of '$inferd config-reference' into it" >&2
  exit 1
fi
echo "$doc matches inferd config-reference"
