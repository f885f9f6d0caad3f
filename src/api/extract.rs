//! Reading requests with the API's own errors: path and query parameters whose rejections answer
//! `{"status":"error",...}` instead of axum's plain text, and bodies read under a size limit (413).

use super::error::ApiError;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::de::DeserializeOwned;

/// Path parameters; a bad one is a 400 naming it.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::bad_request(format!("path: {}", e.body_text())))
    }
}

/// Query parameters; a bad one is a 400 naming it.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| {
                let text = e.body_text();
                let text = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text)
                    .to_string();
                ApiError::bad_request(format!("query: {text}"))
            })
    }
}

/// How much of an oversized body is still read (and dropped) before answering 413, so that ordinary clients see
/// the answer instead of a reset connection; beyond it the connection is closed.
const DRAIN_AFTER_LIMIT: usize = 1 << 20;

/// Reads a whole body of at most `limit` bytes (413 beyond it).
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    if declared.is_some_and(|n| n > limit as u64) {
        drain(&mut stream, DRAIN_AFTER_LIMIT).await;
        return Err(ApiError::too_large(limit));
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(body_error)?;
        if buf.len() + chunk.len() > limit {
            drain(&mut stream, DRAIN_AFTER_LIMIT).await;
            return Err(ApiError::too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

async fn drain(stream: &mut axum::body::BodyDataStream, mut budget: usize) {
    while budget > 0 {
        match stream.next().await {
            Some(Ok(c)) => budget = budget.saturating_sub(c.len()),
            _ => return,
        }
    }
}

/// Why a body could not be read: 408 when a body timeout of [`super::server`] fired, else 400.
pub fn body_error(e: axum::Error) -> ApiError {
    let timed_out = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
        .any(|e| e.is::<tower_http::timeout::TimeoutError>());
    if timed_out {
        ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "body: not received in time",
        )
    } else {
        ApiError::bad_request(format!("body: {e}"))
    }
}

/// How deeply `bytes` (JSON text) nests arrays and objects, counting at most to `limit + 1`.
fn json_depth(bytes: &[u8], limit: usize) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    return deepest;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Parses a JSON body nested at most `max_depth` deep; a syntax error is a 400 with its line and column.
pub fn parse_json(bytes: &[u8], max_depth: usize) -> Result<serde_json::Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "body: empty; a JSON document is expected",
        ));
    }
    if json_depth(bytes, max_depth) > max_depth {
        return Err(ApiError::bad_request(format!(
            "body: JSON nested deeper than {max_depth} levels"
        )));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("body: invalid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_nesting_is_counted_outside_strings_only() {
        assert_eq!(json_depth(br#"{"a": [1, {"b": "[[[{{"}]}"#, 10), 3);
        assert_eq!(json_depth(br#"["\"[[[", []]"#, 10), 2);
        assert_eq!(json_depth(&[b'['; 1_000_000], 32), 33);
        assert!(
            parse_json(&[b'['; 40], 32)
                .unwrap_err()
                .info
                .contains("deeper than 32")
        );
        assert!(parse_json(b"[[[1]]]", 3).is_ok());
    }
}
