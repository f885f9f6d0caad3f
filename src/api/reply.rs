//! Success bodies in Webitel v3's envelope: `{"status":"OK","data":...}`.

use axum::Json;
use serde::Serialize;
use serde_json::{Value, json};

/// `{"status":"OK","data":data}`.
pub fn ok(data: impl Serialize) -> Json<Value> {
    let data = serde_json::to_value(data).unwrap_or(Value::Null);
    Json(json!({"status": "OK", "data": data}))
}

/// `{"status":"OK","info":n,"data":n}`: Webitel answered counts (members reset) under `info`; `data` is added
/// for clients written against the rest of the API.
pub fn ok_info(n: impl Serialize + Clone) -> Json<Value> {
    let v = serde_json::to_value(n).unwrap_or(Value::Null);
    Json(json!({"status": "OK", "info": v.clone(), "data": v}))
}
