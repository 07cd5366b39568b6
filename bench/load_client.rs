//! The load benchmark's own client (`bench/load.sh` runs it): what `wrk` cannot measure.
//! Every subcommand prints `key=value` lines on stdout for `load.sh` to put in its table.
//!
//! ```text
//! load_client startup RUNS BIN              exec-to-`listening` time and idle RSS (median)
//! load_client chat BASE WS CONV MCP_URL AGENT CALLS
//!                                           a message through Daedalus vs the same agent
//!                                           called directly with daedalus::mcp::Pool
//! load_client transfer BASE WS BYTES PID    upload and download through Daedalus vs the
//!                                           same bytes straight to S3 (S3 settings from
//!                                           BENCH_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY/_BUCKET)
//! load_client streams BASE WS STREAMS PID CONV...
//!                                           RSS per open run event stream
//! ```
//!
//! Both sides of every comparison are measured by this one process in the same way.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use daedalus::mcp::{Pool, PoolOptions, ServerSpec, ToolCall};
use daedalus::storage::{ByteStream, S3Config, Store};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;
type Http = Client<HttpConnector, Body>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["startup", runs, bin] => startup(runs.parse()?, bin),
        ["chat", base, ws, conv, mcp, agent, calls] => {
            chat(base, ws, conv, mcp, agent, calls.parse()?).await
        }
        ["transfer", base, ws, bytes, pid] => transfer(base, ws, bytes.parse()?, pid).await,
        ["streams", base, ws, streams, pid, convs @ ..] => {
            open_streams(base, ws, streams.parse()?, pid, convs).await
        }
        _ => Err("usage: see the module documentation of bench/load_client.rs".into()),
    }
}

fn client() -> Http {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(64)
        .build(connector)
}

fn json_body(value: &Value) -> Body {
    Full::new(Bytes::from(value.to_string()))
        .map_err(|never| match never {})
        .boxed()
}

fn empty_body() -> Body {
    json_body(&Value::Null)
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
fn proc_kib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Starts a new peak-RSS period (`VmHWM`) for `pid`.
fn reset_peak(pid: &str) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * p).round() as usize]
}

// ---------------------------------------------------------------- start-up and idle memory

/// Starts `bin` `runs` times (migrations already applied): time from exec to the
/// `listening` log line, and RSS one second later.
fn startup(runs: usize, bin: &str) -> Result<(), BoxError> {
    let (mut times, mut rss) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (ms, kib) = start_once(bin)?;
        times.push(ms);
        rss.push(kib as f64);
    }
    println!("startup_ms_median={:.1}", median(&mut times));
    println!("startup_ms_min={:.1}", times[0]);
    println!("idle_rss_kib_median={:.0}", median(&mut rss));
    Ok(())
}

