#!/bin/bash
# CPU per decision of the daemon: the same decide (vid + consent, profiles on) with
# the slot without a goal (p) and with one (g). Issue 10's goal: g within 10 % of p.
# Now part of tests/bench/profile_bench.sh (interleaved rounds, medians, spread).
exec "$(dirname "$0")/profile_bench.sh" goal
