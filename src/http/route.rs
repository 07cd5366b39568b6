//! The request target turned into a typed route. Every endpoint of the API:
//!
//! | route | path | methods |
//! |---|---|---|
//! | `Health` | `/api/health` | GET, HEAD |
//! | `Ready` | `/api/ready` | GET, HEAD |
//! | `Metrics` | `/metrics` | GET, HEAD |
//! | `Me` | `/api/me` | GET, HEAD |
//! | `Preferences` | `/api/me/preferences` | GET, HEAD, PUT |
//! | `Workspaces` | `/api/workspaces` | GET, HEAD, POST |
//! | `Workspace` | `/api/workspaces/{ws}` | GET, HEAD, PATCH, DELETE |
//! | `Agents` | `/api/workspaces/{ws}/agents` | GET, HEAD |
//! | `Conversations` | `/api/workspaces/{ws}/conversations` | GET, HEAD, POST |
//! | `Conversation` | `/api/workspaces/{ws}/conversations/{c}` | GET, HEAD, PATCH, DELETE |
//! | `Messages` | `/api/workspaces/{ws}/conversations/{c}/messages` | GET, HEAD, POST |
//! | `RunEvents` | `/api/workspaces/{ws}/conversations/{c}/runs/{r}/events` | GET |
//! | `RunCancel` | `/api/workspaces/{ws}/conversations/{c}/runs/{r}/cancel` | POST |
//! | `Files` | `/api/workspaces/{ws}/files` | GET, HEAD, POST |
//! | `File` | `/api/workspaces/{ws}/files/{f}` | GET, HEAD, DELETE |
//! | `FileContent` | `/api/workspaces/{ws}/files/{f}/content` | GET, HEAD |
//! | `Telemetry` | `/api/telemetry` | POST |
//! | `Static` | anything outside `/api/` (the SPA, development only) | GET, HEAD |
//!
//! Paths are matched on their raw form: a segment that should be an id and is not
//! (`not-a-uuid`, `%2e%2e`) matches nothing, so it answers 404 like any unknown path.

use http::Method;
use uuid::Uuid;

/// A matched endpoint with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Health,
    Ready,
    Metrics,
    Me,
    Preferences,
    Workspaces,
    Workspace { ws: Uuid },
    Agents { ws: Uuid },
    Conversations { ws: Uuid },
    Conversation { ws: Uuid, c: Uuid },
    Messages { ws: Uuid, c: Uuid },
    RunEvents { ws: Uuid, c: Uuid, r: Uuid },
    RunCancel { ws: Uuid, c: Uuid, r: Uuid },
    Files { ws: Uuid },
    File { ws: Uuid, f: Uuid },
    FileContent { ws: Uuid, f: Uuid },
    Telemetry,
    Static,
}

const READ: &[Method] = &[Method::GET, Method::HEAD];
const READ_REPLACE: &[Method] = &[Method::GET, Method::HEAD, Method::PUT];
const READ_CREATE: &[Method] = &[Method::GET, Method::HEAD, Method::POST];
const READ_UPDATE_DELETE: &[Method] = &[Method::GET, Method::HEAD, Method::PATCH, Method::DELETE];
const READ_DELETE: &[Method] = &[Method::GET, Method::HEAD, Method::DELETE];
const FOLLOW: &[Method] = &[Method::GET];
const ACT: &[Method] = &[Method::POST];

impl Route {
    /// Matches a request path (no query). `None` means 404.
    pub fn parse(path: &str) -> Option<Route> {
        if path == "/metrics" {
            return Some(Route::Metrics);
        }
        let Some(rest) = path.strip_prefix("/api/") else {
            let plausible = path.starts_with('/') && !path.contains("//") && path != "/api";
            return plausible.then_some(Route::Static);
        };
        let mut parts = rest.split('/');
        let first = parts.next()?;
        let route = match first {
            "health" => Route::Health,
            "ready" => Route::Ready,
            "telemetry" => Route::Telemetry,
            "me" => match parts.next() {
                None => Route::Me,
                Some("preferences") => Route::Preferences,
                Some(_) => return None,
            },
            "workspaces" => return parse_workspaces(parts),
            _ => return None,
        };
        parts.next().is_none().then_some(route)
    }

