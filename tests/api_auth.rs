//! The auth matrix over real HTTP: every route of the route table, with no key, a wrong secret, an unknown key,
//! each role (in headers and in the query string). 401 for missing or bad credentials, 403 for a role that lacks
//! the right, and a refused request changes nothing.

mod api_support;

use api_support::*;
use fsdialer::api::auth::Role;
use fsdialer::api::routes::table;

fn concrete(path: &str) -> String {
    path.replace("{id}", "auth")
        .replace("{mid}", "1")
        .replace("{state}", "3")
}

fn role_of(key: (&str, &str)) -> Role {
    match key.0 {
        "admin" => Role::Admin,
        "crm" => Role::MembersWriter,
        _ => Role::ReadOnly,
    }
}

/// The API with the campaign `auth` (the `{id}` of [`concrete`]) holding member 1 (its `{mid}`).
async fn start_with_auth_campaign() -> Api {
    let api = start().await;
    api.create_campaign("auth").await;
    api.call(
        "POST",
        "/api/v2/dialer/auth/members",
        Some(member("a", "busy")),
    )
    .await;
    api
}

#[tokio::test]
async fn every_route_answers_401_without_valid_credentials_and_403_for_a_weak_role() {
    let api = start_with_auth_campaign().await;
    let routes = table(&api.running.state.config);
    let mut checked = 0;
    for r in &routes {
        let path = concrete(r.path);
        let Some(required) = r.role else {
            // Public routes answer without a key (the page's login: 400 for its missing body, never 401).
            let a = api.raw(r.method, &path, None, None).await;
            let expected = if r.body.is_some() { 400 } else { 200 };
            assert_eq!(a.status, expected, "{} {}: {}", r.method, r.path, a.text);
            continue;
        };
        let none = api.raw(r.method, &path, None, None).await;
        assert_eq!(none.status, 401, "{} {} without a key", r.method, r.path);
        assert_eq!(none.json["status"], "error");
        assert!(
            none.json["info"]
                .as_str()
                .unwrap()
                .starts_with("missing credentials")
        );
        let wrong = api
            .raw(
                r.method,
                &path,
                Some((ADMIN.0, "0123456789abcdef-admiN")),
                None,
            )
            .await;
        assert_eq!(
            wrong.status, 401,
            "{} {} with a wrong secret",
            r.method, r.path
        );
        assert_eq!(wrong.json["info"], "unknown key or wrong secret");
        let prefix = api
            .raw(
                r.method,
                &path,
                Some((ADMIN.0, "0123456789abcdef-admin-and-more")),
                None,
            )
            .await;
        assert_eq!(prefix.status, 401, "a secret that only starts right");
        let short = api
            .raw(r.method, &path, Some((ADMIN.0, "0123456789abcdef")), None)
            .await;
        assert_eq!(short.status, 401, "a prefix of the secret");
        let unknown = api
            .raw(r.method, &path, Some(("nobody", ADMIN.1)), None)
            .await;
        assert_eq!(
            unknown.status, 401,
            "{} {} with an unknown key",
            r.method, r.path
        );
        let other = api
            .raw(r.method, &path, Some((READER.0, WRITER.1)), None)
            .await;
        assert_eq!(other.status, 401, "another key's secret");
        for key in [READER, WRITER] {
            let a = api.raw(r.method, &path, Some(key), None).await;
            if role_of(key) < required {
                assert_eq!(
                    a.status, 403,
                    "{} {} as {}: {}",
                    r.method, r.path, key.0, a.text
                );
                assert_eq!(
                    a.json["info"],
                    format!(
                        "key {:?} has role {}; this route needs {}",
                        key.0,
                        role_of(key).as_str(),
                        required.as_str()
                    )
                );
            } else {
                assert!(
                    ![401, 403].contains(&a.status),
                    "{} {} as {}: {}",
                    r.method,
                    r.path,
                    key.0,
                    a.text
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 20, "{checked} keyed routes checked");
    // Nothing the refused requests asked for happened: the campaign (which only admin may delete or run) is
    // still there and was never run. (The members-writer key was allowed to delete the member.)
    let c = api.get("/api/v2/dialer/auth").await;
    assert_eq!(c.status, 200);
    assert_eq!(c.json["data"]["run"], false);
    api.shutdown().await;
}

#[tokio::test]
async fn keys_in_the_query_string_work_like_the_headers() {
    let api = start().await;
    api.create_campaign("q").await;
    let url = |key: &str, token: &str| {
        format!("/api/v2/dialer/q/members?x_key={key}&access_token={token}")
    };
    let a = api
        .raw(
            "POST",
            &url(WRITER.0, WRITER.1),
            None,
            Some((
                member("a", "1").to_string().into_bytes(),
                "application/json",
            )),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let ro = api
        .raw(
            "POST",
            &url(READER.0, READER.1),
            None,
            Some((
                member("b", "1").to_string().into_bytes(),
                "application/json",
            )),
        )
        .await;
    assert_eq!(ro.status, 403);
    let bad = api.raw("GET", &url(READER.0, "nope"), None, None).await;
    assert_eq!(bad.status, 401);
    let ok = api.raw("GET", &url(READER.0, READER.1), None, None).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json["data"].as_array().unwrap().len(), 1);
    // Percent-encoded secrets are decoded.
    let enc = api
        .raw(
            "GET",
            &format!(
                "/api/v2/dialer/q?x_key=ro&access_token={}",
                READER.1.replace('-', "%2D")
            ),
            None,
            None,
        )
        .await;
    assert_eq!(enc.status, 200);
    assert_eq!(api.member_count("q").await, 1);
    api.shutdown().await;
}

/// What the route table says a request of `method` on the table path `path` must get, for a caller holding
/// `role` (None: no key or a wrong one): `Ok(())` when the handler runs, `Err(status)` otherwise.
fn expected(
    routes: &[fsdialer::api::routes::Route],
    method: &str,
    path: &str,
    role: Option<Role>,
) -> Result<(), u16> {
    let of_path: Vec<_> = routes.iter().filter(|r| r.path == path).collect();
    let wanted = if method == "HEAD" { "GET" } else { method };
    let entry = of_path.iter().find(|r| r.method == wanted);
    // No entry for the method: the weakest check of the path (public if any of its methods is), then 405.
    let required = match entry {
        Some(r) => r.role,
        None if of_path.iter().any(|r| r.role.is_none()) => None,
        None => of_path.iter().filter_map(|r| r.role).min(),
    };
    match (required, role) {
        (Some(_), None) => Err(401),
        (Some(req), Some(have)) if have < req => Err(403),
        _ if entry.is_none() => Err(405),
        _ => Ok(()),
    }
}

/// Who sends a request: the key sent, and the role it proves (None: no key or a wrong secret).
#[derive(Clone, Copy)]
struct Caller {
    key: Option<(&'static str, &'static str)>,
    role: Option<Role>,
}

#[tokio::test]
async fn every_route_and_method_is_allowed_exactly_as_the_route_table_says() {
    let api = start_with_auth_campaign().await;
    let routes = table(&api.running.state.config);
    let mut paths: Vec<&str> = routes.iter().map(|r| r.path).collect();
    paths.sort_unstable();
    paths.dedup();
    assert!(paths.len() >= 15, "{} paths in the table", paths.len());
    let methods = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "FOO",
    ];
    // Callers: no key, a wrong secret, then each role (admin last: its allowed writes may delete the campaign,
    // which only turns later answers into 404s, still "the handler ran").
    let callers = [
        Caller {
            key: None,
            role: None,
        },
        Caller {
            key: Some((ADMIN.0, "0123456789abcdef-admiN")),
            role: None,
        },
        Caller {
            key: Some(READER),
            role: Some(Role::ReadOnly),
        },
        Caller {
            key: Some(WRITER),
            role: Some(Role::MembersWriter),
        },
        Caller {
            key: Some(ADMIN),
            role: Some(Role::Admin),
        },
    ];
    let mut checked = 0;
    for Caller { key, role } in callers {
        for path in &paths {
            for method in methods {
                let a = api.raw(method, &concrete(path), key, None).await;
                let what = format!(
                    "{method} {path} as {:?}: {} {}",
                    key.map(|k| k.0),
                    a.status,
                    a.text
                );
                match expected(&routes, method, path, role) {
                    Err(status) => {
                        assert_eq!(a.status, status, "{what}");
                        if method != "HEAD" {
                            assert_eq!(a.json["status"], "error", "{what}");
                        }
                    }
                    Ok(()) => assert!(![401, 403, 405].contains(&a.status), "{what}"),
                }
                if method == "HEAD" {
                    assert!(a.text.is_empty(), "HEAD answers no body: {what}");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, callers.len() * paths.len() * methods.len());
    api.shutdown().await;
}

/// A log sink for the test: everything written by the tracing subscriber.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let logs = Captured::default();
    let sink = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish(),
    )
    .expect("the only subscriber of this test binary");
    let api = start().await;
    let token = READER.1;
    let ok = api
        .raw(
            "GET",
            &format!(
                "/api/v2/dialer?x_key={}&access_token={token}&limit=5",
                READER.0
            ),
            None,
            None,
        )
        .await;
    assert_eq!(ok.status, 200);
    let header = api
        .raw("GET", "/api/v2/dialer?limit=7", Some(ADMIN), None)
        .await;
    assert_eq!(header.status, 200);
    let wrong = api
        .raw(
            "GET",
            "/api/v2/dialer?access_token=wrong-secret-1234",
            None,
            None,
        )
        .await;
    assert_eq!(wrong.status, 401);
    api.shutdown().await;
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // The requests were traced, with their query strings redacted...
    assert!(
        text.contains("access_token=<redacted>&limit=5"),
        "no traced request in:\n{text}"
    );
    assert!(text.contains("limit=7"), "{text}");
    // ...and no secret, from the query string or the X-Access-Token header, appears anywhere.
    for secret in [token, ADMIN.1, "wrong-secret-1234"] {
        assert!(!text.contains(secret), "{secret} logged:\n{text}");
    }
}

#[tokio::test]
async fn the_page_login_sets_httponly_cookies_that_read_and_write_only_with_the_page_header() {
    let api = start_with_auth_campaign().await;
    let login = |token: &'static str| {
        api.http
            .post(api.url("/page/login"))
            .header("Content-Type", "application/json")
            .body(serde_json::json!({"key": READER.0, "token": token}).to_string())
            .send()
    };
    assert_eq!(login("0123456789abcdef-wrong").await.unwrap().status(), 401);
    let ok = login(READER.1).await.unwrap();
    assert_eq!(ok.status(), 200);
    let cookies: Vec<String> = ok
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    for c in &cookies {
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
    }
    let jar: String = cookies
        .iter()
        .map(|c| c.split(';').next().unwrap())
        .collect::<Vec<_>>()
        .join("; ");
    // A read with the cookies works at the key's role: read-only here.
    let read = api
        .http
        .get(api.url("/api/v2/dialer/auth/stats"))
        .header("Cookie", &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    // Writes with cookies need the page's header (CSRF), then the role decides.
    let write = |page_header: bool| {
        let mut rq = api
            .http
            .put(api.url("/api/v2/dialer/auth/members/reset"))
            .header("Cookie", &jar);
        if page_header {
            rq = rq.header("X-Fsdialer-Page", "1");
        }
        rq.send()
    };
    let csrf = write(false).await.unwrap();
    assert_eq!(csrf.status(), 403);
    assert!(csrf.text().await.unwrap().contains("x-fsdialer-page"));
    let role = write(true).await.unwrap();
    assert_eq!(role.status(), 403, "a read-only key cannot reset members");
    assert!(role.text().await.unwrap().contains("has role read-only"));
    // The live stream needs a key too.
    let live = api.http.get(api.url("/api/v2/live")).send().await.unwrap();
    assert_eq!(live.status(), 401);
    api.shutdown().await;
}
