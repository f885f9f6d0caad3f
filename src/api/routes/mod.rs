//! The route table: every route of the API with its handler and its documentation in one entry.
//!
//! [`table`] lists the routes; [`router`] builds the axum router from it (with the role check of each entry, made
//! by [`guard`], which refuses what the table does not allow) and
//! [`crate::api::openapi::document`] builds `/api/v2/openapi.json` from the same entries, so a route cannot exist
//! without being documented, nor be documented with another role than the one enforced.

pub mod agents;
pub mod campaigns;
pub mod compliance;
pub mod dnc;
pub mod files;
pub mod guard;
pub mod members;
pub mod system;
pub mod webhooks;

use super::auth::Role;
use super::page;
use super::{ApiConfig, ApiState};
use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::http::{HeaderName, Request};
use axum::routing::{MethodRouter, delete, get, post, put};
use std::sync::Arc;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::{
    DeadlineBody, RequestBodyDeadlineLayer, RequestBodyTimeoutLayer, TimeoutBody,
};

/// Where a parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
}

/// One documented parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: &'static str,
    pub location: Location,
    pub required: bool,
    /// JSON Schema type: `string`, `integer` or `boolean`.
    pub ty: &'static str,
    pub description: &'static str,
}

/// A body or an answer: media type and schema name (see `openapi::schemas`).
#[derive(Debug, Clone, Copy)]
pub struct Content {
    pub media: &'static str,
    pub schema: &'static str,
}

pub const JSON: &str = "application/json";
pub const CSV: &str = "text/csv";
pub const TEXT: &str = "text/plain";

/// One route: handler and documentation.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// `None`: no key needed.
    pub role: Option<Role>,
    /// A key of role `agent` may also use the route, for its own agent only (the handler checks which).
    pub agent_self: bool,
    pub params: Vec<Param>,
    pub body: Option<Content>,
    pub answer: Content,
    /// Error statuses the route may answer (besides 401/403 for keyed routes).
    pub errors: Vec<u16>,
    pub handler: MethodRouter<Arc<ApiState>>,
}

impl Route {
    fn new(
        method: &'static str,
        path: &'static str,
        operation_id: &'static str,
        handler: MethodRouter<Arc<ApiState>>,
    ) -> Route {
        let params = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| Param {
                name,
                location: Location::Path,
                required: true,
                ty: "string",
                description: match name {
                    "id" => "campaign id",
                    "mid" => "member id",
                    "state" => "1 = run, 3 = stop",
                    _ => "",
                },
            })
            .collect();
        Route {
            method,
            path,
            operation_id,
            summary: "",
            tag: "dialer",
            role: Some(Role::ReadOnly),
            agent_self: false,
            params,
            body: None,
            answer: Content {
                media: JSON,
                schema: "Ok",
            },
            errors: vec![404],
            handler,
        }
    }
    fn summary(mut self, s: &'static str) -> Route {
        self.summary = s;
        self
    }
    fn tag(mut self, t: &'static str) -> Route {
        self.tag = t;
        self
    }
    fn role(mut self, r: Option<Role>) -> Route {
        self.role = r;
        self
    }
    /// Also open to a key of role `agent`, for its own agent.
    fn or_own_agent(mut self) -> Route {
        self.agent_self = true;
        self
    }
    fn query(mut self, name: &'static str, ty: &'static str, description: &'static str) -> Route {
        self.params.push(Param {
            name,
            location: Location::Query,
            required: false,
            ty,
            description,
        });
        self
    }
    fn body(mut self, media: &'static str, schema: &'static str) -> Route {
        self.body = Some(Content { media, schema });
        self
    }
    fn answer(mut self, media: &'static str, schema: &'static str) -> Route {
        self.answer = Content { media, schema };
        self
    }
    /// Describes path parameter `name` (the default descriptions are the campaign routes').
    fn path_doc(mut self, name: &'static str, description: &'static str) -> Route {
        for p in &mut self.params {
            if p.name == name && p.location == Location::Path {
                p.description = description;
            }
        }
        self
    }
    fn errors(mut self, e: &[u16]) -> Route {
        self.errors = e.to_vec();
        self
    }
}

const D: &str = "/api/v2/dialer";
const AG: &str = "/api/v2/agents";
const DNC: &str = "/api/v2/dnc";

