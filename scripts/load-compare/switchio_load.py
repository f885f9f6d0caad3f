"""switchio (PyPI 0.1.0a1) driving a switch at a given rate: the comparison point of `fsdialer load`.

Usage: python3.6 switchio_load.py HOST PORT RATE LIMIT CALLS HOLD_SEC (RATE a whole number: switchio bursts it)
(switchio 0.1.0a1 needs Python 3.5/3.6: its asyncio code predates 3.7.)

switchio's Originator places calls in bursts each second (`rate` originates spaced 0.9/rate apart), up to `limit`
at once, and hangs each up `duration` seconds after its BACKGROUND_JOB. This script loads a one-callback app,
points the originate at `sofia/external/<n>@HOST` (fixtures/sim/load.toml answers numeric destinations), runs until
CALLS were placed and every call ended, and prints one JSON line: calls placed, answered (BACKGROUND_JOB +OK),
failed, the wall time, the time to place them all and the rate that makes, and the CPU time of this process (user + system).

switchio's set-up sends `fsctl verbose_events true`, `fsctl loglevel warning` and `console loglevel warning`
(logging settings, no effect on calls); `fsdialer sim` answers them `-ERR`, which switchio would raise on, so
they are sent with errors ignored. Nothing else is changed.
"""
import json
import resource
import sys
import time

import switchio
from switchio import api
from switchio.apps import call_gen

host, port = sys.argv[1], sys.argv[2]
rate, limit, calls, hold = (
    int(sys.argv[3]),
    int(sys.argv[4]),
    int(sys.argv[5]),
    float(sys.argv[6]),
)

_api = api.Client.api


def api_tolerating_logging_settings(self, cmd, exc=True, timeout=None):
    logging_only = cmd.startswith(("fsctl verbose_events", "fsctl loglevel", "console loglevel"))
    return _api(self, cmd, exc=exc and not logging_only, timeout=timeout)


api.Client.api = api_tolerating_logging_settings


class Counter(object):
    """Counts the outcome of each originate from its BACKGROUND_JOB."""

    def __init__(self):
        self.answered = 0
        self.failed = 0

    @switchio.event_callback("BACKGROUND_JOB")
    def on_job(self, sess, job):
        if job.successful:
            self.answered += 1
        else:
            self.failed += 1


counter = Counter()
originator = call_gen.get_originator(
    [host], port=port, rate=rate, limit=limit, max_offered=calls, auto_duration=False
)
originator.duration = hold
originator.load_app(counter, app_id="count")
originator.pool.evals(
    "client.set_orig_cmd('{{}}@{}'.format(1000), app_name='park')".format(host)
)
cpu0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.time()
originator.start()
deadline = t0 + calls / rate * 3 + hold + 120
placing_secs = None
next_progress = t0 + 5
while time.time() < deadline:
    time.sleep(0.1)
    if time.time() >= next_progress:
        next_progress += 5
        sys.stderr.write(
            "progress: {:.0f} s, {} placed, {} up\n".format(
                time.time() - t0,
                originator.total_originated_sessions,
                originator.pool.count_sessions(),
            )
        )
    if placing_secs is None and originator.total_originated_sessions >= calls:
        placing_secs = time.time() - t0
    if placing_secs is not None and originator.pool.count_sessions() == 0:
        break
wall = time.time() - t0
cpu1 = resource.getrusage(resource.RUSAGE_SELF)
originator.shutdown()
cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
placed = originator.total_originated_sessions
print(
    json.dumps(
        {
            "placed": placed,
            "finished": placing_secs is not None and originator.pool.count_sessions() == 0,
            "answered": counter.answered,
            "failed": counter.failed,
            "wall_secs": round(wall, 2),
            "placing_secs": round(placing_secs, 2) if placing_secs else None,
            "achieved_rate": round(placed / placing_secs, 1) if placing_secs else None,
            "cpu_secs": round(cpu, 3),
            "cpu_per_call_us": round(cpu * 1e6 / placed, 1) if placed else None,
        }
    )
)
