//! Throughput of the pure file pieces on the upload path: the multipart/form-data parser
//! and the SHA-256 meter over a 64 MiB body in 64 KiB chunks, and SigV4 signing per request.
//! Run with `cargo bench --bench files`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use daedalus::files::multipart::{Event, Limits, Parser};
use daedalus::files::upload::Meter;
use daedalus::storage::s3::sign;

const BODY: usize = 64 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

fn form() -> Vec<u8> {
    let mut body =
        b"--bench\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n"
            .to_vec();
    body.extend((0..BODY).map(|i| (i % 251) as u8));
    body.extend_from_slice(b"\r\n--bench--\r\n");
    body
}

fn parse_form(c: &mut Criterion) {
    let body = form();
    let mut group = c.benchmark_group("multipart");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.sample_size(10);
    group.bench_function("parse 64 MiB", |b| {
        b.iter(|| {
            let mut parser = Parser::new("bench", Limits::default());
            let mut data = 0;
            for chunk in body.chunks(CHUNK) {
                parser.feed(chunk);
                while let Some(event) = parser.next().expect("a valid form") {
                    if let Event::Data(bytes) = event {
                        data += bytes.len();
                    }
                }
            }
            assert_eq!(data, BODY);
        })
    });
    group.finish();
}

fn meter(c: &mut Criterion) {
    let body = vec![7u8; BODY];
    let mut group = c.benchmark_group("upload");
    group.throughput(Throughput::Bytes(BODY as u64));
    group.sample_size(10);
    group.bench_function("meter 64 MiB", |b| {
        b.iter(|| {
            let mut meter = Meter::new(u64::MAX);
            for chunk in body.chunks(CHUNK) {
                meter.feed(chunk).expect("no limit");
            }
            meter.finish()
        })
    });
    group.finish();
}

fn signing(c: &mut Criterion) {
    let creds = sign::Credentials {
        access_key: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
    };
    let headers = vec![
        ("host".to_owned(), "127.0.0.1:9000".to_owned()),
        ("x-amz-date".to_owned(), "20130524T000000Z".to_owned()),
        (
            "x-amz-content-sha256".to_owned(),
            sign::UNSIGNED_PAYLOAD.to_owned(),
        ),
    ];
    let path = sign::encode_path("/daedalus/workspaces/1/files/2/résumé 東京.pdf");
    c.bench_function("sigv4 authorization", |b| {
        b.iter(|| {
            let req = sign::Request {
                method: "PUT",
                path: &path,
                query: &[],
                headers: &headers,
                payload_hash: sign::UNSIGNED_PAYLOAD,
            };
            let scope = sign::Scope {
                region: "us-east-1",
                service: "s3",
                time: time::OffsetDateTime::UNIX_EPOCH,
            };
            sign::authorization(&creds, &req, &scope)
        })
    });
}

criterion_group!(benches, parse_form, meter, signing);
criterion_main!(benches);
