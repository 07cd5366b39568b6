//! What operators rely on: migrations applied once by instances starting together, a
//! changed migration refused, graceful shutdown, the `/metrics` scrape, JSON log lines
//! with one access line per request, and no secrets in the logs.

mod common;

use std::collections::HashMap;

use common::{Daedalus, TestDb, create_workspace};
use http::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn two_instances_starting_together_apply_each_migration_once() {
    let db = TestDb::create().await;
    let mut a = Daedalus::spawn(&db.url, &[]);
    let mut b = Daedalus::spawn(&db.url, &[]);
    a.wait_listening().await;
    b.wait_listening().await;
    let rows = db
        .client()
        .await
        .query(
            "SELECT version, count(*) FROM schema_migrations GROUP BY version",
            &[],
        )
        .await
        .expect("reading schema_migrations");
    assert!(!rows.is_empty(), "no migration recorded");
    for row in rows {
        let (version, count): (i32, i64) = (row.get(0), row.get(1));
        assert_eq!(count, 1, "migration {version} recorded {count} times");
    }
    let applied = |d: &Daedalus| {
        d.logs()
            .iter()
            .filter(|l| l["msg"] == "migration applied" && l["version"] == 1)
            .count()
    };
    assert_eq!(
        applied(&a) + applied(&b),
        1,
        "exactly one instance applied migration 1"
    );
    for d in [&a, &b] {
        assert_eq!(d.get("/api/ready").await.expect(200)["status"], "ready");
        create_workspace(d, "local", "from either instance").await;
    }
    let list = a.get("/api/workspaces").await.expect(200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_changed_migration_stops_the_start_with_a_clear_error() {
    let db = TestDb::create().await;
    let mut first = Daedalus::start(&db, &[]).await;
    // A served request proves the shutdown signal handler is installed (see below).
    first.get("/api/health").await.expect(200);
    first.terminate();
    assert!(first.wait_exit().await.success());
    db.client()
        .await
        .execute(
            "UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1",
            &[],
        )
        .await
        .expect("tampering with the checksum");

    let mut second = Daedalus::spawn(&db.url, &[]);
    let status = second.wait_exit().await;
    assert!(!status.success(), "started despite a changed migration");
    let logs = second.logs();
    let error = logs
        .iter()
        .find(|l| l["level"] == "error")
        .unwrap_or_else(|| panic!("no error line\n{}", second.dump()));
    let msg = error["msg"].as_str().expect("msg");
    assert!(
        msg.contains("migration 1") && msg.contains("changed"),
        "unclear error: {msg}"
    );
    assert!(
        !logs.iter().any(|l| l["msg"]
            .as_str()
            .is_some_and(|m| m.starts_with("listening"))),
        "it listened anyway"
    );
}

/// Supervisors and tests take the `listening` line as "up"; a SIGTERM right after it must
/// already be a graceful shutdown, not the signal's default death.
#[tokio::test]
async fn sigterm_right_after_the_listening_line_shuts_down_cleanly() {
    let db = TestDb::create().await;
    for _ in 0..5 {
        let mut d = Daedalus::start(&db, &[]).await;
        d.terminate();
        let status = d.wait_exit().await;
        assert!(status.success(), "{status:?}\n{}", d.dump());
    }
}

/// Waits until the server counts `n` requests in flight (the scrape itself is one).
async fn wait_in_flight(d: &Daedalus, n: f64) {
    let polled = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let text = String::from_utf8(d.get("/metrics").await.body.to_vec()).expect("UTF-8");
            if gauge(&text, "daedalus_http_requests_in_flight") >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    if polled.is_err() {
        panic!("the slow request never arrived\n{}", d.dump());
    }
}

fn gauge(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish_and_refuses_new_connections() {
    let db = TestDb::create().await;
    let mut d = Daedalus::start(&db, &[]).await;
    let body = br#"{"name": "finished during shutdown"}"#;
    let (head, tail) = body.split_at(10);
    let mut slow = tokio::net::TcpStream::connect(d.addr())
        .await
        .expect("connect");
    let request = format!(
        "POST /api/workspaces HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(request.as_bytes()).await.expect("head");
    slow.write_all(head).await.expect("first part of the body");
    wait_in_flight(&d, 2.0).await;

    d.terminate();
    d.wait_for_log(|l| l["msg"] == "shutting down: no new connections")
        .await;
    assert!(
        tokio::net::TcpStream::connect(d.addr()).await.is_err(),
        "a new connection was accepted during shutdown"
    );
    slow.write_all(tail).await.expect("rest of the body");
    let mut answer = Vec::new();
    slow.read_to_end(&mut answer)
        .await
        .expect("reading the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains("finished during shutdown"), "{answer}");

    assert!(d.wait_exit().await.success(), "unclean exit\n{}", d.dump());
    let stored: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM workspaces WHERE name = 'finished during shutdown'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(stored, 1);
}

type Exposition = openmetrics_parser::MetricsExposition<
    openmetrics_parser::PrometheusType,
    openmetrics_parser::PrometheusValue,
>;

/// Samples of one family as (labels, value); histograms count their observations.
fn samples(scrape: &Exposition, family: &str) -> Vec<(HashMap<String, String>, f64)> {
    let family = scrape
        .families
        .get(family)
        .unwrap_or_else(|| panic!("no {family} family in the scrape"));
    family
        .iter_samples()
        .map(|s| {
            let labels = s.get_labelset().expect("labels bound to the family");
            let labels = labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let value = match &s.value {
                openmetrics_parser::PrometheusValue::Unknown(n)
                | openmetrics_parser::PrometheusValue::Gauge(n) => n.as_f64(),
                openmetrics_parser::PrometheusValue::Counter(c) => c.value.as_f64(),
                openmetrics_parser::PrometheusValue::Histogram(h) => {
                    h.count.map_or(f64::NAN, |c| c as f64)
                }
                openmetrics_parser::PrometheusValue::Summary(_) => f64::NAN,
            };
            (labels, value)
        })
        .collect()
}

async fn scrape(d: &Daedalus) -> Exposition {
    let reply = d.get("/metrics").await;
    assert_eq!(reply.status, 200);
    let text = String::from_utf8(reply.body.to_vec()).expect("metrics are UTF-8");
    openmetrics_parser::prometheus::parse_prometheus(&text)
        .unwrap_or_else(|e| panic!("the scrape is not Prometheus text format: {e:?}\n{text}"))
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_with_route_templates_as_labels() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let ws = create_workspace(&d, "local", "Home").await;
    d.get(&format!("/api/workspaces/{ws}")).await.expect(200);
    d.get("/api/workspaces/not-a-uuid").await.expect_error(404);
    let s = scrape(&d).await;

    assert_eq!(samples(&s, "daedalus_up"), [(HashMap::new(), 1.0)]);
    let info = samples(&s, "daedalus_build_info");
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].1, 1.0);
    assert!(info[0].0.contains_key("version") && info[0].0.contains_key("commit"));

    let requests = samples(&s, "daedalus_http_requests_total");
    let count = |method: &str, route: &str, status: &str| {
        requests
            .iter()
            .filter(|(l, _)| l["method"] == method && l["route"] == route && l["status"] == status)
            .map(|(_, v)| *v)
            .sum::<f64>()
    };
    assert_eq!(count("POST", "/api/workspaces", "201"), 1.0);
    assert_eq!(count("GET", "/api/workspaces/{ws}", "200"), 1.0);
    assert_eq!(count("GET", "unmatched", "404"), 1.0);
    for (labels, _) in &requests {
        assert!(
            !labels["route"].contains(&ws),
            "a raw id became a label: {labels:?}"
        );
    }
    let durations = samples(&s, "daedalus_http_request_duration_seconds");
    let timed = durations
        .iter()
        .find(|(l, _)| l["method"] == "GET" && l["route"] == "/api/workspaces/{ws}")
        .expect("the templated route has a duration histogram");
    assert_eq!(timed.1, 1.0);

    for family in [
        "daedalus_mcp_connections_active",
        "daedalus_agent_runs_active",
        "daedalus_file_uploads_total",
    ] {
        assert!(
            s.families.contains_key(family),
            "{family} is not registered from the start"
        );
    }
}

#[tokio::test]
async fn every_log_line_is_json_and_each_request_has_one_access_line() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let generated = d.get("/api/health").await;
    let generated_id = generated
        .header("x-request-id")
        .expect("an id is echoed")
        .to_string();
    let given = d
        .call(Method::GET, "/api/workspaces")
        .header("x-request-id", "client-chosen-id-42")
        .send()
        .await;
    assert_eq!(given.header("x-request-id"), Some("client-chosen-id-42"));
    d.get("/api/nothing").await.expect_error(404);
    // Lines reach stdout in batches, and an access line after its response: wait for the last.
    d.wait_for_log(|l| l["target"] == "access" && l["status"] == 404)
        .await;
    let lines = d.logs();
    let access = || lines.iter().filter(|l| l["target"] == "access");
    for request_id in [generated_id.as_str(), "client-chosen-id-42"] {
        let mine: Vec<&Value> = access().filter(|l| l["request_id"] == request_id).collect();
        assert_eq!(mine.len(), 1, "one access line per request: {request_id}");
    }
    let health = access()
        .find(|l| l["request_id"] == generated_id.as_str())
        .expect("health line");
    assert_eq!(health["method"], "GET");
    assert_eq!(health["route"], "/api/health");
    assert_eq!(health["status"], 200);
    assert_eq!(health["bytes"], 15);
    assert!(health["duration_ms"].is_number());
    assert!(health["user"].is_string());
    let listed = access()
        .find(|l| l["request_id"] == "client-chosen-id-42")
        .expect("list line");
    assert_eq!(listed["user"], "local");
    assert_eq!(listed["route"], "/api/workspaces");
    for line in &lines {
        for field in ["ts", "level", "target", "msg"] {
            assert!(line[field].is_string(), "{field} missing in {line}");
        }
    }
    assert!(access().any(|l| l["route"] == "unmatched" && l["status"] == 404));
}

#[tokio::test]
async fn a_request_id_that_is_unsafe_to_log_is_replaced() {
    let db = TestDb::create().await;
    let d = Daedalus::start(&db, &[]).await;
    let long = "x".repeat(500);
    let reply = d
        .call(Method::GET, "/api/health")
        .header("x-request-id", &long)
        .send()
        .await;
    let id = reply.header("x-request-id").expect("echoed");
    assert_ne!(id, long);
    assert!(!id.is_empty() && id.len() <= 128);
}

/// Runs requests that carry secrets, then checks no stdout or stderr line shows them.
async fn assert_secrets_stay_out_of_the_logs(rust_log: &str) {
    let db = TestDb::create().await;
    let password = "pw-never-logged-5a1c";
    let token = "token-never-logged-9f3e";
    let url = db.url_with_password(password);
    let mut d = Daedalus::spawn(&url, &[("RUST_LOG", rust_log)]);
    d.wait_listening().await;
    let input = json!({"name": "With secrets", "agent_servers": [{
        "name": "main", "url": "http://127.0.0.1:9/mcp",
        "headers": {"Authorization": format!("Bearer {token}")}}]});
    let created = d.post_json("/api/workspaces", &input).await.expect(201);
    let ws = created["id"].as_str().expect("id").to_string();
    assert!(
        !serde_json::to_string(&created)
            .expect("json")
            .contains(token)
    );
    let path = format!("/api/workspaces/{ws}");
    let again = d.get(&path).await;
    assert!(
        !String::from_utf8_lossy(&again.body).contains(token),
        "a header value was returned"
    );
    let bad = json!({"agent_servers": [{"name": "main", "url": "ftp://x",
        "headers": {"Authorization": format!("Bearer {token}")}}]});
    d.call(Method::PATCH, &path)
        .json(&bad)
        .send()
        .await
        .expect_error(400);
    d.call(Method::GET, "/api/me")
        .header("authorization", &format!("Bearer {token}"))
        .header("cookie", &format!("session={token}"))
        .send()
        .await
        .expect(200);
    d.terminate();
    d.wait_exit().await;
    let all = [d.log_lines(), d.stderr_lines()].concat();
    for line in &all {
        assert!(
            !line.contains(password),
            "the database password was logged: {line}"
        );
        assert!(
            !line.contains(token),
            "an agent server header value was logged: {line}"
        );
    }
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    assert_secrets_stay_out_of_the_logs("info").await;
}

#[tokio::test]
async fn secrets_never_reach_the_logs_even_at_debug_level() {
    assert_secrets_stay_out_of_the_logs("debug").await;
}

#[tokio::test]
async fn a_bad_configuration_value_names_the_variable_and_exits_non_zero() {
    let db = TestDb::create().await;
    let mut d = Daedalus::spawn(&db.url, &[("DAEDALUS_TRUSTED_PROXIES", "10.0.0.0/99")]);
    let status = d.wait_exit().await;
    assert!(!status.success());
    let told = [d.log_lines(), d.stderr_lines()].concat().join("\n");
    assert!(told.contains("DAEDALUS_TRUSTED_PROXIES"), "{told}");
}

#[tokio::test]
async fn migrate_applies_and_exits_and_status_lists_each_migration() {
    let db = TestDb::create().await;
    let mut migrate = Daedalus::spawn_with_args(&["migrate"], &db.url, &[]);
    assert!(migrate.wait_exit().await.success(), "{}", migrate.dump());
    let applied: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .expect("count")
        .get(0);
    assert!(applied >= 1);
    let mut status = Daedalus::spawn_with_args(&["migrate", "--status"], &db.url, &[]);
    assert!(status.wait_exit().await.success(), "{}", status.dump());
    let listed = status.log_lines().join("\n");
    assert!(listed.contains("0001_initial.sql"), "{listed}");
    assert!(!listed.contains("pending"), "{listed}");
}

#[tokio::test]
async fn the_asyncpg_url_of_the_old_service_is_accepted() {
    let db = TestDb::create().await;
    let url = db.url.replacen("postgresql://", "postgresql+asyncpg://", 1);
    let mut d = Daedalus::spawn(&url, &[]);
    d.wait_listening().await;
    assert_eq!(d.get("/api/ready").await.expect(200)["status"], "ready");
}
