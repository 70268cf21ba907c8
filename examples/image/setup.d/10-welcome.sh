#!/bin/sh
# Runs as the user, in their home, after the envs are ready (every start): keep it quick and idempotent.
mkdir -p "$HOME/notebooks"
