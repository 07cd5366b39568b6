//! The pure pieces of the files API, as the upload and download handlers call them: name
//! cleaning, `multipart/form-data` parsing, `Range` and `Content-Disposition`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use daedalus::files::multipart::{Event, Parser};
use daedalus::files::{disposition, name, range};

/// The awkward names of the files tests, and one long one.
pub fn awkward_names() -> Vec<String> {
    vec![
        "C++ notes 100%~.txt".into(),
        "résumé 東京.pdf".into(),
        "../../etc/passwd".into(),
        "..\\..\\x".into(),
        "a\r\nX-Evil: 1.txt".into(),
        "invoice\u{202e}fdp.exe".into(),
        "é".repeat(300),
    ]
}

pub const BOUNDARY: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

/// A form as Chromium sends it from the upload dialog: a text field, then the file.
pub fn browser_form(file: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nquarterly\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"r\u{e9}sum\u{e9} 2026.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Feeds the form in reads of `read` bytes and counts the file's bytes, as
/// `multipart::first_file` drives the parser.
fn file_bytes(form: &[u8], read: usize) -> usize {
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let mut parser = Parser::from_content_type(&content_type).expect("a valid boundary");
    let mut total = 0;
    for chunk in form.chunks(read) {
        parser.feed(chunk);
        while let Some(event) = parser.next().expect("a well-formed form") {
            if let Event::Data(data) = event {
                total += data.len();
            }
        }
    }
    parser.finish().expect("the form is complete");
    total
}

fn bench_multipart(c: &mut Criterion) {
    let mut group = c.benchmark_group("multipart");
    // Bytes that look like a binary file, with CRs and dashes that start false delimiters.
    let file: Vec<u8> = (0..(4u32 << 20))
        .map(|i| ((i.wrapping_mul(2_654_435_761)) >> 24) as u8)
        .collect();
    let form = browser_form(&file);
    group.throughput(Throughput::Bytes(form.len() as u64));
    group.bench_function("upload_4mb_16k_reads", |b| {
        b.iter(|| file_bytes(black_box(&form), 16 * 1024))
    });
    group.finish();
}

fn bench_names(c: &mut Criterion) {
    let names = awkward_names();
    c.bench_function("file_name/clean_awkward_names", |b| {
        b.iter(|| {
            for raw in &names {
                black_box(name::clean(black_box(raw)));
            }
        })
    });
    let cleaned: Vec<String> = names.iter().map(|n| name::clean(n)).collect();
    c.bench_function("content_disposition/awkward_names", |b| {
        b.iter(|| {
            for n in &cleaned {
                black_box(disposition::for_download(n, "application/pdf", true));
            }
        })
    });
}

fn bench_range(c: &mut Criterion) {
    let size = 1 << 30;
    c.bench_function("range/resolve_four_forms", |b| {
        b.iter(|| {
            for header in ["bytes=0-9", "bytes=-10", "bytes=10-", "bytes=2000000000-"] {
                black_box(range::parse(black_box(Some(header)), size));
            }
        })
    });
}

criterion_group!(benches, bench_names, bench_multipart, bench_range);
