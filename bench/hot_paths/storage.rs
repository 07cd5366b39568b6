//! S3 request signing and the S3 XML documents the client reads, as `storage::s3` uses them.

use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use daedalus::storage::s3::{sign, xml};
use time::macros::datetime;

fn headers(key_len: u64) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/pdf".into()),
        ("host".into(), "127.0.0.1:9000".into()),
        ("x-amz-date".into(), "20261203T164500Z".into()),
        ("x-amz-content-sha256".into(), sign::UNSIGNED_PAYLOAD.into()),
        ("content-length".into(), key_len.to_string()),
    ]
}

/// Signs an upload part of a file with a non-ASCII name, the costliest request the
/// transport signs (path encoding, query, five headers).
fn sign_upload_part(creds: &sign::Credentials, headers: &[(String, String)]) -> String {
    let key = "daedalus/workspaces/0b6f8f6e-8a4e-4c1e-9d8e-3f1f6c1d2a10/files/\
               1c7a9b2e-2f4d-4e6a-8b1c-5d3e2f1a0b9c/résumé 東京 C++ notes 100%~.pdf";
    let path = sign::encode_path(&format!("/{key}"));
    let query = vec![
        ("partNumber".to_string(), "17".to_string()),
        (
            "uploadId".to_string(),
            "2~aBcDeFgHiJkLmNoPqRsTuVwXyZ012345".to_string(),
        ),
    ];
    let req = sign::Request {
        method: "PUT",
        path: &path,
        query: &query,
        headers,
        payload_hash: sign::UNSIGNED_PAYLOAD,
    };
    let scope = sign::Scope {
        region: "us-east-1",
        service: "s3",
        time: datetime!(2026-12-03 16:45:00 UTC),
    };
    sign::authorization(creds, &req, &scope)
}

const ERROR_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the server's time is too large.</Message><RequestTime>20261203T164500Z</RequestTime><ServerTime>2026-12-03T17:05:00Z</ServerTime><RequestId>4442587FB7D0A2F9</RequestId></Error>"#;

const INITIATE_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>daedalus</Bucket><Key>workspaces/x/files/y/big.bin</Key><UploadId>VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId></InitiateMultipartUploadResult>"#;

/// A ListObjectsV2 page of `n` objects, shaped like MinIO's.
fn listing(n: usize) -> String {
    let mut out = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>daedalus</Name><Prefix>workspaces/</Prefix><KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>"#,
    );
    for i in 0..n {
        out.push_str(&format!(
            "<Contents><Key>workspaces/0b6f8f6e-8a4e-4c1e-9d8e-3f1f6c1d2a10/files/{i:08}/report &amp; notes.pdf</Key>\
             <LastModified>2026-12-03T16:45:00.000Z</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>\
             <Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            1000 + i
        ));
    }
    out.push_str("<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>");
    out
}

fn bench_signing(c: &mut Criterion) {
    let creds = sign::Credentials {
        access_key: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
    };
    let headers = headers(5 << 20);
    c.bench_function("s3_sign/upload_part", |b| {
        b.iter(|| sign_upload_part(black_box(&creds), black_box(&headers)))
    });
}

fn bench_xml(c: &mut Criterion) {
    let mut group = c.benchmark_group("s3_xml");
    group.bench_function("error", |b| {
        b.iter(|| xml::parse_error(black_box(ERROR_XML)))
    });
    group.bench_function("initiate_multipart", |b| {
        b.iter(|| xml::parse_upload_id(black_box(INITIATE_XML)))
    });
    let page = listing(1000);
    group.bench_function("list_1000_objects", |b| {
        b.iter(|| xml::parse_list(black_box(&page)))
    });
    let etags: Vec<String> = (0..200).map(|i| format!("\"{i:032x}\"")).collect();
    group.bench_function("complete_body_200_parts", |b| {
        b.iter(|| xml::complete_body(black_box(&etags)))
    });
    group.finish();
}

criterion_group!(benches, bench_signing, bench_xml);
