//! The JSON body of every endpoint that takes one, through `http::parse_json` as
//! `read_json` calls it. Only panics and stack overflows are looked for: deep nesting must
//! be refused, not crash.
#![no_main]

use daedalus::api::conversations::ConversationInput;
use daedalus::api::me::Preferences;
use daedalus::api::telemetry::{self, Batch};
use daedalus::api::workspaces::WorkspaceInput;
use daedalus::http::parse_json;
use daedalus::runs::SendInput;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_json::<WorkspaceInput>(data);
    let _ = parse_json::<ConversationInput>(data);
    let _ = parse_json::<SendInput>(data);
    let _ = parse_json::<Preferences>(data);
    if let Ok(batch) = parse_json::<Batch>(data) {
        let _ = telemetry::validate(&batch);
    }
});
