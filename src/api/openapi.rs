//! `/api/v2/openapi.json`: an OpenAPI 3.1 document built from the route table ([`super::routes::table`]) — paths,
//! methods, parameters, bodies, answers, required roles and error statuses come from the same entries the router
//! is built from — and from the schemas below.
//!
//! The schemas are written here, next to the tests that hold them to the Rust types: each test serializes a real
//! value (a campaign configuration, a stored member, counters, an import report...) and checks that every field
//! it has is described, so adding a field to a type without describing it fails the build's tests.

use super::routes::{Location, Route};
use serde_json::{Map, Value, json};

/// An object schema with its properties and required fields.
pub(super) fn obj(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}

/// The schema of an `{"status": "OK", "data": ...}` answer.
pub(super) fn ok_of(data: Value) -> Value {
    obj(
        json!({"status": {"const": "OK"}, "data": data}),
        &["status", "data"],
    )
}

/// A reference to a component schema.
pub(super) fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

const INSTANT: &str = "date-time";

/// Input of one number.
fn communication_input() -> Value {
    obj(
        json!({
            "number": {"type": "string", "description": "letters, digits and + * # . - _ (a JSON integer is taken as its digits)"},
            "priority": {"type": "integer", "default": 0, "description": "higher first"},
            "description": {"type": ["string", "null"]},
            "type": {"type": ["string", "null"]},
        }),
        &["number"],
    )
}

/// Input of one member (SPEC §1).
fn member_input() -> Value {
    obj(
        json!({
            "name": {"type": "string", "minLength": 1},
            "priority": {"type": "integer", "default": 0, "description": "higher first"},
            "timezone": {"type": ["string", "null"], "description": "IANA name (Europe/Kyiv); empty or absent = the calendar's"},
            "expire": {"description": "after it the member is never called: epoch milliseconds or RFC 3339",
                       "oneOf": [{"type": "integer"}, {"type": "string", "format": INSTANT}, {"type": "null"}]},
            "variables": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            "communications": {"type": "array", "minItems": 1, "items": r("CommunicationInput")},
            "external_id": {"type": ["string", "null"], "description": "client key: a second insert with it updates"},
        }),
        &["name", "communications"],
    )
}

fn communication_view() -> Value {
    obj(
        json!({
            "number": {"type": "string"},
            "priority": {"type": "integer"},
            "description": {"type": ["string", "null"]},
            "type": {"type": ["string", "null"]},
            "state": {"enum": ["idle", "active", "done"]},
            "attempts": {"type": "integer"},
            "last_call_at": {"type": ["string", "null"], "format": INSTANT},
            "last_cause": {"type": ["string", "null"]},
        }),
        &["number", "priority", "state", "attempts"],
    )
}

fn member_view() -> Value {
    obj(
        json!({
            "_id": {"type": "string", "description": "the id as a string (Webitel clients read `_id`)"},
            "id": {"type": "integer"},
            "dialer": {"type": "string", "description": "campaign id"},
            "name": {"type": "string"},
            "priority": {"type": "integer"},
            "timezone": {"type": ["string", "null"]},
            "expire": {"type": ["string", "null"], "format": INSTANT},
            "variables": {"type": "object"},
            "communications": {"type": "array", "items": r("Communication")},
            "external_id": {"type": ["string", "null"]},
            "state": {"enum": ["waiting", "active", "ended"]},
            "next_due": {"type": ["string", "null"], "format": INSTANT},
            "tries": {"type": "integer", "description": "counted tries"},
            "attempts": {"type": "integer", "description": "all attempts"},
            "end_cause": {"type": ["string", "null"]},
            "success": {"type": "boolean"},
            "current_attempt": {"type": ["string", "null"], "format": "uuid"},
            "terminate_pending": {"type": "boolean"},
        }),
        &["_id", "id", "name", "state", "communications"],
    )
}

