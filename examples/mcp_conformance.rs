//! A client for the MCP conformance suite, built from `daedalus::mcp` so the
//! suite checks the code Daedalus runs.
//!
//! The suite starts a mock server per scenario and runs this program with
//! the server's URL as the last argument and the scenario's name in
//! `MCP_CONFORMANCE_SCENARIO`; exit status 0 means the client did its part.
//! Run by tests/conformance/run.sh.

use std::process::ExitCode;

use daedalus::mcp::{Pool, PoolOptions, ServerSpec, ToolCall};
use serde_json::{Value, json};

/// The tool each scenario expects to be called, with its arguments.
fn scenario_call(scenario: &str) -> Option<Option<(&'static str, Value)>> {
    let call = match scenario {
        "initialize" => None,
        "tools_call" => Some(("add_numbers", json!({"a": 2, "b": 3}))),
        "sse-retry" => Some(("test_reconnection", json!({}))),
        "elicitation-sep1034-client-defaults" => {
            Some(("test_client_elicitation_defaults", json!({})))
        }
        _ => return None,
    };
    Some(call)
}

async fn run(scenario: &str, url: String) -> Result<(), String> {
    let Some(call) = scenario_call(scenario) else {
        return Err(format!(
            "scenario {scenario:?} is not supported by this client"
        ));
    };
    // Declaring elicitation opens a standalone GET stream, which would disturb the
    // GET counts of other scenarios: declare it only where it is tested.
    let pool = Pool::new(PoolOptions {
        elicitation_with_defaults: scenario.starts_with("elicitation"),
        ..PoolOptions::default()
    });
    let server = ServerSpec {
        label: "conformance".into(),
        url,
        headers: Vec::new(),
    };
    let info = pool.discover(&server).await.map_err(|e| e.to_string())?;
    eprintln!("connected with {} to {}", info.protocol_version, info.name);
    if let Some((tool, arguments)) = call {
        let outcome = pool
            .call_tool(&server, ToolCall::new(tool, arguments))
            .await
            .map_err(|e| e.to_string())?;
        if outcome.is_error {
            return Err(format!("{tool} reported an error: {:?}", outcome.content));
        }
        eprintln!("{tool}: {:?}", outcome.content);
    }
    pool.shutdown().await;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let Some(url) = std::env::args().skip(1).last() else {
        eprintln!("usage: mcp_conformance URL (with MCP_CONFORMANCE_SCENARIO set)");
        return ExitCode::from(2);
    };
    match run(&scenario, url).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{scenario}: {error}");
            ExitCode::FAILURE
        }
    }
}
