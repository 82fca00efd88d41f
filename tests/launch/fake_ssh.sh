#!/usr/bin/env bash
# Stands in for `ssh HOST COMMAND` in the launcher tests: runs COMMAND here.
shift
exec bash -c "$1"