/// The campaign configuration (SPEC §2); nested parts are described in SPEC §1, §2, §5, §7.
fn campaign_config() -> Value {
    obj(
        json!({
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "description": "generated when absent on creation"},
            "name": {"type": "string"},
            "limit": {"type": "integer", "minimum": 1, "default": 10},
            "wait_between_retries_sec": {"type": "integer", "default": 60},
            "max_tries": {"type": "integer", "default": 5},
            "min_success_duration_sec": {"type": "integer", "default": 0},
            "originate_timeout_sec": {"type": "integer", "default": 30},
            "causes": {"type": "object", "description": "{ok, retry, error, minus}: lists of hangup cause names",
                       "properties": {"ok": {"type": "array", "items": {"type": "string"}},
                                      "retry": {"type": "array", "items": {"type": "string"}},
                                      "error": {"type": "array", "items": {"type": "string"}},
                                      "minus": {"type": "array", "items": {"type": "string"}}}},
            "cps": {"type": ["number", "null"], "description": "new calls per second; absent = unlimited"},
            "member_order": {"enum": ["priority_first", "retries_first", "strict_circuit"]},
            "number_order": {"enum": ["by_priority", "top_down"]},
            "tries_per_number": {"type": "boolean"},
            "eternal": {"type": "boolean"},
            "variables": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            "callflow": {"type": ["array", "null"], "description": "steps run on the answered call (SPEC §7)"},
            "lost_attempt": {"enum": ["retry", "minus", "error"]},
            "calendar": {"type": ["object", "null"], "description": "{timezone, accept: [{weekday, start_min, end_min}], except: [{date, repeat_yearly}], start, end}"},
            "gateways": {"type": "array", "minItems": 1, "items": {"type": "object",
                "description": "{name, pattern, dial_string, limit, cps, caller_id_numbers, caller_id_pool, enabled, local_failure_causes, breaker_threshold}"}},
            "mode": {"enum": ["broadcast", "preview", "progressive", "predictive"], "default": "broadcast",
                     "description": "broadcast: the callflow (or park) on answer; preview/progressive/predictive: joined to an agent of `agents.team` (predictive: more calls than free agents, as the pacer predicts; originate_timeout_sec at least 15)"},
            "agents": agent_settings(),
            "caller_id_pool": super::openapi_dnc::caller_id_pool(),
            "e164": super::openapi_dnc::e164_rule(),
            "retry_rules": super::openapi_dnc::retry_rules(),
            "max_calls_per_number_per_day": {"type": "integer", "minimum": 1,
                "description": "at most this many calls to one number per UTC day over every campaign and node; a member over it is called again the next day, uncounted"},
            "min_gap_same_number_sec": {"type": "integer", "minimum": 1,
                "description": "at least this long between two calls to one number over every campaign and node; a member inside it is called again when it ends, uncounted"},
            "amd": amd_settings(),
            "webhooks": super::openapi_webhooks::webhooks(),
        }),
        &["gateways"],
    )
}

/// A campaign's `agents` section (the agent modes).
fn agent_settings() -> Value {
    json!({"type": ["object", "null"], "description": "required by the agent modes, refused otherwise",
                "required": ["team"],
                "properties": {
                    "team": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                    "strategy": {"enum": ["longest_idle", "least_talk_time", "fewest_calls", "round_robin", "top_down", "random"], "default": "longest_idle"},
                    "wrap_up_sec": {"type": "integer", "minimum": 0, "maximum": 3600, "default": 0},
                    "max_no_answer": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 0, "description": "missed offers in a row that pause the agent (reason no_answer); 0 = never"},
                    "no_answer_delay_sec": {"type": "integer", "minimum": 0, "maximum": 3600, "default": 10},
                    "sticky_agent_sec": {"type": "integer", "minimum": 0, "maximum": 86400, "default": 30},
                    "agent_answer_timeout_sec": {"type": "integer", "minimum": 1, "maximum": 300, "default": 15},
                    "connect_timeout_ms": {"type": "integer", "minimum": 100, "maximum": 60000, "default": 2000},
                    "preview_timeout_sec": {"type": "integer", "minimum": 1, "maximum": 3600, "default": 30},
                    "preview_on_timeout": {"enum": ["dial", "skip"], "default": "dial"},
                    "abandon_message": {"type": "string", "description": "played to a member no agent took in time, then hung up"},
                    "abandoned_class": {"enum": ["ok", "retry", "error", "minus"], "default": "retry"},
                    "result_timeout_sec": {"type": "integer", "minimum": 0, "maximum": 3600, "default": 60, "description": "how long the attempt waits for the agent's result callback"},
                    "abandon_redial_after_sec": {"type": "integer", "minimum": 1, "maximum": 2_592_000, "description": "predictive: an abandoned member is not called again for this long (Ofcom: 259200 = 72 h)"},
                    "pacing": {"type": "object", "description": "predictive: the pacer", "additionalProperties": false,
                        "properties": {
                            "target_abandon_pct": {"type": "number", "minimum": 0.1, "maximum": 10, "default": 2.0, "description": "the closed loop's target (% of live answers)"},
                            "max_abandon_pct": {"type": "number", "minimum": 0.1, "maximum": 10, "default": 3.0, "description": "the rolling 30-day rate at or over this dials 1:1"},
                            "max_lines_per_agent": {"type": "number", "minimum": 1, "maximum": 10, "default": 3.0},
                            "min_agents_for_predictive": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 5},
                            "half_life_sec": {"type": "number", "minimum": 1, "maximum": 3600, "default": 40.0, "description": "of the model's answer probabilities (live, machine)"},
                            "durations_half_life_sec": {"type": "number", "minimum": 1, "maximum": 86400, "default": 600.0, "description": "of the model's durations: time to answer, talk (mean and lognormal shape), wrap-up"},
                            "warmup_answers": {"type": "integer", "minimum": 0, "maximum": 100000, "default": 20, "description": "live answers before the model is trusted (1:1 until then)"},
                            "window_sec": {"type": "integer", "minimum": 10, "maximum": 86400, "default": 300, "description": "the closed loop's rolling window"},
                            "policy": {"enum": ["fsdialer", "webitel", "vicidial", "progressive"], "default": "fsdialer", "description": "the anchors' controllers are for comparison (pacing-sim)"}
                        }}
                },
                "additionalProperties": false})
}

