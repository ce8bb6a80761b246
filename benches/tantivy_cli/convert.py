#!/usr/bin/python3
"""Stored events (one JSON line each, as `bench logs --dump` writes them) ->
tantivy-cli documents with the appliance's fields (index::document): ts (ms),
message, _id, attrs (every other member), _src (the event's JSON), seq."""
import json, sys, datetime
KEPT_APART = {"@timestamp", "@version", "message"}
def ms(stamp):
    d = datetime.datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    frac = stamp[20:23] if len(stamp) > 20 and stamp[19] == "." else "000"
    return int(d.timestamp()) * 1000 + int(frac)
out = open(sys.argv[2], "w")
for seq, line in enumerate(open(sys.argv[1])):
    line = line.rstrip("\n")
    ev = json.loads(line)
    doc = {"ts": ms(ev["@timestamp"]), "_src": line, "seq": seq}
    if "message" in ev:
        m = ev["message"]
        doc["message"] = m if isinstance(m, str) else json.dumps(m, separators=(",", ":"))
    if isinstance(ev.get("_id"), str):
        doc["_id"] = ev["_id"]
    doc["attrs"] = {k: v for k, v in ev.items() if k not in KEPT_APART and not (k == "_id" and isinstance(v, str)) and v is not None}
    out.write(json.dumps(doc, separators=(",", ":")) + "\n")
