//! API keys and roles (SPEC §8): every request names a key (`X-Key`, or the `x_key` query parameter) and proves it
//! with its secret (`X-Access-Token`, or `access_token`), the way Webitel v3 clients already send them.
//!
//! - No credentials, an unknown key or a wrong secret: **401**. A valid key whose role lacks the right: **403**.
//! - Secrets are compared in constant time ([`subtle`]): the work done depends only on the configured secret's
//!   length, never on how many leading bytes of the offered one matched, nor on which key id was named (every key
//!   is examined on every request).
//! - Roles: `admin` (everything), `members-writer` (read everything; add, change, delete, terminate, reset and
//!   import members; give results of agent calls), `read-only` (GET only), `agent` (bound to one agent id by the
//!   key's `agent`: read that agent, change its status, accept or skip its previews, give the result of its
//!   calls; nothing else). Unknown role names are refused when the configuration is read.

use super::error::ApiError;
use serde::{Deserialize, Serialize};
use subtle::{Choice, ConstantTimeEq};

/// What a key may do; each route requires one of these (a higher role includes the lower ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// One agent's own routes (see [`Caller::may_act_for`]); below every other role, so no other route admits it.
    Agent,
    /// GET routes.
    ReadOnly,
    /// Member writes (add, update, delete, terminate, reset, import).
    MembersWriter,
    /// Everything, campaigns included.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::ReadOnly => "read-only",
            Role::MembersWriter => "members-writer",
            Role::Admin => "admin",
        }
    }
}

/// One configured key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Sent as `X-Key` / `x_key`.
    pub id: String,
    /// Sent as `X-Access-Token` / `access_token`.
    pub secret: String,
    pub role: Role,
    /// The agent id a key of role `agent` acts as (required for that role, refused for the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// Who made a request: the key's id, its role and, for role `agent`, the agent it acts as. The guard puts it in
/// the request's extensions for the handlers that decide per resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key: String,
    pub role: Role,
    pub agent: Option<String>,
}

impl Caller {
    /// Whether the caller may act as agent `id`: an admin may act for any agent, an agent key only for its own.
    pub fn may_act_for(&self, id: &str) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Agent if self.agent.as_deref() == Some(id) => Ok(()),
            Role::Agent => Err(ApiError::forbidden(format!(
                "key {:?} acts for agent {:?}, not {id:?}",
                self.key,
                self.agent.as_deref().unwrap_or_default()
            ))),
            r => Err(ApiError::forbidden(format!(
                "key {:?} has role {}; acting for an agent needs admin or that agent's key",
                self.key,
                r.as_str()
            ))),
        }
    }

    /// Whether the caller may read agent `id`: any role but `agent`, which reads only its own.
    pub fn may_read(&self, id: &str) -> Result<(), ApiError> {
        match self.role {
            Role::Agent => self.may_act_for(id),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("role", &self.role)
            .field("agent", &self.agent)
            .finish()
    }
}

/// Shortest secret accepted in a configuration.
pub const MIN_SECRET_LEN: usize = 16;

/// The configured keys.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    keys: Vec<ApiKey>,
}

/// Why a key set is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("api.keys[{index}].{field}: {reason}")]
pub struct KeyConfigError {
    pub index: usize,
    pub field: &'static str,
    pub reason: String,
}

/// Constant-time equality of an offered value with an expected one: runs over every byte of `expected` whatever
/// `offered` holds — past the end of `offered` it keeps reading its first byte, selected without a branch — and
/// folds the length check in, so the work depends only on the expected length.
pub fn ct_equal(expected: &[u8], offered: &[u8]) -> Choice {
    const EMPTY: &[u8] = &[0];
    let src = if offered.is_empty() { EMPTY } else { offered };
    let n = offered.len() as u64;
    let mut diff = 0u8;
    for (i, e) in expected.iter().enumerate() {
        // 1 while i < n, then 0 (the sign bit of i - n; both are far below 2^63), so j = i, then 0.
        let inside = (i as u64).wrapping_sub(n) >> 63;
        let j = (i as u64 * inside) as usize;
        diff |= e ^ src[j];
    }
    diff.ct_eq(&0u8) & (expected.len() as u64).ct_eq(&n)
}