/// A campaign's `amd` section (answering-machine detection, `campaign::amd`).
fn amd_settings() -> Value {
    let ms = |min: u32, max: u32, default: u32| json!({"type": "integer", "minimum": min, "maximum": max, "default": default});
    json!({"type": ["object", "null"], "description": "answering-machine detection on answered calls (mod_amd; avmd for the beep)",
                "properties": {
                    "enabled": {"type": "boolean", "default": true},
                    "module": {"enum": ["mod_amd", "mod_amd_nonblocking"], "default": "mod_amd",
                               "description": "mod_amd: blocking `amd` app, result in amd_result/amd_cause; mod_amd_nonblocking: CUSTOM amd::info"},
                    "silence_threshold": ms(1, 32767, 256),
                    "maximum_word_length": ms(10, 60000, 5000),
                    "maximum_number_of_words": ms(1, 100, 3),
                    "between_words_silence": ms(10, 10000, 50),
                    "min_word_length": ms(10, 10000, 100),
                    "total_analysis_time": ms(500, 60000, 5000),
                    "after_greeting_silence": ms(10, 10000, 800),
                    "greeting": ms(10, 60000, 1500),
                    "initial_silence": ms(10, 60000, 2500),
                    "machine": {"enum": ["hangup", "leave_message"], "default": "hangup"},
                    "machine_message": {"type": "string", "description": "leave_message: played after avmd's beep (or machine_message_after_sec without one), then hung up"},
                    "machine_message_after_sec": ms(1, 600, 20),
                    "notsure": {"enum": ["human", "machine"], "default": "human"},
                    "machine_class": {"enum": ["ok", "retry", "error", "minus"], "default": "retry"},
                    "message_left_class": {"enum": ["ok", "retry", "error", "minus"], "default": "ok"}
                },
                "additionalProperties": false})
}

fn campaign_view() -> Value {
    let mut v = campaign_config();
    let props = v["properties"].as_object_mut().expect("properties");
    for (k, s) in [
        ("_id", json!({"type": "string"})),
        (
            "state",
            json!({"type": "integer", "description": "Webitel code: 0 idle, 1 running/sleeping, 2 stopping, 3 stopped, 4 done/expired"}),
        ),
        (
            "state_name",
            json!({"enum": ["idle", "running", "sleeping", "stopping", "stopped", "done", "expired"]}),
        ),
        (
            "active_calls",
            json!({"type": "integer", "description": "on this node"}),
        ),
        (
            "run",
            json!({"type": "boolean", "description": "the operator's last command"}),
        ),
        ("updated_at", json!({"type": "string", "format": INSTANT})),
        (
            "missing_prompts",
            json!({
                "type": "array",
                "description": "prompt files of the callflow a switch does not have (checked when the campaign starts running): every answered call's callflow fails on them",
                "items": {
                    "type": "object",
                    "properties": {"switch": {"type": "string"}, "file": {"type": "string"}},
                    "required": ["switch", "file"]
                }
            }),
        ),
    ] {
        props.insert(k.into(), s);
    }
    v["required"] = json!(["_id", "id", "state", "state_name", "gateways"]);
    v
}

