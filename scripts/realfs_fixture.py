#!/usr/bin/env python3
"""Trims a realfs-2026-12 capture (`NAME.json.gz` from ../shared/fixtures/esl/realfs-2026-12/) into the repo's
`fixtures/esl/realfs-2026-12/NAME.json`: HEARTBEAT and RE_SCHEDULE events and the outer frame headers of events are
dropped; everything else (what was sent and when, every reply, every event's headers in wire order, bodies) is kept.
For `burst_sps` only the BACKGROUND_JOB events and the events of the channels of two calls are kept: the first
answered one and the half-throttled one (a created a-leg whose job answered -ERR NO_ANSWER).

usage: scripts/realfs_fixture.py SRC_DIR DST_DIR NAME...
"""
import gzip, json, os, sys

def trim(d):
    frames = []
    for f in d["frames"]:
        if "event" in f:
            name = dict(f["event"]).get("Event-Name")
            if name in ("HEARTBEAT", "RE_SCHEDULE"):
                continue
            f = {k: v for k, v in f.items() if k != "headers"}
        frames.append(f)
    d["frames"] = frames
    if d["scenario"] == "burst_sps":
        keep_calls(d)
    return d

def keep_calls(d):
    evs = [f for f in d["frames"] if "event" in f]
    # The half-throttled call: its job body is -ERR NO_ANSWER; its origination_uuid is in Job-Command-Arg.
    def job_body(f):
        return f.get("event_body") or ""
    half_arg = next(dict(f["event"])["Job-Command-Arg"] for f in evs
                    if dict(f["event"]).get("Event-Name") == "BACKGROUND_JOB" and "NO_ANSWER" in job_body(f))
    ok_body = next(job_body(f) for f in evs
                   if dict(f["event"]).get("Event-Name") == "BACKGROUND_JOB" and job_body(f).startswith("+OK"))
    wanted = {half_arg.split("origination_uuid=")[1].split(",")[0], ok_body.split()[1]}
    # b-legs (and early a-leg uuids) belong to a call through other_loopback_leg_uuid / CHANNEL_UUID's Old-Unique-ID.
    ids = set(wanted)
    for f in evs:
        h = dict(f["event"])
        if h.get("variable_other_loopback_leg_uuid") in wanted or h.get("Unique-ID") in wanted:
            ids.add(h.get("Unique-ID"))
            if h.get("Old-Unique-ID"):
                ids.add(h["Old-Unique-ID"])
    out = []
    for f in d["frames"]:
        if "event" in f:
            h = dict(f["event"])
            if h.get("Event-Name") not in ("BACKGROUND_JOB", "API") and h.get("Unique-ID") not in ids:
                continue
        out.append(f)
    d["frames"] = out

src, dst = sys.argv[1], sys.argv[2]
for name in sys.argv[3:]:
    with gzip.open(os.path.join(src, name + ".json.gz"), "rt") as fh:
        d = json.load(fh)
    with open(os.path.join(dst, name + ".json"), "w") as fh:
        json.dump(trim(d), fh, ensure_ascii=False, separators=(",", ":"))
        fh.write("\n")
