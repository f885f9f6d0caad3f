//! The live operator page at `/`: HTML, CSS and JS embedded in the binary (`assets/`, no build step, nothing
//! from a CDN, works offline), a login with an API key, and the live stream ([`live`]).
//!
//! Login: `POST /page/login` with `{key, token}` checks the key (role read-only or above; agent keys are refused)
//! and answers with two `HttpOnly; SameSite=Strict` cookies (`Secure` behind HTTPS) holding the key id and token,
//! percent-encoded, so neither script on the page nor the stream's URL ever carries the key. The access guard
//! accepts those cookies where no key header is given (`routes/guard.rs`); a write (`POST`, `PUT`, `DELETE`) with
//! cookie credentials must also carry `X-Fsdialer-Page: 1`, which no cross-site form can send (CSRF).
//! `POST /page/logout` clears them. The page uses the ordinary API for every action (run/stop, create a campaign,
//! CSV import with upload progress, member search, attempts, exports), so its rights are the key's.

pub mod live;

use super::ApiState;
use super::auth::{KEY_COOKIE, Role, TOKEN_COOKIE};
use super::error::ApiError;
use super::extract::{parse_json, read_body};
use super::reply::ok;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The page's content security policy: its own files only (no inline script, no third party).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(content_type: &'static str, text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        text,
    )
        .into_response()
}

/// `GET /`
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}
/// `GET /page/app.js`
pub async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}
/// `GET /page/app.css`
pub async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// Everything but unreserved URL characters, percent-encoded (a cookie value cannot hold `;`, `,`, spaces...).
fn cookie_value(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn cookie(name: &str, value: &str, secure: bool, max_age: Option<u32>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// How long a login lasts (the browser forgets the cookies then).
const LOGIN_SECS: u32 = 12 * 3600;

/// `POST /page/login`: `{key, token}`.
pub async fn login(
    State(st): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, st.config.max_body_bytes).await?;
    let v = parse_json(&bytes, st.config.http.max_json_depth)?;
    let field = |name: &str| {
        v.get(name)
            .and_then(|x| x.as_str())
            .filter(|x| !x.is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("body: {name}: missing (a string)")))
    };
    let (key, token) = (field("key")?, field("token")?);
    let caller = st
        .config
        .keys
        .check_caller(Some(key), Some(token), Role::ReadOnly)?;
    let secure = st.config.https;
    let mut r = ok(json!({"key": caller.key, "role": caller.role.as_str()})).into_response();
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        cookie(KEY_COOKIE, &cookie_value(key), secure, Some(LOGIN_SECS)),
    );
    h.append(
        header::SET_COOKIE,
        cookie(TOKEN_COOKIE, &cookie_value(token), secure, Some(LOGIN_SECS)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `POST /page/logout`: forgets the cookies.
pub async fn logout(State(st): State<Arc<ApiState>>) -> Response {
    let secure = st.config.https;
    let mut r = (StatusCode::OK, ok(json!({"logged_out": true}))).into_response();
    let h = r.headers_mut();
    h.append(header::SET_COOKIE, cookie(KEY_COOKIE, "", secure, Some(0)));
    h.append(
        header::SET_COOKIE,
        cookie(TOKEN_COOKIE, "", secure, Some(0)),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_values_survive_any_token_and_round_trip_through_the_guard_s_reader() {
        let token = "a b;c,d=é%";
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!(
                "other=1; {KEY_COOKIE}={}; {TOKEN_COOKIE}={}",
                cookie_value("ops"),
                cookie_value(token)
            ))
            .unwrap(),
        );
        assert_eq!(
            super::super::auth::cookie_credentials(&headers),
            Some(("ops".to_owned(), token.to_owned()))
        );
        let c = cookie(TOKEN_COOKIE, "x", true, Some(60));
        let text = c.to_str().unwrap();
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Max-Age=60",
            "Path=/",
        ] {
            assert!(text.contains(part), "{text}");
        }
    }
}
