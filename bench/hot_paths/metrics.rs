//! What a scrape and a run event stream cost: the Prometheus text of the whole registry,
//! and one run event framed for SSE.

use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use daedalus::runs::events::{Event, sse_frame};

/// Fills the registry the way a busy instance has it: every route and status seen.
fn populate() {
    let m = daedalus::metrics::get();
    let routes = crate::http::api_paths();
    for path in &routes {
        let route = daedalus::http::route::Route::parse(path).expect("an API path matches");
        for status in ["200", "201", "204", "400", "404", "500"] {
            m.http_requests
                .with_label_values(&["GET", route.template(), status])
                .inc();
        }
        m.http_duration
            .with_label_values(&["GET", route.template()])
            .observe(0.003);
    }
}

fn bench_encode(c: &mut Criterion) {
    populate();
    let m = daedalus::metrics::get();
    c.bench_function("metrics/encode_full_registry", |b| {
        b.iter(|| black_box(m.encode()))
    });
}

fn bench_frame(c: &mut Criterion) {
    let event = Event {
        seq: 17,
        kind: "progress".into(),
        data: serde_json::json!({"progress": 2.0, "total": null,
            "message": "sleeper/agent_loop: step 2 (tool sleep_seconds)"}),
    };
    c.bench_function("run_events/sse_frame_progress", |b| {
        b.iter(|| sse_frame(black_box(&event)))
    });
}

criterion_group!(benches, bench_encode, bench_frame);