/// Every route of the API.
pub fn table(cfg: &ApiConfig) -> Vec<Route> {
    use Role::*;
    let w = Some(MembersWriter);
    let a = Some(Admin);
    vec![
        Route::new("GET", D, "listCampaigns", get(campaigns::list))
            .summary("List campaigns")
            .answer(JSON, "CampaignList")
            .errors(&[]),
        Route::new("POST", D, "createCampaign", post(campaigns::create))
            .summary("Create a campaign (id generated when absent)")
            .role(a)
            .body(JSON, "CampaignConfig")
            .answer(JSON, "CampaignAnswer")
            .errors(&[400, 409, 413, 422]),
        Route::new("GET", "/api/v2/dialer/{id}", "getCampaign", get(campaigns::get))
            .summary("Read a campaign")
            .answer(JSON, "CampaignAnswer"),
        Route::new("PUT", "/api/v2/dialer/{id}", "updateCampaign", put(campaigns::update))
            .summary("Change a campaign: the fields given replace the current ones")
            .role(a)
            .body(JSON, "CampaignConfig")
            .answer(JSON, "CampaignAnswer")
            .errors(&[400, 404, 413, 422]),
        Route::new("DELETE", "/api/v2/dialer/{id}", "deleteCampaign", delete(campaigns::delete))
            .summary("Delete a campaign with its members and results (409 while calls are in progress)")
            .role(a)
            .answer(JSON, "Deleted")
            .errors(&[404, 409]),
        Route::new("PUT", "/api/v2/dialer/{id}/state/{state}", "setCampaignState", put(campaigns::set_state))
            .summary("Run (1) or stop (3) a campaign")
            .role(a)
            .answer(JSON, "CampaignAnswer")
            .errors(&[400, 404]),
        Route::new("GET", "/api/v2/dialer/{id}/stats", "campaignStats", get(campaigns::stats))
            .summary("Campaign counters and state")
            .answer(JSON, "StatsAnswer"),
        Route::new("GET", "/api/v2/dialer/{id}/history", "campaignHistory", get(campaigns::history))
            .summary("Campaign state transitions seen by this node")
            .answer(JSON, "HistoryAnswer"),
        Route::new("GET", "/api/v2/dialer/{id}/compliance", "campaignCompliance", get(compliance::get))
            .summary("The abandonment record per UTC day (live answers, abandoned within the FTC 2-s rule, machine \
                      answers, messages played) with the rolling 30-day rate; `format=csv` for CSV")
            .query("from", "string", "first day, YYYY-MM-DD (default: 29 days before `to`)")
            .query("to", "string", "last day, YYYY-MM-DD (default: today, UTC)")
            .query("format", "string", "json (default) or csv")
            .answer(JSON, "ComplianceAnswer")
            .errors(&[400, 404]),
        Route::new("GET", "/api/v2/dialer/{id}/webhooks", "webhookCounts", get(webhooks::counts))
            .summary("The campaign's webhook outbox: markers, events queued, dead letters")
            .tag("webhooks")
            .answer(JSON, "WebhookCounts"),
        Route::new("GET", "/api/v2/dialer/{id}/webhooks/dead", "webhookDeadLetters", get(webhooks::dead))
            .summary("Webhook events that failed max_attempts times, newest first")
            .tag("webhooks")
            .query("offset", "integer", "dead letters to skip (default 0)")
            .query("limit", "integer", "page size (1 to 1000, default 100)")
            .answer(JSON, "DeadLetters")
            .errors(&[400, 404]),
        Route::new("POST", "/api/v2/dialer/{id}/webhooks/dead/replay", "replayAllDeadLetters", post(webhooks::replay_all))
            .summary("Queue every dead letter again, its tries reset")
            .tag("webhooks")
            .role(a)
            .answer(JSON, "Replayed"),
        Route::new("POST", "/api/v2/dialer/{id}/webhooks/dead/{did}/replay", "replayDeadLetter", post(webhooks::replay))
            .summary("Queue one dead letter again, its tries reset")
            .tag("webhooks")
            .role(a)
            .path_doc("did", "the dead letter's id")
            .answer(JSON, "Replayed"),
        Route::new("POST", "/api/v2/dialer/{id}/members", "addMembers", post(members::add))
            .summary("Add one member or an array of members; every member is validated before anything is written")
            .tag("members")
            .role(w)
            .query("autoRun", "boolean", "run the campaign after adding")
            .body(JSON, "MemberInputOrArray")
            .answer(JSON, "AddAnswer")
            .errors(&[400, 404, 413, 422]),
        Route::new("GET", "/api/v2/dialer/{id}/members", "listMembers", get(members::list))
            .summary("List members in id order")
            .tag("members")
            .query("limit", "integer", "page size (1 to 10000, default 100)")
            .query("page", "integer", "page number from 1 (skipping at most 100000 members; beyond, use after)")
            .query("after", "integer", "cursor: the previous answer's `next`")
            .query("sort", "string", "only `id` (ascending) is supported")
            .query("state", "string", "waiting, active or ended")
            .query("end_cause", "string", "only members that ended with this cause")
            .query("name", "string", "search: members whose name contains this (ASCII letters case-insensitive, at most 100 characters); one request examines at most 100000 member ids, then answers what it found with `next`; page with `after`")
            .answer(JSON, "MemberList")
            .errors(&[400, 404]),
        Route::new("GET", "/api/v2/dialer/{id}/members/count", "countMembers", get(members::count))
            .summary("Count members")
            .tag("members")
            .query("state", "string", "waiting, active or ended")
            .query("end_cause", "string", "only members that ended with this cause")
            .answer(JSON, "CountAnswer")
            .errors(&[400, 404]),
        Route::new("PUT", "/api/v2/dialer/{id}/members/reset", "resetMembers", put(members::reset))
            .summary("Revive every ended, unsuccessful member")
            .tag("members")
            .role(w)
            .answer(JSON, "ResetAnswer"),
        Route::new("POST", "/api/v2/dialer/{id}/members/import", "importMembers", post(files::import))
            .summary("Import members from CSV (SPEC §9)")
            .tag("members")
            .role(w)
            .query("delimiter", "string", "`,`, `;` or `tab` (detected when absent)")
            .query("encoding", "string", "utf-8, windows-1251, utf-16le or utf-16be (detected when absent)")
            .query("all_or_nothing", "boolean", "import nothing unless every row is valid")
            .query("autoRun", "boolean", "run the campaign after importing")
            .body(CSV, "Csv")
            .answer(JSON, "ImportAnswer")
            .errors(&[400, 404, 413, 422, 503, 507]),
        Route::new("GET", "/api/v2/dialer/{id}/members/export.csv", "exportMembers", get(files::export_members))
            .summary("Export members as CSV (re-importable)")
            .tag("members")
            .answer(CSV, "Csv"),
        Route::new("GET", "/api/v2/dialer/{id}/attempts/export.csv", "exportAttempts", get(files::export_attempts))
            .summary("Export every attempt of the campaign as CSV")
            .tag("members")
            .answer(CSV, "Csv"),
        Route::new("GET", "/api/v2/dialer/{id}/members/{mid}", "getMember", get(members::get))
            .summary("Read a member")
            .tag("members")
            .answer(JSON, "MemberAnswer")
            .errors(&[400, 404]),
        Route::new("PUT", "/api/v2/dialer/{id}/members/{mid}", "updateMember", put(members::update))
            .summary("Replace a member's data (409 while it is in a call)")
            .tag("members")
            .role(w)
            .body(JSON, "MemberInput")
            .answer(JSON, "MemberAnswer")
            .errors(&[400, 404, 409, 413, 422]),
        Route::new("DELETE", "/api/v2/dialer/{id}/members/{mid}", "deleteMember", delete(members::delete))
            .summary("Delete a member (409 while it is in a call)")
            .tag("members")
            .role(w)
            .answer(JSON, "Deleted")
            .errors(&[400, 404, 409]),
        Route::new("PUT", "/api/v2/dialer/{id}/members/{mid}/terminate", "terminateMember", put(members::terminate))
            .summary("End a member with MANAGER_REQUEST (a call in progress is hung up)")
            .tag("members")
            .role(w)
            .answer(JSON, "TerminateAnswer")
            .errors(&[400, 404]),
        Route::new("GET", "/api/v2/dialer/{id}/members/{mid}/attempts", "memberAttempts", get(members::attempts))
            .summary("A member's attempts, oldest first")
            .tag("members")
            .answer(JSON, "AttemptList")
            .errors(&[400, 404]),
        Route::new("PUT", "/api/v2/dialer/{id}/members/{mid}/status", "memberResult", put(agents::result))
            .summary("The result of an agent call (Webitel v3): posted to the engine node holding the member's \
                      attempt, ends the agent's wrap-up (409 when no attempt is in progress). Admin, members-writer, \
                      or the key of the agent handling the member")
            .tag("agents")
            .role(w)
            .or_own_agent()
            .body(JSON, "AgentResultInput")
            .answer(JSON, "AgentResultAnswer")
            .errors(&[400, 404, 409, 413, 422, 503]),
        Route::new("GET", AG, "listAgents", get(agents::list))
            .summary("List agents with their live state (an agent key sees itself only)")
            .tag("agents")
            .or_own_agent()
            .answer(JSON, "AgentList")
            .errors(&[]),
        Route::new("POST", AG, "createAgent", post(agents::create))
            .summary("Create an agent (409 if the id exists)")
            .tag("agents")
            .role(a)
            .body(JSON, "AgentInput")
            .answer(JSON, "AgentAnswer")
            .errors(&[400, 409, 413, 422]),
        Route::new("GET", "/api/v2/agents/{id}", "getAgent", get(agents::get))
            .summary("Read an agent: status, live state, reservations, figures, and the member offered or talking")
            .tag("agents")
            .or_own_agent()
            .path_doc("id", "agent id")
            .answer(JSON, "AgentAnswer"),
        Route::new("PUT", "/api/v2/agents/{id}", "updateAgent", put(agents::update))
            .summary("Replace an agent's configuration (with `version`: only that version, 409 otherwise)")
            .tag("agents")
            .role(a)
            .path_doc("id", "agent id")
            .body(JSON, "AgentInput")
            .answer(JSON, "AgentAnswer")
            .errors(&[400, 404, 409, 413, 422]),
        Route::new("DELETE", "/api/v2/agents/{id}", "deleteAgent", delete(agents::delete))
            .summary("Delete an agent (409 while it holds reservations)")
            .tag("agents")
            .role(a)
            .path_doc("id", "agent id")
            .answer(JSON, "Deleted")
            .errors(&[404, 409]),
        Route::new("PUT", "/api/v2/agents/{id}/status/{status}", "setAgentStatus", put(agents::set_status))
            .summary("The agent's status: ready, pause (reason, timeout_sec), logout, on_demand; a pause or logout \
                      during a call applies when it ends. Admin or the agent's key")
            .tag("agents")
            .role(a)
            .or_own_agent()
            .path_doc("id", "agent id")
            .path_doc("status", "ready, pause, logout or on_demand")
            .body(JSON, "AgentStatusInput")
            .answer(JSON, "AgentStatusAnswer")
            .errors(&[400, 404, 413, 422]),
        Route::new("PUT", "/api/v2/agents/{id}/accept", "acceptOffer", put(agents::accept))
            .summary("Accept the previewed member (409 when nothing is offered). Admin or the agent's key")
            .tag("agents")
            .role(a)
            .or_own_agent()
            .path_doc("id", "agent id")
            .answer(JSON, "OfferAnswer")
            .errors(&[404, 409, 503]),
        Route::new("PUT", "/api/v2/agents/{id}/skip", "skipOffer", put(agents::skip))
            .summary("Skip the previewed member: it goes back, no try counted (409 when nothing is offered). Admin \
                      or the agent's key")
            .tag("agents")
            .role(a)
            .or_own_agent()
            .path_doc("id", "agent id")
            .answer(JSON, "OfferAnswer")
            .errors(&[404, 409, 503]),
        Route::new("POST", DNC, "addGlobalDnc", post(dnc::change_global))
            .summary("Add numbers and prefixes to the global do-not-call list")
            .tag("dnc")
            .role(w)
            .body(JSON, "DncEntries")
            .answer(JSON, "DncChangeAnswer")
            .errors(&[400, 413, 422, 503]),
        Route::new("DELETE", DNC, "removeGlobalDnc", delete(dnc::change_global))
            .summary("Remove numbers and prefixes from the global do-not-call list")
            .tag("dnc")
            .role(w)
            .body(JSON, "DncEntries")
            .answer(JSON, "DncChangeAnswer")
            .errors(&[400, 413, 422, 503]),
        Route::new("GET", DNC, "globalDncSizes", get(dnc::sizes_global))
            .summary("How many numbers and prefixes the global do-not-call list holds")
            .tag("dnc")
            .answer(JSON, "DncSizesAnswer")
            .errors(&[503]),
        Route::new("GET", "/api/v2/dnc/check/{number}", "checkDnc", get(dnc::check))
            .summary("Which do-not-call lists hold a number (global, and the campaign's with ?campaign=)")
            .tag("dnc")
            .path_doc("number", "the number as written")
            .query("campaign", "string", "also the campaign's list, normalised with the campaign's e164 rule")
            .query("country_code", "string", "without campaign: the country code of national numbers")
            .query("trunk_prefix", "string", "without campaign: the national trunk prefix (default 0)")
            .query("international_prefix", "string", "without campaign: the international prefix (default 00)")
            .answer(JSON, "DncCheckAnswer")
            .errors(&[400, 404, 503]),
        Route::new("POST", "/api/v2/dnc/import", "importGlobalDnc", post(dnc::import_global))
            .summary("Stream a CSV (number[,prefix]) into the global do-not-call list")
            .tag("dnc")
            .role(w)
            .query("country_code", "string", "the country code of national numbers")
            .query("trunk_prefix", "string", "the national trunk prefix (default 0)")
            .query("international_prefix", "string", "the international prefix (default 00)")
            .body(CSV, "Csv")
            .answer(JSON, "DncImportAnswer")
            .errors(&[400, 413, 422, 503]),
        Route::new("GET", "/api/v2/dnc/export.csv", "exportGlobalDnc", get(dnc::export_global))
            .summary("Export the global do-not-call list as CSV")
            .tag("dnc")
            .answer(CSV, "Csv")
            .errors(&[]),
        Route::new("POST", "/api/v2/dialer/{id}/dnc", "addCampaignDnc", post(dnc::change_campaign))
            .summary("Add numbers and prefixes to the campaign's do-not-call list")
            .tag("dnc")
            .role(w)
            .body(JSON, "DncEntries")
            .answer(JSON, "DncChangeAnswer")
            .errors(&[400, 404, 413, 422, 503]),
        Route::new("DELETE", "/api/v2/dialer/{id}/dnc", "removeCampaignDnc", delete(dnc::change_campaign))
            .summary("Remove numbers and prefixes from the campaign's do-not-call list")
            .tag("dnc")
            .role(w)
            .body(JSON, "DncEntries")
            .answer(JSON, "DncChangeAnswer")
            .errors(&[400, 404, 413, 422, 503]),
        Route::new("GET", "/api/v2/dialer/{id}/dnc", "campaignDncSizes", get(dnc::sizes_campaign))
            .summary("How many numbers and prefixes the campaign's do-not-call list holds")
            .tag("dnc")
            .answer(JSON, "DncSizesAnswer")
            .errors(&[404, 503]),
        Route::new("POST", "/api/v2/dialer/{id}/dnc/import", "importCampaignDnc", post(dnc::import_campaign))
            .summary("Stream a CSV (number[,prefix]) into the campaign's do-not-call list")
            .tag("dnc")
            .role(w)
            .body(CSV, "Csv")
            .answer(JSON, "DncImportAnswer")
            .errors(&[400, 404, 413, 422, 503]),
        Route::new("GET", "/api/v2/dialer/{id}/dnc/export.csv", "exportCampaignDnc", get(dnc::export_campaign))
            .summary("Export the campaign's do-not-call list as CSV")
            .tag("dnc")
            .answer(CSV, "Csv")
            .errors(&[404]),
        Route::new("GET", "/", "operatorPage", get(page::index))
            .summary("The live operator page (HTML)")
            .tag("page")
            .role(None)
            .answer("text/html", "Text")
            .errors(&[]),
        Route::new("GET", "/page/app.js", "operatorPageScript", get(page::app_js))
            .summary("The operator page's script")
            .tag("page")
            .role(None)
            .answer("text/javascript", "Text")
            .errors(&[]),
        Route::new("GET", "/page/app.css", "operatorPageStyle", get(page::app_css))
            .summary("The operator page's style sheet")
            .tag("page")
            .role(None)
            .answer("text/css", "Text")
            .errors(&[]),
        Route::new("POST", "/page/login", "pageLogin", post(page::login))
            .summary("Log the page in: {key, token} of a key of role read-only or above; sets HttpOnly cookies")
            .tag("page")
            .role(None)
            .body(JSON, "Any")
            .answer(JSON, "Any")
            .errors(&[400, 401, 403, 413]),
        Route::new("POST", "/page/logout", "pageLogout", post(page::logout))
            .summary("Log the page out (clears its cookies)")
            .tag("page")
            .role(None)
            .answer(JSON, "Any")
            .errors(&[]),
        Route::new("GET", "/api/v2/live", "liveStream", get(page::live::stream))
            .summary("Server-sent events: a `snapshot` of every campaign's live figures whenever they change")
            .tag("page")
            .answer("text/event-stream", "Text")
            .errors(&[503]),
        Route::new("GET", "/healthz", "healthz", get(system::healthz))
            .summary("Liveness and store reachability")
            .tag("service")
            .role(None)
            .answer(JSON, "Health")
            .errors(&[503]),
        Route::new("GET", "/livez", "livez", get(system::livez))
            .summary("The process is alive: the engine's loop turns")
            .tag("service")
            .role(None)
            .answer(JSON, "Any")
            .errors(&[503]),
        Route::new("GET", "/readyz", "readyz", get(system::readyz))
            .summary("Ready for work: engine running, every switch connected, store answering, not draining")
            .tag("service")
            .role(None)
            .answer(JSON, "Any")
            .errors(&[503]),
        Route::new("GET", "/metrics", "metrics", get(system::metrics))
            .summary("Prometheus metrics")
            .tag("service")
            .role(if cfg.metrics_public { None } else { Some(ReadOnly) })
            .answer(TEXT, "Text")
            .errors(&[]),
        Route::new("GET", "/api/v2/openapi.json", "openapi", get(system::openapi_json))
            .summary("This document")
            .tag("service")
            .role(None)
            .answer(JSON, "Any")
            .errors(&[]),
    ]
}

