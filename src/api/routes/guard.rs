//! The access guard: decides, from the route table alone, what each request must prove before any handler runs.
//!
//! It fails closed:
//! - a request is let through only when its (method, path) has an entry in the table; `HEAD` is the entry of
//!   `GET` on the same path (axum runs the `GET` handler and drops the body), so it needs exactly the same key;
//! - any other method on a known path (`OPTIONS`, `PATCH`, `FOO`...) answers **405 after auth**: the caller must
//!   first pass the weakest check of that path (so a caller without a key learns nothing about which methods
//!   exist), then gets 405;
//! - a matched path without any entry (cannot happen while the router is built from the table, but would if the
//!   two drifted apart) is refused with 403, never served.

use super::Route;
use crate::api::auth::{Caller, Keys, PAGE_HEADER, Role, cookie_credentials, credentials};
use crate::api::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

/// Who may use one method of one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No key needed.
    Public,
    /// A key with at least this role.
    Key(Role),
    /// A key with at least this role, or any key of role `agent` (the handler then admits only the agent's own
    /// resources).
    KeyOrAgent(Role),
}

impl Access {
    fn of(role: Option<Role>, agent_self: bool) -> Access {
        match role {
            None => Access::Public,
            Some(r) if agent_self => Access::KeyOrAgent(r),
            Some(r) => Access::Key(r),
        }
    }

    /// The weaker of two accesses (public is weakest; admitting agent keys is weaker than not).
    fn weaker(self, other: Access) -> Access {
        match (self, other) {
            (Access::Key(a), Access::Key(b)) => Access::Key(a.min(b)),
            (Access::KeyOrAgent(a), Access::Key(b) | Access::KeyOrAgent(b))
            | (Access::Key(a), Access::KeyOrAgent(b)) => Access::KeyOrAgent(a.min(b)),
            _ => Access::Public,
        }
    }
}

/// What the guard does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Check `access`, then run the handler.
    Serve(Access),
    /// Check `access` (the weakest of the path), then answer 405.
    MethodNotAllowed(Access),
    /// The path has no entry in the table: refuse.
    NoEntry,
}

/// The accesses of every (path, method) of the table.
pub struct Guard {
    keys: Keys,
    paths: HashMap<&'static str, HashMap<&'static str, Access>>,
}

impl Guard {
    pub fn new(keys: Keys, routes: &[Route]) -> Guard {
        let mut paths: HashMap<&'static str, HashMap<&'static str, Access>> = HashMap::new();
        for r in routes {
            paths
                .entry(r.path)
                .or_default()
                .insert(r.method, Access::of(r.role, r.agent_self));
        }
        Guard { keys, paths }
    }

    /// The decision for `method` on the table path `path` (axum's matched path).
    pub fn decide(&self, method: &Method, path: Option<&str>) -> Decision {
        let Some(methods) = path.and_then(|p| self.paths.get(p)) else {
            return Decision::NoEntry;
        };
        let looked_up = if method == Method::HEAD {
            Method::GET.as_str()
        } else {
            method.as_str()
        };
        if let Some(access) = methods.get(looked_up) {
            return Decision::Serve(*access);
        }
        match methods.values().copied().reduce(Access::weaker) {
            Some(weakest) => Decision::MethodNotAllowed(weakest),
            None => Decision::NoEntry,
        }
    }

    /// Checks the request's key against `access`; the caller, for keyed routes.
    fn check(&self, req: &Request, access: Access) -> Result<Option<Caller>, ApiError> {
        let (mut key, mut token) = credentials(req.headers(), req.uri().query());
        if key.is_none()
            && token.is_none()
            && access != Access::Public
            && let Some((k, t)) = cookie_credentials(req.headers())
        {
            let read = matches!(*req.method(), Method::GET | Method::HEAD);
            if !read && !req.headers().contains_key(PAGE_HEADER) {
                return Err(ApiError::forbidden(format!(
                    "a write with the page's cookie needs the {PAGE_HEADER} header"
                )));
            }
            (key, token) = (Some(k), Some(t));
        }
        let (key, token) = (key.as_deref(), token.as_deref());
        match access {
            Access::Public => Ok(None),
            Access::Key(required) => self.keys.check_caller(key, token, required).map(Some),
            Access::KeyOrAgent(required) => {
                let c = self.keys.check_caller(key, token, Role::Agent)?;
                if c.role != Role::Agent && c.role < required {
                    return Err(ApiError::forbidden(format!(
                        "key {:?} has role {}; this route needs {}",
                        c.key,
                        c.role.as_str(),
                        required.as_str()
                    )));
                }
                Ok(Some(c))
            }
        }
    }
}

