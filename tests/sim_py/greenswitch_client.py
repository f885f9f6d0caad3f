"""Third-party ESL client check: greenswitch (PyPI) against the fsdialer simulator.

Usage: python3 greenswitch_client.py PORT PASSWORD
Connects, subscribes, originates a loopback call with bgapi, and checks the events greenswitch decodes.
Prints OK on success; exits non-zero with a reason otherwise.
"""
import sys
import time

import gevent
import greenswitch

port, password = int(sys.argv[1]), sys.argv[2]
fs = greenswitch.InboundESL(host="127.0.0.1", port=port, password=password)
fs.connect()

seen = []
jobs = []


def on_event(event):
    seen.append((event.headers.get("Event-Name"), event.headers.get("Unique-ID"), dict(event.headers)))


def on_job(event):
    jobs.append(event)


for name in ["CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_PARK", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"]:
    fs.register_handle(name, on_event)
fs.register_handle("BACKGROUND_JOB", on_job)

r = fs.send("events plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_PARK CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB")
if "+OK" not in r.headers.get("Reply-Text", ""):
    sys.exit("event subscription refused: %r" % r.headers)

status = fs.send("api status")
if "is ready" not in status.data:
    sys.exit("api status body unexpected: %r" % status.data)

uuid = "6f0c5f7e-1d2b-4c3a-9b8e-0a1b2c3d4e5f"
r = fs.send("bgapi originate {origination_uuid=%s,dlr_campaign_id=7}loopback/answer_1/default &park" % uuid)
if not r.headers.get("Reply-Text", "").startswith("+OK Job-UUID: "):
    sys.exit("bgapi reply unexpected: %r" % r.headers)

deadline = time.time() + 15
while time.time() < deadline:
    if any(n == "CHANNEL_HANGUP_COMPLETE" and u == uuid for n, u, _ in seen) and jobs:
        break
    gevent.sleep(0.05)

names = [n for n, u, _ in seen if u == uuid]
for want in ["CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_PARK", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"]:
    if want not in names:
        sys.exit("missing %s for the originated channel; got %r" % (want, names))
if names.index("CHANNEL_ANSWER") > names.index("CHANNEL_HANGUP_COMPLETE"):
    sys.exit("events out of order: %r" % names)
# greenswitch keeps no separate body: the BACKGROUND_JOB body lines end up appended to the last header.
if not jobs or jobs[0].headers.get("Job-Command") != "originate" or ("+OK " + uuid) not in "\n".join(jobs[0].headers.values()):
    sys.exit("BACKGROUND_JOB unexpected: %r" % (jobs[0].headers if jobs else None))
hc = [h for n, u, h in seen if n == "CHANNEL_HANGUP_COMPLETE" and u == uuid][0]
if hc.get("Hangup-Cause") != "NORMAL_CLEARING" or hc.get("variable_dlr_campaign_id") != "7":
    sys.exit("CHANNEL_HANGUP_COMPLETE headers unexpected: %r" % {k: hc.get(k) for k in ("Hangup-Cause", "variable_dlr_campaign_id")})
if hc.get("variable_billsec") != "1":
    sys.exit("billsec %r" % hc.get("variable_billsec"))
fs.stop()
print("OK")