fn counters() -> Value {
    let n = json!({"type": "integer"});
    obj(
        json!({
            "waiting": n, "in_retry": {"type": "integer", "description": "of `waiting`, the members called before (due again after an attempt)"},
            "active": n, "ended": n,
            "ended_by_cause": {"type": "object", "additionalProperties": {"type": "integer"}},
            "calls": n, "answered": n, "success": n, "ok": n, "retry": n, "error": n, "minus": n, "lost": n,
            "state": n, "state_name": {"type": "string"}, "active_calls": n,
            "caller_ids": super::openapi_dnc::caller_id_figures(),
            "amd": {"type": "object", "description": "this node's answers by AMD result since it started, and the voicemail messages it left",
                    "properties": {"human": n, "machine": n, "notsure": n, "undecided": n, "messages_left": n}},
            "gateways": {"type": "array", "description": "each gateway: calls in progress on every node (`in_use`) against `limit`, `enabled`, and as this node sees it, its calls here (`active_here`) and its circuit breaker (`breaker`, null when the engine has not loaded the campaign)",
                         "items": {"type": "object", "properties": {
                             "name": {"type": "string"}, "limit": {"type": ["integer", "null"]}, "in_use": n,
                             "enabled": {"type": "boolean"}, "active_here": {"type": ["integer", "null"]},
                             "breaker": {"type": ["object", "null"], "properties": {
                                 "state": {"enum": ["closed", "open", "half_open"]},
                                 "paused_until": {"type": ["string", "null"], "format": INSTANT},
                                 "consecutive_failures": n, "probe_in_flight": {"type": "boolean"}}}}}},
        }),
        &["waiting", "active", "ended", "calls"],
    )
}

fn attempt() -> Value {
    obj(
        json!({
            "attempt_id": {"type": "string", "format": "uuid"},
            "member_id": {"type": "integer"},
            "attempt_no": {"type": "integer"},
            "comm_index": {"type": "integer"},
            "number": {"type": "string"},
            "node": {"type": "string"},
            "originate_at": {"type": "string", "format": INSTANT},
            "answer_at": {"type": ["string", "null"], "format": INSTANT},
            "hangup_at": {"type": ["string", "null"], "format": INSTANT},
            "talk_secs": {"type": "integer"},
            "cause": {"type": "string"},
            "class": {"enum": ["ok", "retry", "error", "minus"]},
            "fate": {"type": "object", "description": "{ended: CAUSE, success} or {due: instant}"},
            "completed_at": {"type": "string", "format": INSTANT},
            "caller_id": {"type": "string", "description": "the caller ID the call presented; absent: the switch's default"},
        }),
        &["attempt_id", "member_id", "cause", "class"],
    )
}

fn import_report() -> Value {
    let n = json!({"type": "integer"});
    obj(
        json!({
            "rows": n, "added": n, "updated": n, "in_call": n, "rejected": n,
            "errors": {"type": "array", "items": obj(json!({"line": n, "error": {"type": "string"}}), &["line", "error"])},
            "errors_truncated": {"type": "boolean"},
            "delimiter": {"type": "string"},
            "encoding": {"enum": ["utf-8", "windows-1251"]},
            "written": {"type": "boolean"},
        }),
        &["rows", "added", "rejected", "errors"],
    )
}

fn add_result() -> Value {
    obj(
        json!({"_id": {"type": "string"}, "id": {"type": "integer"}, "result": {"enum": ["added", "updated", "in_call"]}}),
        &["_id", "id", "result"],
    )
}