/// The middleware (layered on every route of the router).
/// The caller of a keyed route is put in the request's extensions ([`Caller`]) for handlers that decide per
/// resource (an agent key acts only for its agent).
pub async fn authorize(State(g): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    match g.decide(req.method(), path) {
        Decision::Serve(access) => match g.check(&req, access) {
            Ok(caller) => {
                if let Some(c) = caller {
                    req.extensions_mut().insert(c);
                }
                next.run(req).await
            }
            Err(e) => e.into_response(),
        },
        Decision::MethodNotAllowed(access) => match g.check(&req, access) {
            Ok(_) => super::system::method_not_allowed(req.uri().clone())
                .await
                .into_response(),
            Err(e) => e.into_response(),
        },
        Decision::NoEntry => ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{} {}: no access rule for this route",
                req.method(),
                req.uri().path()
            ),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    fn route(method: &'static str, path: &'static str, role: Option<Role>) -> Route {
        Route::new(method, path, "op", get(|| async {})).role(role)
    }

    #[test]
    fn agent_keys_pass_only_routes_open_to_their_own_agent() {
        let g = guard(&[
            route("PUT", "/s", Some(Role::Admin)).or_own_agent(),
            route("DELETE", "/s", Some(Role::Admin)),
        ]);
        assert_eq!(
            g.decide(&Method::PUT, Some("/s")),
            Decision::Serve(Access::KeyOrAgent(Role::Admin))
        );
        assert_eq!(
            g.decide(&Method::PATCH, Some("/s")),
            Decision::MethodNotAllowed(Access::KeyOrAgent(Role::Admin))
        );
    }

    fn guard(routes: &[Route]) -> Guard {
        Guard::new(Keys::default(), routes)
    }

    #[test]
    fn head_needs_what_get_needs_and_other_methods_are_405_after_the_weakest_check() {
        let g = guard(&[
            route("GET", "/a", Some(Role::ReadOnly)),
            route("PUT", "/a", Some(Role::Admin)),
            route("GET", "/pub", None),
            route("POST", "/w", Some(Role::MembersWriter)),
        ]);
        let ro = Decision::Serve(Access::Key(Role::ReadOnly));
        assert_eq!(g.decide(&Method::GET, Some("/a")), ro);
        assert_eq!(g.decide(&Method::HEAD, Some("/a")), ro);
        assert_eq!(
            g.decide(&Method::PUT, Some("/a")),
            Decision::Serve(Access::Key(Role::Admin))
        );
        assert_eq!(
            g.decide(&Method::OPTIONS, Some("/a")),
            Decision::MethodNotAllowed(Access::Key(Role::ReadOnly))
        );
        assert_eq!(
            g.decide(&Method::from_bytes(b"FOO").unwrap(), Some("/pub")),
            Decision::MethodNotAllowed(Access::Public)
        );
        // HEAD of a path without GET is not a read: it is 405 after the path's check.
        assert_eq!(
            g.decide(&Method::HEAD, Some("/w")),
            Decision::MethodNotAllowed(Access::Key(Role::MembersWriter))
        );
    }

    #[test]
    fn a_path_without_an_entry_is_refused() {
        let g = guard(&[route("GET", "/a", None)]);
        assert_eq!(g.decide(&Method::GET, Some("/b")), Decision::NoEntry);
        assert_eq!(g.decide(&Method::GET, None), Decision::NoEntry);
    }
}
