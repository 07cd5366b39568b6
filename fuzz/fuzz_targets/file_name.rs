//! Upload file names through `files::name::clean`. Properties: the result is never empty,
//! never contains a path separator, control or bidi character, fits `MAX_BYTES`, and
//! cleaning it again changes nothing.
#![no_main]

use daedalus::files::name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let clean = name::clean(&raw);
    assert!(!clean.is_empty());
    assert!(clean.len() <= name::MAX_BYTES, "{} bytes", clean.len());
    assert!(!clean.chars().any(name::is_unsafe), "{clean:?}");
    assert!(clean != "." && clean != "..");
    assert_eq!(
        name::clean(&clean),
        clean,
        "cleaning twice changed {clean:?}"
    );
});
