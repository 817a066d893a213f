#!/usr/bin/env bash
# Snakemake runs this inside the new env once it is created: install the hepsnake CLI
# itself (without touching the pinned dependencies) from the workflow checkout.
set -euo pipefail
pip install --no-deps --no-build-isolation -e "${HEPSNAKE_SRC:-$PWD}"
