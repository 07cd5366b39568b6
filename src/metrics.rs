//! The Prometheus registry and every metric family Daedalus exports.
//!
//! All families are registered at start, so a scrape shows them (at zero)
//! before they are first used. Label values always come from fixed sets:
//! route templates, known features, outcomes, or names from configuration,
//! never from raw request input.

use std::sync::OnceLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds, from a fast API call to a long agent run.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
];

/// Every metric family, grouped as in the operator documentation.
pub struct Metrics {
    pub registry: Registry,
    pub up: IntGauge,
    pub build_info: IntGaugeVec,
    /// `method`, `route` (template), `status`.
    pub http_requests: IntCounterVec,
    /// `method`, `route`.
    pub http_duration: HistogramVec,
    pub http_in_flight: IntGauge,
    pub mcp_connections_active: IntGauge,
    /// `server`, `method`, `outcome`.
    pub mcp_requests: IntCounterVec,
    /// `server`, `method`.
    pub mcp_duration: HistogramVec,
    /// `agent`, `outcome` (`completed`, `failed`, `cancelled`).
    pub agent_runs: IntCounterVec,
    /// `agent`.
    pub agent_run_duration: HistogramVec,
    pub agent_runs_active: IntGauge,
    pub run_streams_open: IntGauge,
    pub file_uploads: IntCounter,
    /// `direction`: `in` or `out`.
    pub file_bytes: IntCounterVec,
    /// `operation`, `outcome` (`ok`, `error`).
    pub s3_requests: IntCounterVec,
    /// `operation`.
    pub s3_duration: HistogramVec,
    /// `kind`: `error` or `unhandledrejection`.
    pub client_exceptions: IntCounterVec,
    /// `name`: LCP, INP, CLS, FCP, TTFB.
    pub client_web_vitals: HistogramVec,
    /// `feature`.
    pub feature_usage: IntCounterVec,
    pub db_pool_size: IntGauge,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process-wide metrics, registered on first use.
pub fn get() -> &'static Metrics {
    METRICS.get_or_init(|| Metrics::new().expect("metric names and labels are static and valid"))
}

fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> prometheus::Result<HistogramVec> {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

fn gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

impl Metrics {
    fn new() -> prometheus::Result<Metrics> {
        let r = Registry::new();
        let up = gauge(&r, "daedalus_up", "1 while the process serves requests")?;
        up.set(1);
        let build_info = IntGaugeVec::new(
            Opts::new(
                "daedalus_build_info",
                "Version and git commit of the running binary",
            ),
            &["version", "commit"],
        )?;
        r.register(Box::new(build_info.clone()))?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("DAEDALUS_GIT_COMMIT")])
            .set(1);
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let web_vital_buckets = [
            0.01, 0.05, 0.1, 0.2, 0.5, 0.8, 1.0, 1.8, 2.5, 3.0, 4.0, 6.0, 10.0, 20.0,
        ];
        Ok(Metrics {
            http_requests: counter_vec(
                &r,
                "daedalus_http_requests_total",
                "HTTP requests answered",
                &["method", "route", "status"],
            )?,
            http_duration: histogram_vec(
                &r,
                "daedalus_http_request_duration_seconds",
                "Time to answer an HTTP request (headers sent; streams count until their end)",
                &["method", "route"],
                LATENCY_BUCKETS,
            )?,
            http_in_flight: gauge(
                &r,
                "daedalus_http_requests_in_flight",
                "HTTP requests being answered",
            )?,
            mcp_connections_active: gauge(
                &r,
                "daedalus_mcp_connections_active",
                "MCP sessions or stateless servers currently held open",
            )?,
            mcp_requests: counter_vec(
                &r,
                "daedalus_mcp_requests_total",
                "MCP requests sent to agent servers",
                &["server", "method", "outcome"],
            )?,
            mcp_duration: histogram_vec(
                &r,
                "daedalus_mcp_request_duration_seconds",
                "Time an MCP request took",
                &["server", "method"],
                LATENCY_BUCKETS,
            )?,
            agent_runs: counter_vec(
                &r,
                "daedalus_agent_runs_total",
                "Agent runs finished",
                &["agent", "outcome"],
            )?,
            agent_run_duration: histogram_vec(
                &r,
                "daedalus_agent_run_duration_seconds",
                "Time from a run's start to its end",
                &["agent"],
                LATENCY_BUCKETS,
            )?,
            agent_runs_active: gauge(
                &r,
                "daedalus_agent_runs_active",
                "Agent runs in progress on this instance",
            )?,
            run_streams_open: gauge(
                &r,
                "daedalus_run_streams_open",
                "Run event streams open to browsers",
            )?,
            file_uploads: {
                let c = IntCounter::new("daedalus_file_uploads_total", "Files stored")?;
                r.register(Box::new(c.clone()))?;
                c
            },
            file_bytes: counter_vec(
                &r,
                "daedalus_file_bytes_total",
                "File bytes moved, by direction",
                &["direction"],
            )?,
            s3_requests: counter_vec(
                &r,
                "daedalus_s3_requests_total",
                "Requests to object storage",
                &["operation", "outcome"],
            )?,
            s3_duration: histogram_vec(
                &r,
                "daedalus_s3_request_duration_seconds",
                "Time an object storage request took",
                &["operation"],
                LATENCY_BUCKETS,
            )?,
            client_exceptions: counter_vec(
                &r,
                "daedalus_client_exceptions_total",
                "Unhandled errors reported by browsers",
                &["kind"],
            )?,
            client_web_vitals: histogram_vec(
                &r,
                "daedalus_client_web_vitals",
                "Web Vitals reported by browsers (seconds; CLS unitless)",
                &["name"],
                &web_vital_buckets,
            )?,
            feature_usage: counter_vec(
                &r,
                "daedalus_feature_usage_total",
                "Use of the main features, reported by browsers",
                &["feature"],
            )?,
            db_pool_size: gauge(
                &r,
                "daedalus_db_pool_connections",
                "PostgreSQL connections held by the pool",
            )?,
            up,
            build_info,
            registry: r,
        })
    }

    /// The whole registry in the Prometheus text format.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("writing to a Vec cannot fail");
        out
    }
}

/// Observe one timed operation into a histogram child.
pub fn observe(h: &Histogram, started: std::time::Instant) {
    h.observe(started.elapsed().as_secs_f64());
}