/// Every named schema.
pub fn schemas() -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put(
        "Error",
        obj(
            json!({"status": {"const": "error"}, "info": {"type": "string", "description": "what is wrong, and where"},
                   "errors": {"description": "details: [{path, error}] for members, [{line, error}] for CSV rows"}}),
            &["status", "info"],
        ),
    );
    put("Ok", ok_of(json!({})));
    put("Any", json!({}));
    put("Text", json!({"type": "string"}));
    put(
        "Csv",
        json!({"type": "string", "description": "CSV text (SPEC §9 columns)"}),
    );
    put("CommunicationInput", communication_input());
    put("MemberInput", member_input());
    put(
        "MemberInputOrArray",
        json!({"oneOf": [r("MemberInput"), {"type": "array", "minItems": 1, "items": r("MemberInput")}]}),
    );
    put("Communication", communication_view());
    put("Member", member_view());
    put("MemberAnswer", ok_of(r("Member")));
    put(
        "MemberList",
        obj(
            json!({"status": {"const": "OK"}, "data": {"type": "array", "items": r("Member")},
                   "next": {"type": ["integer", "null"], "description": "cursor for `after`; null on the last page"}}),
            &["status", "data", "next"],
        ),
    );
    put("AddResult", add_result());
    put(
        "AddAnswer",
        ok_of(json!({"oneOf": [r("AddResult"), {"type": "array", "items": r("AddResult")}]})),
    );
    put("CountAnswer", ok_of(json!({"type": "integer"})));
    put(
        "ResetAnswer",
        obj(
            json!({"status": {"const": "OK"}, "info": {"type": "integer"}, "data": {"type": "integer"}}),
            &["status", "info"],
        ),
    );
    put(
        "TerminateAnswer",
        ok_of(obj(
            json!({"_id": {"type": "string"}, "result": {"enum": ["terminated", "call_ending", "already_ended"]},
                   "attempt_id": {"type": "string"}, "node": {"type": "string"}}),
            &["_id", "result"],
        )),
    );
    put(
        "Deleted",
        ok_of(obj(
            json!({"_id": {"type": "string"}, "deleted": {"type": "boolean"}}),
            &["_id", "deleted"],
        )),
    );
    put("CampaignConfig", campaign_config());
    put("Campaign", campaign_view());
    put("CampaignAnswer", ok_of(r("Campaign")));
    put(
        "CampaignList",
        ok_of(json!({"type": "array", "items": r("Campaign")})),
    );
    put("Stats", counters());
    put("StatsAnswer", ok_of(r("Stats")));
    let count = json!({"type": "integer", "minimum": 0});
    put(
        "ComplianceDay",
        obj(
            json!({"date": {"type": "string", "format": "date"}, "live_answers": count,
                   "abandoned": count, "machine_answers": count, "messages_played": count,
                   "rolling_live_answers": count, "rolling_abandoned": count,
                   "rolling_abandon_pct": {"type": ["number", "null"]}}),
            &crate::api::routes::compliance::CSV_COLUMNS,
        ),
    );
    put(
        "ComplianceAnswer",
        ok_of(json!({"type": "array", "items": r("ComplianceDay")})),
    );
    put(
        "Transition",
        obj(
            json!({"at": {"type": "string", "format": INSTANT}, "from": {"type": "string"}, "to": {"type": "string"}, "reason": {"type": "string"}}),
            &["at", "from", "to", "reason"],
        ),
    );
    put(
        "HistoryAnswer",
        ok_of(json!({"type": "array", "items": r("Transition")})),
    );
    put("Attempt", attempt());
    put(
        "AttemptList",
        ok_of(json!({"type": "array", "items": r("Attempt")})),
    );
    put("ImportReport", import_report());
    put("ImportAnswer", ok_of(r("ImportReport")));
    put(
        "Health",
        obj(
            json!({"status": {"const": "OK"}, "store": {"enum": ["memory", "redis"]}, "store_ping_ms": {"type": "number"}}),
            &["status", "store"],
        ),
    );
    super::openapi_agents::add(&mut m);
    super::openapi_dnc::add(&mut m);
    super::openapi_webhooks::add(&mut m);
    m
}

fn status_text(code: u16) -> &'static str {
    match code {
        400 => "the request cannot be read (bad JSON, CSV or parameter)",
        401 => "no valid key (X-Key + X-Access-Token, or x_key + access_token)",
        403 => "the key's role lacks this right",
        404 => "no such campaign or member",
        409 => "conflict: the member is in a call, or the id is taken",
        408 => "the body did not arrive in time",
        413 => "body larger than the limit",
        429 => "too many requests in progress; try again shortly",
        422 => {
            "the body reads fine but its values are not acceptable (each problem with its field path)"
        }
        503 => "the store is unreachable",
        507 => "not enough free disk space for the upload",
        _ => "error",
    }
}