    /// The route template: the metric label and log field, never the raw path.
    pub fn template(&self) -> &'static str {
        match self {
            Route::Health => "/api/health",
            Route::Ready => "/api/ready",
            Route::Metrics => "/metrics",
            Route::Me => "/api/me",
            Route::Preferences => "/api/me/preferences",
            Route::Workspaces => "/api/workspaces",
            Route::Workspace { .. } => "/api/workspaces/{ws}",
            Route::Agents { .. } => "/api/workspaces/{ws}/agents",
            Route::Conversations { .. } => "/api/workspaces/{ws}/conversations",
            Route::Conversation { .. } => "/api/workspaces/{ws}/conversations/{c}",
            Route::Messages { .. } => "/api/workspaces/{ws}/conversations/{c}/messages",
            Route::RunEvents { .. } => "/api/workspaces/{ws}/conversations/{c}/runs/{r}/events",
            Route::RunCancel { .. } => "/api/workspaces/{ws}/conversations/{c}/runs/{r}/cancel",
            Route::Files { .. } => "/api/workspaces/{ws}/files",
            Route::File { .. } => "/api/workspaces/{ws}/files/{f}",
            Route::FileContent { .. } => "/api/workspaces/{ws}/files/{f}/content",
            Route::Telemetry => "/api/telemetry",
            Route::Static => "static",
        }
    }

    /// The methods this route answers, for 405 and `Allow`.
    pub fn allowed(&self) -> &'static [Method] {
        match self {
            Route::Health | Route::Ready | Route::Metrics | Route::Me | Route::Agents { .. } => {
                READ
            }
            Route::FileContent { .. } | Route::Static => READ,
            Route::Preferences => READ_REPLACE,
            Route::Workspaces | Route::Conversations { .. } | Route::Messages { .. } => READ_CREATE,
            Route::Files { .. } => READ_CREATE,
            Route::Workspace { .. } | Route::Conversation { .. } => READ_UPDATE_DELETE,
            Route::File { .. } => READ_DELETE,
            Route::RunEvents { .. } => FOLLOW,
            Route::RunCancel { .. } | Route::Telemetry => ACT,
        }
    }
}

/// The label used for requests that match no route, so junk paths share one series.
pub const UNMATCHED: &str = "unmatched";

fn id(segment: Option<&str>) -> Option<Uuid> {
    let s = segment?;
    // Only the canonical hyphenated form: one id, one spelling.
    (s.len() == 36).then(|| Uuid::parse_str(s).ok()).flatten()
}

fn parse_workspaces<'a>(mut parts: impl Iterator<Item = &'a str>) -> Option<Route> {
    let Some(ws_segment) = parts.next() else {
        return Some(Route::Workspaces);
    };
    let ws = id(Some(ws_segment))?;
    let route = match parts.next() {
        None => return Some(Route::Workspace { ws }),
        Some("agents") => Route::Agents { ws },
        Some("conversations") => return parse_conversations(ws, parts),
        Some("files") => return parse_files(ws, parts),
        Some(_) => return None,
    };
    parts.next().is_none().then_some(route)
}

fn parse_conversations<'a>(ws: Uuid, mut parts: impl Iterator<Item = &'a str>) -> Option<Route> {
    let Some(c_segment) = parts.next() else {
        return Some(Route::Conversations { ws });
    };
    let c = id(Some(c_segment))?;
    let route = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => Route::Conversation { ws, c },
        (Some("messages"), None, _) => Route::Messages { ws, c },
        (Some("runs"), r, Some(action)) => {
            let r = id(r)?;
            match action {
                "events" => Route::RunEvents { ws, c, r },
                "cancel" => Route::RunCancel { ws, c, r },
                _ => return None,
            }
        }
        _ => return None,
    };
    parts.next().is_none().then_some(route)
}

fn parse_files<'a>(ws: Uuid, mut parts: impl Iterator<Item = &'a str>) -> Option<Route> {
    let Some(f_segment) = parts.next() else {
        return Some(Route::Files { ws });
    };
    let f = id(Some(f_segment))?;
    let route = match parts.next() {
        None => Route::File { ws, f },
        Some("content") => Route::FileContent { ws, f },
        Some(_) => return None,
    };
    parts.next().is_none().then_some(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WS: &str = "0b6f8f6e-8a4e-4c1e-9d8e-3f1f6c1d2a10";
    const C: &str = "1c7a9b2e-2f4d-4e6a-8b1c-5d3e2f1a0b9c";

    #[test]
    fn every_api_path_matches_its_route() {
        let ws: Uuid = WS.parse().expect("uuid");
        let c: Uuid = C.parse().expect("uuid");
        let cases = [
            ("/api/health", Route::Health),
            ("/api/me/preferences", Route::Preferences),
            ("/api/workspaces", Route::Workspaces),
            (
                &format!("/api/workspaces/{WS}") as &str,
                Route::Workspace { ws },
            ),
            (
                &format!("/api/workspaces/{WS}/agents"),
                Route::Agents { ws },
            ),
            (
                &format!("/api/workspaces/{WS}/conversations/{C}/messages"),
                Route::Messages { ws, c },
            ),
            (
                &format!("/api/workspaces/{WS}/conversations/{C}/runs/{C}/events"),
                Route::RunEvents { ws, c, r: c },
            ),
            (
                &format!("/api/workspaces/{WS}/files/{C}/content"),
                Route::FileContent { ws, f: c },
            ),
            ("/metrics", Route::Metrics),
            ("/", Route::Static),
            ("/w/some/page", Route::Static),
        ];
        for (path, want) in cases {
            assert_eq!(Route::parse(path), Some(want), "{path}");
        }
    }

    #[test]
    fn junk_paths_match_nothing() {
        for path in [
            "/api/workspaces/not-a-uuid",
            "/api/workspaces/%2e%2e/x",
            "//api/workspaces",
            "/api/workspaces/",
            "/api/health/",
            "/api/nope",
            "/api",
            "/api/",
            &format!("/api/workspaces/{WS}/conversations/{C}/runs/{C}"),
            &format!(
                "/api/workspaces/{}/agents",
                WS.to_uppercase().replace('-', "")
            ),
            "",
            "*",
        ] {
            assert_eq!(Route::parse(path), None, "{path}");
        }
    }
}