/// Whether a route is one of the service routes (`/healthz`, `/metrics`, the OpenAPI document), which are not
/// counted by the concurrency limit.
pub fn is_service(r: &Route) -> bool {
    r.tag == "service" || r.tag == "page"
}

/// The API router, with the guard and the request limits of [`super::server`].
pub fn router(state: Arc<ApiState>) -> Router {
    let routes = table(&state.config);
    let limits = state.config.http;
    let guard = Arc::new(guard::Guard::new(state.config.keys.clone(), &routes));
    let mut api: Router<Arc<ApiState>> = Router::new();
    let mut service: Router<Arc<ApiState>> = Router::new();
    for r in routes {
        let json_body = r.body.is_some_and(|b| b.media == JSON);
        let counted = !is_service(&r);
        let handler = if json_body {
            r.handler.layer(
                ServiceBuilder::new()
                    .layer(RequestBodyDeadlineLayer::new(limits.json_body_deadline))
                    .map_request(|req: Request<DeadlineBody<Body>>| req.map(Body::new)),
            )
        } else {
            r.handler
        };
        if counted {
            api = api.route(r.path, handler);
        } else {
            service = service.route(r.path, handler);
        }
    }
    let concurrency = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(super::server::overloaded))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ));
    // The 405 fallback is set before the guard is layered, so the guard runs first on every method of a known
    // path (the guard itself answers 405 after auth; this fallback is never reached unguarded). The guard is
    // layered last, so it runs before the concurrency limit: a caller without a key cannot take a slot.
    api.route_layer(concurrency)
        .merge(service)
        .method_not_allowed_fallback(system::method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(
            guard,
            guard::authorize,
        ))
        .fallback(system::not_found)
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new([
                    HeaderName::from_static("x-access-token"),
                    axum::http::header::AUTHORIZATION,
                ]))
                .layer(
                    tower_http::trace::TraceLayer::new_for_http()
                        .make_span_with(crate::logging::request_span::<Body>),
                )
                .layer(RequestBodyTimeoutLayer::new(limits.body_idle_timeout))
                .map_request(|req: Request<TimeoutBody<Body>>| req.map(Body::new)),
        )
        .with_state(state)
}