fn operation(route: &Route) -> Value {
    let params: Vec<Value> = route
        .params
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "in": match p.location { Location::Path => "path", Location::Query => "query" },
                "required": p.required,
                "description": p.description,
                "schema": {"type": p.ty},
            })
        })
        .collect();
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({"description": "OK", "content": {route.answer.media: {"schema": r(route.answer.schema)}}}),
    );
    let mut errors = route.errors.clone();
    if route.role.is_some() {
        errors.extend([401, 403]);
    }
    if route.body.is_some() {
        errors.push(408);
    }
    if !super::routes::is_service(route) {
        errors.push(429);
    }
    errors.sort_unstable();
    errors.dedup();
    for code in errors {
        responses.insert(
            code.to_string(),
            json!({"description": status_text(code), "content": {"application/json": {"schema": r("Error")}}}),
        );
    }
    let mut op = json!({
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": params,
        "responses": responses,
    });
    match route.role {
        Some(role) => {
            op["security"] =
                json!([{"key": [], "token": []}, {"key_query": [], "token_query": []}]);
            op["x-required-role"] = json!(role.as_str());
            if route.agent_self {
                op["x-agent-key"] = json!("a key of role agent may use it for its own agent");
            }
        }
        None => op["security"] = json!([]),
    }
    if let Some(b) = route.body {
        op["requestBody"] =
            json!({"required": true, "content": {b.media: {"schema": r(b.schema)}}});
    }
    op
}

/// The OpenAPI document of the given routes.
pub fn document(routes: &[Route]) -> Value {
    let mut paths = Map::new();
    for route in routes {
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        entry[route.method.to_ascii_lowercase()] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "fsdialer API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Outbound dialer for FreeSWITCH; routes compatible with Webitel v3's /api/v2/dialer. \
                            Answers are {\"status\":\"OK\",\"data\":...}; errors {\"status\":\"error\",\"info\":...}.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "key": {"type": "apiKey", "in": "header", "name": "X-Key"},
                "token": {"type": "apiKey", "in": "header", "name": "X-Access-Token"},
                "key_query": {"type": "apiKey", "in": "query", "name": "x_key"},
                "token_query": {"type": "apiKey", "in": "query", "name": "access_token"},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::Keys;
    use crate::api::{ApiConfig, import::ImportReport};
    use crate::campaign::config::CampaignConfig;
    use crate::store::{CommState, Communication, Counters, Member, MemberId, MemberState};

    fn keys_of(v: &Value) -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn assert_described(schema: &Value, value: &Value, what: &str) {
        let props = &schema["properties"];
        for k in keys_of(value) {
            assert!(
                props.get(&k).is_some(),
                "{what}: field {k:?} is not described in the schema"
            );
        }
    }

    #[test]
    fn every_campaign_config_field_is_described() {
        let mut c: CampaignConfig =
            serde_json::from_str(include_str!("../../fixtures/campaigns/debt_reminder.json"))
                .unwrap();
        c.cps = Some(1.0);
        assert_described(
            &campaign_config(),
            &serde_json::to_value(&c).unwrap(),
            "CampaignConfig",
        );
    }

    #[test]
    fn every_member_view_field_is_described() {
        let m = Member {
            id: MemberId(1),
            name: "a".into(),
            priority: 0,
            timezone: None,
            expire: None,
            variables: Default::default(),
            communications: vec![Communication {
                number: "1".into(),
                priority: 0,
                description: None,
                kind: None,
                state: CommState::Idle,
                attempts: 0,
                last_call_at: None,
                last_cause: None,
            }],
            external_id: None,
            state: MemberState::Waiting,
            next_due: None,
            tries: 0,
            attempts: 0,
            end_cause: None,
            success: false,
            current_attempt: None,
            terminate_pending: false,
        };
        let v = crate::api::views::member("c", &m);
        assert_described(&member_view(), &v, "Member");
        assert_described(
            &communication_view(),
            &v["communications"][0],
            "Communication",
        );
        assert_described(
            &counters(),
            &serde_json::to_value(Counters::default()).unwrap(),
            "Stats",
        );
        let report = ImportReport {
            rows: 0,
            added: 0,
            updated: 0,
            in_call: 0,
            rejected: 0,
            errors: vec![],
            errors_truncated: false,
            delimiter: ",".into(),
            encoding: "utf-8",
            written: false,
        };
        assert_described(
            &import_report(),
            &serde_json::to_value(report).unwrap(),
            "ImportReport",
        );
    }

    #[test]
    fn the_document_has_every_route_with_its_role_and_resolvable_refs() {
        let cfg = ApiConfig::new(Keys::default());
        let routes = crate::api::routes::table(&cfg);
        let doc = document(&routes);
        for route in &routes {
            let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
            assert_eq!(
                op["operationId"], route.operation_id,
                "{} {}",
                route.method, route.path
            );
            assert_eq!(
                op["x-required-role"].as_str(),
                route.role.map(|r| r.as_str())
            );
        }
        let text = doc.to_string();
        let schemas = schemas();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            assert!(schemas.contains_key(&name), "dangling $ref {name}");
        }
    }
}
