#!/usr/bin/python3
"""Replays storage scenarios on real whisper files: the oracle of tests/it/whisper.rs.

Run with the system Python, which has Debian's python3-whisper (1.1.4):

    /usr/bin/python3 tests/oracle/whisper_oracle.py < scenario.json

stdin holds one scenario or a JSON list of them. A scenario is

    {"archives": [[step, points], ...], "xff": 0.5, "method": "average",
     "ops": [{"update": [[ts, value], ...], "now": N},
             {"fetch": [from, until], "now": N}, ...]}

Each scenario gets a fresh whisper file (whisper.create with the archives,
xFilesFactor and aggregationMethod); each update is one
whisper.update_many(path, points, now=N), as carbon writes a batch, and each
fetch is whisper.fetch(path, from, until, now=N). stdout has one line per
fetch, in order over all scenarios: `[[start, end, step], [values]]` with
`null` for a gap, or `null` when whisper returns nothing. Floats are printed
with repr, which round-trips exactly.
"""

import json
import os
import sys
import tempfile

import whisper


def replay(scenario, path, out):
    archives = [(int(step), int(points)) for step, points in scenario["archives"]]
    whisper.create(path, archives, xFilesFactor=scenario["xff"], aggregationMethod=scenario["method"])
    for op in scenario["ops"]:
        if "update" in op:
            whisper.update_many(path, [(ts, value) for ts, value in op["update"]], now=op["now"])
        else:
            start, until = op["fetch"]
            got = whisper.fetch(path, start, until, now=op["now"])
            out.write("null\n" if got is None else json.dumps([list(got[0]), got[1]]) + "\n")


def main():
    scenarios = json.load(sys.stdin)
    if isinstance(scenarios, dict):
        scenarios = [scenarios]
    with tempfile.TemporaryDirectory(prefix="whisper-oracle-") as tmp:
        for i, scenario in enumerate(scenarios):
            path = os.path.join(tmp, "%d.wsp" % i)
            replay(scenario, path, sys.stdout)
            os.unlink(path)


if __name__ == "__main__":
    main()
