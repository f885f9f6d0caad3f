//! The OpenAPI schemas of the do-not-call routes and of caller-ID pools (issue 21; see [`super::openapi`], which
//! adds them to the document).

use super::openapi::{obj, ok_of, r};
use serde_json::{Map, Value, json};

/// A campaign's or a gateway's caller-ID pool (`campaign::caller_id`).
pub fn caller_id_pool() -> Value {
    obj(
        json!({
            "numbers": {"type": "array", "minItems": 1, "maxItems": 1000, "items": obj(json!({
                "number": {"type": "string", "pattern": "^\\+?[0-9]{3,20}$"},
                "prefix": {"type": "string", "pattern": "^\\+?[0-9]{1,15}$",
                           "description": "callee digits this number is local to (local_presence)"},
            }), &["number"])},
            "rotation": {"enum": ["round_robin", "random", "least_used"], "default": "round_robin"},
            "local_presence": {"type": "boolean", "default": false,
                               "description": "prefer the number whose prefix is the longest prefix of the callee"},
            "daily_cap": {"type": "integer", "minimum": 1,
                          "description": "calls per caller ID per UTC day across every node; absent = no cap"},
            "when_capped": {"enum": ["hold", "switch_default"], "default": "hold",
                            "description": "every number capped: hold the call (claim back uncounted) or place it with the switch's default caller ID"},
        }),
        &["numbers"],
    )
}

/// A campaign's recycle rules by cause (`campaign::retry_rules`).
pub fn retry_rules() -> Value {
    json!({"type": "array", "maxItems": 32, "default": [],
        "description": "per cause, the wait before the next call instead of wait_between_retries_sec, and a cap on the member's counted tries (never above max_tries); the first rule listing a cause wins, a cause in one rule only",
        "items": obj(json!({
            "causes": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^[A-Z0-9_]{1,64}$"}},
            "after_sec": {"type": "integer", "minimum": 0, "maximum": 2_592_000},
            "max": {"type": "integer", "minimum": 1},
        }), &["causes", "after_sec"])})
}

/// A campaign's number normalisation rule (`dnc::normalize`).
pub fn e164_rule() -> Value {
    obj(
        json!({
            "country_code": {"type": "string", "pattern": "^[0-9]{1,3}$"},
            "trunk_prefix": {"type": "string", "pattern": "^[0-9]{0,3}$", "default": "0"},
            "international_prefix": {"type": "string", "pattern": "^[0-9]{1,4}$", "default": "00"},
        }),
        &[],
    )
}

/// Each caller ID's figures in the stats.
pub fn caller_id_figures() -> Value {
    json!({"type": "array", "items": obj(json!({
        "caller_id": {"type": "string"}, "calls": {"type": "integer"}, "answered": {"type": "integer"},
        "answer_rate": {"type": ["number", "null"]},
    }), &["caller_id", "calls", "answered"])})
}

pub fn add(m: &mut Map<String, Value>) {
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let n = json!({"type": "integer"});
    put(
        "DncEntries",
        obj(
            json!({"numbers": strings, "prefixes": strings,
                   "e164": {"description": "global list only: the rule numbers are written in", "allOf": [r("E164Rule")]}}),
            &[],
        ),
    );
    put("E164Rule", e164_rule());
    put(
        "DncSizes",
        obj(
            json!({"numbers": n, "prefixes": n}),
            &["numbers", "prefixes"],
        ),
    );
    let counts = obj(
        json!({"numbers": n, "prefixes": n}),
        &["numbers", "prefixes"],
    );
    put(
        "DncChangeAnswer",
        ok_of(obj(
            json!({"list": {"type": "string"}, "added": counts, "removed": counts, "sizes": r("DncSizes")}),
            &["list", "sizes"],
        )),
    );
    put(
        "DncSizesAnswer",
        ok_of(obj(
            json!({"list": {"type": "string"}, "sizes": r("DncSizes")}),
            &["list", "sizes"],
        )),
    );
    put(
        "DncCheckAnswer",
        ok_of(obj(
            json!({
                "number": {"type": "string"},
                "normalized": {"type": "string", "description": "+ and the international digits"},
                "listed": {"type": "boolean"},
                "lists": {"type": "array", "items": obj(json!({
                    "list": {"type": "string", "description": "global or campaign:<id>"},
                    "entry": {"type": "string"},
                    "kind": {"enum": ["number", "prefix"]},
                }), &["list", "entry", "kind"])},
            }),
            &["number", "normalized", "listed", "lists"],
        )),
    );
    put(
        "DncImportAnswer",
        ok_of(obj(
            json!({
                "list": {"type": "string"},
                "import": obj(json!({
                    "lines": n, "entries": n, "added": n, "rejected": n,
                    "errors": {"type": "array", "items": obj(json!({"line": n, "reason": {"type": "string"}}), &["line", "reason"])},
                }), &["lines", "entries", "added", "rejected", "errors"]),
                "sizes": r("DncSizes"),
            }),
            &["list", "import", "sizes"],
        )),
    );
}