impl Keys {
    /// Checks the keys: ids unique and non-empty, secrets at least [`MIN_SECRET_LEN`] bytes.
    pub fn new(keys: Vec<ApiKey>) -> Result<Keys, KeyConfigError> {
        for (index, k) in keys.iter().enumerate() {
            let bad = |field, reason: &str| KeyConfigError {
                index,
                field,
                reason: reason.to_string(),
            };
            if k.id.is_empty() || k.id.len() > 128 || k.id.chars().any(|c| c.is_control()) {
                return Err(bad("id", "must be 1 to 128 printable characters"));
            }
            if keys[..index].iter().any(|o| o.id == k.id) {
                return Err(bad("id", &format!("{:?} is used by another key", k.id)));
            }
            match (&k.role, &k.agent) {
                (Role::Agent, None) => {
                    return Err(bad(
                        "agent",
                        "role agent needs the agent id the key acts as",
                    ));
                }
                (Role::Agent, Some(a)) => {
                    if let Err(e) = crate::agents::model::check_name("agent", a) {
                        return Err(bad("agent", &e.reason));
                    }
                }
                (_, Some(_)) => {
                    return Err(bad("agent", "only a key of role agent acts as an agent"));
                }
                (_, None) => {}
            }
            if k.secret.len() < MIN_SECRET_LEN {
                return Err(bad(
                    "secret",
                    &format!("must be at least {MIN_SECRET_LEN} bytes"),
                ));
            }
        }
        Ok(Keys { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The role of the key named `id` if `secret` is its secret. Every key is examined, in constant time per key.
    pub fn authenticate(&self, id: &str, secret: &str) -> Option<Role> {
        self.identify(id, secret).map(|c| c.role)
    }

    /// The caller behind the key named `id` if `secret` is its secret (every key examined, as `authenticate`).
    pub fn identify(&self, id: &str, secret: &str) -> Option<Caller> {
        let mut found: Option<&ApiKey> = None;
        for k in &self.keys {
            let ok = ct_equal(k.id.as_bytes(), id.as_bytes())
                & ct_equal(k.secret.as_bytes(), secret.as_bytes());
            if bool::from(ok) {
                found = Some(k);
            }
        }
        found.map(|k| Caller {
            key: k.id.clone(),
            role: k.role,
            agent: k.agent.clone(),
        })
    }

    /// Checks a request's credentials against a route's required role: 401 or 403 on refusal.
    pub fn check(
        &self,
        id: Option<&str>,
        secret: Option<&str>,
        required: Role,
    ) -> Result<Role, ApiError> {
        self.check_caller(id, secret, required).map(|c| c.role)
    }

    /// Like [`check`](Self::check), answering who the caller is.
    pub fn check_caller(
        &self,
        id: Option<&str>,
        secret: Option<&str>,
        required: Role,
    ) -> Result<Caller, ApiError> {
        let (Some(id), Some(secret)) = (id, secret) else {
            return Err(ApiError::unauthorized(
                "missing credentials: send X-Key and X-Access-Token headers (or x_key and access_token query parameters)",
            ));
        };
        match self.identify(id, secret) {
            None => Err(ApiError::unauthorized("unknown key or wrong secret")),
            Some(c) if c.role < required => Err(ApiError::forbidden(format!(
                "key {id:?} has role {}; this route needs {}",
                c.role.as_str(),
                required.as_str()
            ))),
            Some(c) => Ok(c),
        }
    }
}

/// Reads the credentials of a request: headers first, then the query string.
pub fn credentials(
    headers: &axum::http::HeaderMap,
    query: Option<&str>,
) -> (Option<String>, Option<String>) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut key = header("x-key");
    let mut token = header("x-access-token");
    if (key.is_none() || token.is_none())
        && let Some(q) = query
    {
        for (k, v) in form_urlencoded_pairs(q) {
            match k.as_str() {
                "x_key" if key.is_none() => key = Some(v),
                "access_token" if token.is_none() => token = Some(v),
                _ => {}
            }
        }
    }
    (key, token)
}

/// The cookie holding the key id of the operator page's login (`api::page`).
pub const KEY_COOKIE: &str = "fsdialer_key";
/// The cookie holding the access token of the operator page's login.
pub const TOKEN_COOKIE: &str = "fsdialer_token";
/// The header a write with cookie credentials must carry: a cross-site form or image cannot set it, and a
/// cross-site script cannot send it without a CORS preflight this API never grants (the CSRF defence, on top
/// of `SameSite=Strict`).
pub const PAGE_HEADER: &str = "x-fsdialer-page";

/// The operator page's credentials from the `Cookie` headers (percent-encoded values), if both are there.
pub fn cookie_credentials(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    let (mut key, mut token) = (None, None);
    for v in headers.get_all(axum::http::header::COOKIE) {
        let Ok(text) = v.to_str() else { continue };
        for part in text.split(';') {
            let Some((name, value)) = part.trim().split_once('=') else {
                continue;
            };
            match name {
                KEY_COOKIE => key = Some(percent_decode(value)),
                TOKEN_COOKIE => token = Some(percent_decode(value)),
                _ => {}
            }
        }
    }
    Some((key?, token?))
}

/// `a=1&b=x%20y` → pairs, percent- and plus-decoded (invalid escapes are kept as written).
pub fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(vec![
            ApiKey {
                id: "admin".into(),
                secret: "0123456789abcdef-admin".into(),
                role: Role::Admin,
                agent: None,
            },
            ApiKey {
                id: "crm".into(),
                secret: "0123456789abcdef-crm".into(),
                role: Role::MembersWriter,
                agent: None,
            },
            ApiKey {
                id: "ro".into(),
                secret: "0123456789abcdef-ro".into(),
                role: Role::ReadOnly,
                agent: None,
            },
        ])
        .unwrap()
    }

