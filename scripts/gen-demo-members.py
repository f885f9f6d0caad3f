#!/usr/bin/env python3
"""Writes fixtures/demo/members.json: the demo campaign's ~1,000 members, reproducibly (fixed seed).

Numbers name their outcome in the simulated switch's built-in dialplan (the same dialplan as the real captures):
answer_N answers for N s, early_E_answer_N gives early media first, busy -> USER_BUSY, noanswer rings until the
originate timeout, ring_N rings N s then NO_ANSWER, reject_CAUSE hangs up with CAUSE; and, from
fixtures/sim/demo.toml, confirm_X / decline_X / silent_X answer and press 1 / 2 / nothing at the callflow's prompt.
"""
import json
import random

rng = random.Random(20261125)
names = ["Olena", "Taras", "Iryna", "Andrii", "Maria", "Petro", "Sofiia", "Dmytro", "Anna", "Oleh"]
zones = ["Europe/Kyiv", "Europe/Warsaw", "Europe/Berlin", "America/New_York", None]


def number():
    r = rng.random()
    if r < 0.25:
        return f"confirm_{rng.randint(1, 9999):04d}"
    if r < 0.33:
        return f"decline_{rng.randint(1, 9999):04d}"
    if r < 0.38:
        return f"silent_{rng.randint(1, 9999):04d}"
    if r < 0.50:
        return f"answer_{rng.randint(3, 40)}"
    if r < 0.56:
        return f"early_1_answer_{rng.randint(3, 20)}"
    if r < 0.60:
        return "answer_1"  # shorter than min_success_duration_sec: retried
    if r < 0.75:
        return "busy"
    if r < 0.82:
        return "noanswer"
    if r < 0.87:
        return f"ring_{rng.randint(2, 10)}"
    if r < 0.91:
        return "reject_UNALLOCATED_NUMBER"
    if r < 0.94:
        return "reject_NO_USER_RESPONSE"
    if r < 0.97:
        return "reject_CALL_REJECTED"
    return "nonexistent_route"


members = []
for i in range(1000):
    comms = [{"number": number(), "priority": 1}]
    if rng.random() < 0.25:
        comms.append({"number": number(), "priority": 0, "description": "mobile"})
    m = {
        "name": f"{rng.choice(names)} #{i + 1}",
        "priority": rng.choice([0, 0, 0, 1, 5]),
        "variables": {"debt": rng.randint(100, 50000), "language": rng.choice(["uk", "en", "pl"])},
        "communications": comms,
        "external_id": f"crm-{i + 1:05d}",
    }
    tz = rng.choice(zones)
    if tz:
        m["timezone"] = tz
    members.append(m)

with open("fixtures/demo/members.json", "w", encoding="utf-8") as f:
    json.dump(members, f, ensure_ascii=False, indent=1)
    f.write("\n")

# fixtures/demo/members-agents.json: 200 members for `fsdialer demo --mode progressive|preview`. Most answer and
# wait for an agent (fixtures/sim/demo-agents.toml); the rest are busy, unanswered or wrong numbers, and a few
# answer_N callees who hang up after N s whoever is on the line (short ones are abandoned before an agent joins).
rng = random.Random(20261206)


def agent_number():
    r = rng.random()
    if r < 0.45:
        return f"confirm_{rng.randint(1, 9999):04d}"
    if r < 0.55:
        return f"decline_{rng.randint(1, 9999):04d}"
    if r < 0.62:
        return f"silent_{rng.randint(1, 9999):04d}"
    if r < 0.70:
        return f"answer_{rng.randint(20, 90)}"
    if r < 0.85:
        return "busy"
    if r < 0.95:
        return "noanswer"
    return "reject_UNALLOCATED_NUMBER"


agent_members = []
for i in range(200):
    agent_members.append({
        "name": f"{rng.choice(names)} #{i + 1}",
        "variables": {"debt": rng.randint(100, 50000), "language": rng.choice(["uk", "en", "pl"])},
        "communications": [{"number": agent_number(), "priority": 1}],
        "external_id": f"crm-a{i + 1:04d}",
    })

with open("fixtures/demo/members-agents.json", "w", encoding="utf-8") as f:
    json.dump(agent_members, f, ensure_ascii=False, indent=1)
    f.write("\n")