fn start_once(bin: &str) -> Result<(f64, u64), BoxError> {
    let started = Instant::now();
    let mut child = Command::new(bin).stdout(Stdio::piped()).spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let listening = loop {
        let line = lines.next().ok_or("daedalus exited before listening")??;
        if line.contains("\"listening") {
            break started.elapsed();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    std::thread::sleep(Duration::from_secs(1));
    let rss = proc_kib(&child.id().to_string(), "VmRSS");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    child.wait()?;
    Ok((listening.as_secs_f64() * 1000.0, rss))
}

// ---------------------------------------------------------------- agent call latency

/// Sends `calls` messages through Daedalus and makes `calls` direct calls, interleaved
/// so that both see the same machine; prints medians and the difference.
async fn chat(
    base: &str,
    ws: &str,
    conv: &str,
    mcp: &str,
    agent: &str,
    calls: usize,
) -> Result<(), BoxError> {
    let http = client();
    let url = format!("{base}/api/workspaces/{ws}/conversations/{conv}/messages");
    let pool = Pool::new(PoolOptions::default());
    let spec = ServerSpec {
        label: "bench".into(),
        url: mcp.into(),
        headers: Vec::new(),
    };
    let session = uuid::Uuid::new_v4();
    let (mut via, mut direct) = (Vec::new(), Vec::new());
    for i in 0..calls + 10 {
        let text = format!("benchmark message {i}: the quick brown fox jumps over the lazy dog");
        let a = send_through_daedalus(&http, &url, agent, &text).await?;
        let b = call_directly(&pool, &spec, agent, &text, session).await?;
        if i >= 10 {
            via.push(a);
            direct.push(b);
        }
    }
    pool.shutdown().await;
    let (v, d) = (median(&mut via), median(&mut direct));
    println!("chat_daedalus_ms_median={v:.2}");
    println!("chat_direct_ms_median={d:.2}");
    println!("chat_added_ms_median={:.2}", v - d);
    println!("chat_daedalus_ms_p90={:.2}", percentile(&mut via, 0.9));
    println!("chat_direct_ms_p90={:.2}", percentile(&mut direct, 0.9));
    Ok(())
}

/// One message: POST, then the run's event stream to its end. Milliseconds.
async fn send_through_daedalus(
    http: &Http,
    url: &str,
    agent: &str,
    text: &str,
) -> Result<f64, BoxError> {
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(json_body(&json!({"content": text, "agent": agent})))?;
    let started = Instant::now();
    let resp = http.request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() || !contains(&body, b"message.completed") {
        let shown = String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned();
        return Err(format!("send failed: {status} {shown}").into());
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The same agent call the run makes: a progress token, one session kept warm.
async fn call_directly(
    pool: &Pool,
    spec: &ServerSpec,
    agent: &str,
    text: &str,
    session: uuid::Uuid,
) -> Result<f64, BoxError> {
    let (progress, mut updates) = tokio::sync::mpsc::unbounded_channel();
    let mut call = ToolCall::new(agent, json!({"message": text}));
    call.session_key = Some(session);
    call.progress = Some(progress);
    let started = Instant::now();
    let outcome = pool.call_tool(spec, call).await?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    while updates.try_recv().is_ok() {}
    if outcome.is_error {
        return Err("the agent reported an error".into());
    }
    Ok(elapsed)
}

// ---------------------------------------------------------------- uploads and downloads

/// One MiB of incompressible bytes, sent again and again (each send is a cheap clone).
fn pattern() -> Bytes {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let bytes: Vec<u8> = (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    Bytes::from(bytes)
}

fn generated(total: u64) -> impl futures_util::Stream<Item = Bytes> + Send + 'static {
    let block = pattern();
    let blocks = total.div_ceil(block.len() as u64);
    futures_util::stream::iter(0..blocks).map(move |i| {
        let left = total - i * block.len() as u64;
        block.slice(..(left.min(block.len() as u64) as usize))
    })
}

struct Transfer {
    seconds: f64,
    peak_kib: u64,
}

async fn transfer(base: &str, ws: &str, bytes: u64, pid: &str) -> Result<(), BoxError> {
    let http = client();
    let store = Store::s3(s3_config()?)?;
    let key = format!("bench/direct-{}.bin", uuid::Uuid::new_v4());
    let direct_up = timed(store_put(&store, &key, bytes)).await?;
    let direct_down = timed(store_get(&store, &key, bytes)).await?;
    store.delete(&key).await?;
    reset_peak(pid);
    let (up, file) = upload(&http, base, ws, bytes).await?;
    let up = Transfer {
        seconds: up,
        peak_kib: proc_kib(pid, "VmHWM"),
    };
    reset_peak(pid);
    let content = format!("{base}/api/workspaces/{ws}/files/{file}/content");
    let down = Transfer {
        seconds: timed(download(&http, &content, bytes)).await?,
        peak_kib: proc_kib(pid, "VmHWM"),
    };
    let mb = bytes as f64 / 1e6;
    println!("up_daedalus_mbps={:.0}", mb / up.seconds);
    println!("up_direct_mbps={:.0}", mb / direct_up);
    println!("up_peak_rss_kib={}", up.peak_kib);
    println!("down_daedalus_mbps={:.0}", mb / down.seconds);
    println!("down_direct_mbps={:.0}", mb / direct_down);
    println!("down_peak_rss_kib={}", down.peak_kib);
    Ok(())
}

fn s3_config() -> Result<S3Config, BoxError> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    Ok(S3Config::new(
        &var("BENCH_S3_ENDPOINT")?,
        &var("BENCH_S3_ACCESS_KEY")?,
        &var("BENCH_S3_SECRET_KEY")?,
        &var("BENCH_S3_BUCKET")?,
    ))
}

async fn timed(work: impl Future<Output = Result<(), BoxError>>) -> Result<f64, BoxError> {
    let started = Instant::now();
    work.await?;
    Ok(started.elapsed().as_secs_f64())
}

async fn store_put(store: &Store, key: &str, bytes: u64) -> Result<(), BoxError> {
    let body: ByteStream = generated(bytes).map(Ok).boxed();
    store
        .put(key, "application/octet-stream", Some(bytes), body)
        .await?;
    Ok(())
}

async fn store_get(store: &Store, key: &str, bytes: u64) -> Result<(), BoxError> {
    let mut object = store.get(key, None).await?;
    let mut seen = 0;
    while let Some(chunk) = object.body.next().await {
        seen += chunk?.len() as u64;
    }
    check_len(seen, bytes)
}

fn check_len(seen: u64, bytes: u64) -> Result<(), BoxError> {
    match seen == bytes {
        true => Ok(()),
        false => Err(format!("read {seen} bytes of {bytes}").into()),
    }
}

/// Uploads `bytes` as a raw body with its length, as browsers and `curl -T` send it; if
/// Daedalus refuses that, again without a length (chunked), so the figures still come.
async fn upload(http: &Http, base: &str, ws: &str, bytes: u64) -> Result<(f64, String), BoxError> {
    match upload_once(http, base, ws, bytes, true).await {
        Ok(done) => {
            println!("up_mode=Content-Length");
            Ok(done)
        }
        Err(e) => {
            eprintln!("load_client: upload with Content-Length failed ({e}); sending it chunked");
            println!("up_mode=chunked: the Content-Length upload failed");
            upload_once(http, base, ws, bytes, false).await
        }
    }
}

/// One raw upload; the seconds it took and the new file's id.
async fn upload_once(
    http: &Http,
    base: &str,
    ws: &str,
    bytes: u64,
    with_length: bool,
) -> Result<(f64, String), BoxError> {
    let frames = generated(bytes).map(|b| Ok::<_, BoxError>(Frame::data(b)));
    let mut req = hyper::Request::post(format!("{base}/api/workspaces/{ws}/files?name=big.bin"))
        .header("content-type", "application/octet-stream");
    if with_length {
        req = req.header("content-length", bytes);
    }
    let req = req.body(BodyExt::boxed(StreamBody::new(frames)))?;
    let started = Instant::now();
    let resp = http.request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let seconds = started.elapsed().as_secs_f64();
    if !status.is_success() {
        return Err(format!("upload failed: {status} {}", String::from_utf8_lossy(&body)).into());
    }
    let file: Value = serde_json::from_slice(&body)?;
    let id = file["id"].as_str().ok_or("the upload answer has no id")?;
    Ok((seconds, id.to_owned()))
}

async fn download(http: &Http, url: &str, bytes: u64) -> Result<(), BoxError> {
    let resp = http.get(url.parse()?).await?;
    if !resp.status().is_success() {
        return Err(format!("download failed: {}", resp.status()).into());
    }
    let mut body = resp.into_body();
    let mut seen = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            seen += data.len() as u64;
        }
    }
    check_len(seen, bytes)
}

// ---------------------------------------------------------------- open run streams

/// Starts one long `sleeper` run per conversation, then follows them with `streams`
/// event streams in all, and reports the RSS they cost.
async fn open_streams(
    base: &str,
    ws: &str,
    streams: usize,
    pid: &str,
    convs: &[&str],
) -> Result<(), BoxError> {
    let http = client();
    let mut runs = Vec::new();
    for conv in convs {
        runs.push((
            conv.to_string(),
            start_sleeping_run(&http, base, ws, conv).await?,
        ));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = proc_kib(pid, "VmRSS");
    let mut open = Vec::with_capacity(streams);
    for i in 0..streams {
        let (conv, run) = &runs[i % runs.len()];
        let url = format!("{base}/api/workspaces/{ws}/conversations/{conv}/runs/{run}/events");
        open.push(tokio::spawn(follow_first_event(http.clone(), url)));
    }
    let mut bodies = Vec::with_capacity(streams);
    for task in open {
        bodies.push(task.await??);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = proc_kib(pid, "VmRSS");
    println!("streams_open={}", bodies.len());
    println!("streams_rss_before_kib={before}");
    println!("streams_rss_after_kib={after}");
    println!(
        "streams_kib_per_stream={:.2}",
        after.saturating_sub(before) as f64 / streams as f64
    );
    drop(bodies);
    for (conv, run) in &runs {
        let url = format!("{base}/api/workspaces/{ws}/conversations/{conv}/runs/{run}/cancel");
        let req = hyper::Request::post(url).body(empty_body())?;
        let _ = http.request(req).await;
    }
    Ok(())
}

/// Sends a message that keeps the `sleeper` agent busy; returns the run id from
/// `run.started`, leaving the run going after this stream is dropped.
async fn start_sleeping_run(
    http: &Http,
    base: &str,
    ws: &str,
    conv: &str,
) -> Result<String, BoxError> {
    let url = format!("{base}/api/workspaces/{ws}/conversations/{conv}/messages");
    let text = r#"***CALL_TOOL sleep_seconds {"seconds": 90}"#;
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(json_body(&json!({"content": text, "agent": "sleeper"})))?;
    let resp = http.request(req).await?;
    if !resp.status().is_success() {
        return Err(format!("send failed: {}", resp.status()).into());
    }
    let (_, first) = first_frame(resp.into_body()).await?;
    let data = first
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .ok_or("run.started has no data")?;
    let started: Value = serde_json::from_str(data)?;
    Ok(started["run_id"].as_str().ok_or("no run_id")?.to_owned())
}

/// Opens one event stream and waits for its first event; the body stays open.
async fn follow_first_event(http: Http, url: String) -> Result<Incoming, BoxError> {
    let resp = http.get(url.parse()?).await?;
    if !resp.status().is_success() {
        return Err(format!("stream refused: {}", resp.status()).into());
    }
    Ok(first_frame(resp.into_body()).await?.0)
}

async fn first_frame(mut body: Incoming) -> Result<(Incoming, String), BoxError> {
    loop {
        match body.frame().await {
            Some(frame) => {
                if let Ok(data) = frame?.into_data() {
                    return Ok((body, String::from_utf8_lossy(&data).into_owned()));
                }
            }
            None => return Err("the stream ended before its first event".into()),
        }
    }
}