    #[test]
    fn constant_time_equality_is_exact() {
        assert!(bool::from(ct_equal(b"secret", b"secret")));
        assert!(!bool::from(ct_equal(b"secret", b"secreT")));
        assert!(!bool::from(ct_equal(b"secret", b"secret2")));
        assert!(!bool::from(ct_equal(b"secret", b"secre")));
        assert!(!bool::from(ct_equal(b"secret", b"")));
        assert!(bool::from(ct_equal(b"", b"")));
        // A missing byte never matches, even one that would equal !e.
        assert!(!bool::from(ct_equal(&[0xff], &[])));
    }

    #[test]
    fn missing_or_wrong_credentials_are_401_and_a_weak_role_is_403() {
        let k = keys();
        assert_eq!(k.check(None, None, Role::ReadOnly).unwrap_err().status, 401);
        assert_eq!(
            k.check(Some("admin"), None, Role::ReadOnly)
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            k.check(Some("admin"), Some("0123456789abcdef-crm"), Role::ReadOnly)
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            k.check(Some("ro"), Some("0123456789abcdef-ro"), Role::MembersWriter)
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(
            k.check(Some("crm"), Some("0123456789abcdef-crm"), Role::Admin)
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(
            k.check(
                Some("crm"),
                Some("0123456789abcdef-crm"),
                Role::MembersWriter
            ),
            Ok(Role::MembersWriter)
        );
        assert_eq!(
            k.check(Some("admin"), Some("0123456789abcdef-admin"), Role::Admin),
            Ok(Role::Admin)
        );
    }

    #[test]
    fn bad_key_configurations_are_refused_naming_the_key() {
        let short = Keys::new(vec![ApiKey {
            id: "a".into(),
            secret: "short".into(),
            role: Role::Admin,
            agent: None,
        }])
        .unwrap_err();
        assert_eq!(
            short.to_string(),
            "api.keys[0].secret: must be at least 16 bytes"
        );
        let k = ApiKey {
            id: "a".into(),
            secret: "0123456789abcdef".into(),
            role: Role::Admin,
            agent: None,
        };
        let dup = Keys::new(vec![k.clone(), k]).unwrap_err();
        assert_eq!(
            dup.to_string(),
            "api.keys[1].id: \"a\" is used by another key"
        );
    }

    #[test]
    fn credentials_come_from_headers_or_the_query_string() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(
            credentials(&h, Some("x_key=k%201&access_token=a+b&other=1")),
            (Some("k 1".into()), Some("a b".into()))
        );
        h.insert("x-key", "hk".parse().unwrap());
        h.insert("x-access-token", "ht".parse().unwrap());
        assert_eq!(
            credentials(&h, Some("x_key=q&access_token=q")),
            (Some("hk".into()), Some("ht".into()))
        );
    }

    #[test]
    fn role_names_are_the_configuration_names() {
        let r: Role = serde_json::from_str("\"members-writer\"").unwrap();
        assert_eq!(r, Role::MembersWriter);
        assert!(Role::Admin > Role::MembersWriter && Role::MembersWriter > Role::ReadOnly);
        assert!(
            Role::ReadOnly > Role::Agent,
            "an agent key passes no route of the other roles"
        );
        assert!(
            serde_json::from_str::<Role>("\"supervisor\"").is_err(),
            "unknown roles are refused"
        );
    }

    #[test]
    fn an_agent_key_is_bound_to_its_agent_and_acts_only_for_it() {
        let key = |role, agent: Option<&str>| ApiKey {
            id: "k".into(),
            secret: "0123456789abcdef".into(),
            role,
            agent: agent.map(str::to_owned),
        };
        assert_eq!(
            Keys::new(vec![key(Role::Agent, None)])
                .unwrap_err()
                .to_string(),
            "api.keys[0].agent: role agent needs the agent id the key acts as"
        );
        assert!(Keys::new(vec![key(Role::Admin, Some("a1"))]).is_err());
        let k = Keys::new(vec![key(Role::Agent, Some("a1"))]).unwrap();
        let c = k
            .check_caller(Some("k"), Some("0123456789abcdef"), Role::Agent)
            .unwrap();
        assert_eq!(c.agent.as_deref(), Some("a1"));
        assert!(c.may_act_for("a1").is_ok() && c.may_read("a1").is_ok());
        assert_eq!(c.may_act_for("a2").unwrap_err().status, 403);
        assert_eq!(
            k.check(Some("k"), Some("0123456789abcdef"), Role::ReadOnly)
                .unwrap_err()
                .status,
            403
        );
        let ro = Caller {
            key: "ro".into(),
            role: Role::ReadOnly,
            agent: None,
        };
        assert!(ro.may_read("a1").is_ok());
        assert_eq!(ro.may_act_for("a1").unwrap_err().status, 403);
    }
}
