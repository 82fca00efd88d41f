#!/usr/bin/env bash
# Stands in for `ssh HOST COMMAND...` in the launcher tests: runs the command here, as ssh does
# on the host: the words after HOST joined with spaces into one string for the remote shell.
shift
exec bash -c "$*"
