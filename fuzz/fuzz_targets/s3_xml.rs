//! S3 response documents (errors, multipart initiation, listings, pending uploads) through
//! the parsers of `storage::s3::xml`. Property: the `CompleteMultipartUpload` body built
//! from any ETags is well-formed XML.
#![no_main]

use daedalus::storage::s3::xml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = xml::parse_error(&text);
    let _ = xml::parse_upload_id(&text);
    let _ = xml::parse_list(&text);
    let _ = xml::parse_uploads(&text);
    let etags: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let body = xml::complete_body(&etags);
    assert!(xml::parse_error(&body).is_none());
    assert!(xml::parse_uploads(&body).is_ok(), "{body}");
});
