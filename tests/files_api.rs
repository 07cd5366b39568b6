//! The files API against the real binary, the same cases on each store it can keep bytes
//! in: its local data folder, moto and s3s-fs (`tests/services/{moto,s3s}.sh`). Each test
//! starts one `daedalus` on one store and checks what a person sees through the API and
//! what really lands in the bucket or folder.
//!
//! The size limit is in `files_limits.rs`, a storage outage in `files_outage.rs`.

mod common;

use bytes::Bytes;
use common::s3::{Backend, View, digest_response, pattern, pattern_chunks, pattern_sha256};
use common::s3::{send_streamed, streamed_iter};
use common::{Daedalus, Reply, TestDb, create_workspace};
use http::Method;
use http_body_util::{BodyExt, Empty};
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::Value;
use sha2::{Digest, Sha256};

const ALICE: &str = "alice";
const BOB: &str = "bob";
const BOUNDARY: &str = "daedalus-files-test-3b1f9c";
/// A larger file: several S3 multipart parts, and too large to hold in a test's hand.
const LARGE: u64 = 20 * 1000 * 1000;

/// One `daedalus` on one store, with a workspace of Alice's.
struct Setup {
    db: TestDb,
    d: Daedalus,
    view: View,
    backend: Backend,
    ws: String,
}

async fn setup(backend: Backend) -> Setup {
    let db = TestDb::create().await;
    let d = backend.start(&db, &[]).await;
    let view = backend.view(&d);
    let ws = create_workspace(&d, ALICE, "files").await;
    Setup {
        db,
        d,
        view,
        backend,
        ws,
    }
}

impl Setup {
    fn files(&self) -> String {
        format!("/api/workspaces/{}/files", self.ws)
    }

    fn file(&self, id: &str) -> String {
        format!("{}/{id}", self.files())
    }

    fn content(&self, id: &str) -> String {
        format!("{}/{id}/content", self.files())
    }

    /// Where the bytes of file `id` called `name` must be.
    fn key(&self, id: &str, name: &str) -> String {
        format!("workspaces/{}/files/{id}/{name}", self.ws)
    }

    /// A raw upload named by `?name=`, percent-encoded, sent without a length as a
    /// streaming client does. A declared length is covered by `upload_raw_with_length`.
    async fn upload_raw(&self, name: &str, content_type: &str, bytes: &[u8]) -> Reply {
        let path = format!("{}?name={}", self.files(), encode(name));
        let headers = [("x-forwarded-user", ALICE), ("content-type", content_type)];
        let body = streamed_iter(std::iter::once(Bytes::copy_from_slice(bytes)));
        let resp = send_streamed(&self.d, Method::POST, &path, &headers, body).await;
        read_reply(resp.expect("the upload is answered")).await
    }

    /// A raw upload with its `Content-Length`, as `curl --data-binary` sends it.
    async fn upload_raw_with_length(&self, name: &str, content_type: &str, bytes: &[u8]) -> Reply {
        let path = format!("{}?name={}", self.files(), encode(name));
        self.d
            .call(Method::POST, &path)
            .user(ALICE)
            .header("content-type", content_type)
            .body(Bytes::copy_from_slice(bytes))
            .send()
            .await
    }

    /// A multipart upload whose `file` part carries `filename_params` (already formatted).
    async fn upload_form(&self, filename_params: &str, content_type: &str, bytes: &[u8]) -> Reply {
        let mut body = form_head(filename_params, content_type).into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(form_tail().as_bytes());
        self.d
            .call(Method::POST, &self.files())
            .user(ALICE)
            .header("content-type", &form_type())
            .body(body)
            .send()
            .await
    }

    async fn download(&self, id: &str, headers: &[(&str, &str)]) -> Reply {
        let mut call = self.d.call(Method::GET, &self.content(id)).user(ALICE);
        for (name, value) in headers {
            call = call.header(name, value);
        }
        call.send().await
    }

    /// Asserts that file `file` holds `bytes` in the API, in the store and in a download.
    async fn assert_stored(&self, file: &Value, bytes: &[u8]) {
        let (id, name) = (id_of(file), name_of(file));
        assert_eq!(file["size"], bytes.len() as u64, "size of {name:?}");
        assert_eq!(
            file["sha256"],
            hex::encode(Sha256::digest(bytes)),
            "{name:?}"
        );
        assert_eq!(file["workspace_id"], self.ws.as_str());
        let prefix = format!("workspaces/{}/files/{id}/", self.ws);
        let expected = vec![(self.key(&id, &name), bytes.len() as u64)];
        assert_eq!(
            self.view.objects_under(&prefix).await,
            expected,
            "object of {name:?}"
        );
        let got = self.download(&id, &[]).await;
        assert_eq!(got.status, 200, "downloading {name:?}");
        assert!(got.body == bytes, "{name:?} came back different");
        let meta = self.d.get_as(ALICE, &self.file(&id)).await.expect(200);
        assert_eq!(&meta, file, "metadata of {name:?}");
    }
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

fn form_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

fn form_head(filename_params: &str, content_type: &str) -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; {filename_params}\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
}

fn form_tail() -> String {
    format!("\r\n--{BOUNDARY}--\r\n")
}

/// `filename="..."` escaped as curl does (a backslash before `"` and `\`).
fn quoted_filename(name: &str) -> String {
    let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
    format!("filename=\"{escaped}\"")
}

/// An ASCII fallback and the real name in `filename*` (RFC 8187), as careful clients send.
fn extended_filename(name: &str) -> String {
    format!(
        "filename=\"fallback.bin\"; filename*=UTF-8''{}",
        encode(name)
    )
}

fn id_of(file: &Value) -> String {
    file["id"].as_str().expect("file id").to_string()
}

fn name_of(file: &Value) -> String {
    file["name"].as_str().expect("file name").to_string()
}

/// The headers a download and its HEAD must agree on.
const CONTENT_HEADERS: [&str; 7] = [
    "content-type",
    "content-length",
    "content-disposition",
    "x-content-type-options",
    "accept-ranges",
    "etag",
    "cache-control",
];

fn content_headers(reply: &Reply) -> Vec<(&'static str, Option<String>)> {
    CONTENT_HEADERS
        .iter()
        .map(|h| (*h, reply.header(h).map(str::to_owned)))
        .collect()
}

async fn assert_head_matches_get(s: &Setup, id: &str, get: &Reply) {
    let head =
        s.d.call(Method::HEAD, &s.content(id))
            .user(ALICE)
            .send()
            .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD answered a body");
    assert_eq!(content_headers(&head), content_headers(get));
}

/// Small files, raw and multipart: stored whole, served back byte for byte, HEAD alike.
async fn small_uploads_round_trip(b: Backend) {
    let s = setup(b).await;
    for size in [0u64, 1, 11, 70_000] {
        let bytes = pattern(size);
        let raw_name = format!("raw-{size}.bin");
        let raw = s
            .upload_raw(&raw_name, "application/octet-stream", &bytes)
            .await;
        let raw = raw.expect(201);
        assert_eq!(name_of(&raw), raw_name);
        assert_eq!(raw["content_type"], "application/octet-stream");
        s.assert_stored(&raw, &bytes).await;
        let form_name = format!("form-{size}.txt");
        let form = s
            .upload_form(&quoted_filename(&form_name), "text/plain", &bytes)
            .await;
        let form = form.expect(201);
        assert_eq!(name_of(&form), form_name);
        assert_eq!(form["content_type"], "text/plain");
        s.assert_stored(&form, &bytes).await;
        for file in [raw, form] {
            let get = s.download(&id_of(&file), &[]).await;
            assert_eq!(
                get.header("content-length"),
                Some(size.to_string().as_str())
            );
            assert_eq!(get.header("x-content-type-options"), Some("nosniff"));
            assert_head_matches_get(&s, &id_of(&file), &get).await;
        }
    }
}

/// ~20 MB, raw and multipart, both chunked and streamed from and to the test: right size
/// and checksum, the object whole in the store, the download identical.
async fn large_streamed_uploads_round_trip(b: Backend) {
    let s = setup(b).await;
    let raw = post_large_raw(&s, false).await.expect(201);
    assert_large_stored(&s, &raw).await;
    let form = post_large_form(&s).await.expect(201);
    assert_large_stored(&s, &form).await;
}

/// A raw upload with its `Content-Length` (what `curl --data-binary` and browsers send) is
/// measured and stored like any other, small or large; were it refused, nothing of it may
/// stay in the store.
async fn raw_upload_with_a_declared_length_is_measured_and_stored(b: Backend) {
    let s = setup(b).await;
    for size in [0u64, 1, 11, 70_000] {
        let bytes = pattern(size);
        let name = format!("declared-{size}.bin");
        let reply = s
            .upload_raw_with_length(&name, "application/octet-stream", &bytes)
            .await;
        assert_nothing_left_unless_created(&s, &reply).await;
        s.assert_stored(&reply.expect(201), &bytes).await;
    }
    let reply = post_large_raw(&s, true).await;
    assert_nothing_left_unless_created(&s, &reply).await;
    assert_large_stored(&s, &reply.expect(201)).await;
}

/// A refused upload leaves no object behind in this workspace.
async fn assert_nothing_left_unless_created(s: &Setup, reply: &Reply) {
    if reply.status != 201 {
        let files = s.d.get_as(ALICE, &s.files()).await.expect(200);
        let listed = files["items"].as_array().map_or(0, Vec::len);
        let stored = s.view.objects_under(&format!("workspaces/{}/", s.ws)).await;
        assert_eq!(
            stored.len(),
            listed,
            "an upload answered {} left an object without a file: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
}

/// `LARGE` bytes of the pattern as a raw body, with or without `Content-Length`.
async fn post_large_raw(s: &Setup, declared: bool) -> Reply {
    let len = LARGE.to_string();
    let mut headers = vec![("x-forwarded-user", ALICE)];
    if declared {
        headers.push(("content-length", len.as_str()));
    }
    let path = format!("{}?name=large.bin", s.files());
    let body = streamed_iter(pattern_chunks(LARGE));
    let resp = send_streamed(&s.d, Method::POST, &path, &headers, body).await;
    read_reply(resp.expect("the raw upload is answered")).await
}

/// `LARGE` bytes of the pattern in a chunked multipart form.
async fn post_large_form(s: &Setup) -> Reply {
    let form_type = form_type();
    let headers = [
        ("x-forwarded-user", ALICE),
        ("content-type", form_type.as_str()),
    ];
    let params = quoted_filename("large form.bin");
    let head = Bytes::from(form_head(&params, "application/octet-stream"));
    let tail = Bytes::from(form_tail());
    let chunks = std::iter::once(head)
        .chain(pattern_chunks(LARGE))
        .chain(std::iter::once(tail));
    let body = streamed_iter(chunks);
    let resp = send_streamed(&s.d, Method::POST, &s.files(), &headers, body).await;
    read_reply(resp.expect("the multipart upload is answered")).await
}

/// A `LARGE` pattern file: measured right, whole in the store, downloaded identical.
async fn assert_large_stored(s: &Setup, file: &Value) {
    let sha = pattern_sha256(LARGE);
    let id = id_of(file);
    assert_eq!(file["size"].as_u64(), Some(LARGE));
    assert_eq!(file["sha256"].as_str(), Some(sha.as_str()));
    let prefix = format!("workspaces/{}/files/{id}/", s.ws);
    let key = s.key(&id, &name_of(file));
    assert_eq!(s.view.objects_under(&prefix).await, vec![(key, LARGE)]);
    let got = download_streamed(s, &id).await;
    assert_eq!((got.status.as_u16(), got.size), (200, LARGE));
    assert_eq!(got.sha256, sha, "the download differs from the upload");
}

async fn read_reply(resp: http::Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("reading the answer").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

async fn download_streamed(s: &Setup, id: &str) -> common::s3::Digested {
    let headers = [("x-forwarded-user", ALICE)];
    let empty = BodyExt::boxed_unsync(Empty::<Bytes>::new());
    let resp = send_streamed(&s.d, Method::GET, &s.content(id), &headers, empty).await;
    digest_response(resp.expect("the download is answered")).await
}

/// Names that try to escape a folder, inject headers, disguise an extension or overflow.
///
/// s3s-fs cannot hold a key much longer than 170 bytes (it names a file of its own after the
/// base64 of the key, and the file system refuses names over 255 bytes), which a name cut
/// to 200 bytes passes; real S3 and MinIO take 1024-byte keys. So the overflowing name is
/// left out on s3s-fs only.
fn odd_names(b: Backend) -> Vec<String> {
    [
        "résumé 東京.pdf",
        "../../etc/passwd",
        "..\\..\\x",
        "a\r\nX-Evil: 1.txt",
        "invoice\u{202E}fdp.exe",
        "C++ notes 100%~.txt",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain((b != Backend::S3s).then(|| "é".repeat(300)))
    .collect()
}

/// What no stored name may contain or be.
fn assert_safe_name(name: &str, given: &str) {
    let bidi = |c: char| {
        matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    assert!(
        !name.is_empty() && name != "." && name != "..",
        "{given:?} stored as {name:?}"
    );
    assert!(
        name.len() <= 255,
        "{given:?} stored as {} bytes",
        name.len()
    );
    let bad = name
        .chars()
        .find(|c| *c == '/' || *c == '\\' || c.is_control() || bidi(*c));
    assert_eq!(bad, None, "{given:?} stored as {name:?}");
}

/// The `Content-Disposition` of a download is one valid ASCII header line whose fallback
/// name is plain ASCII and whose `filename*` decodes to the stored name exactly.
fn assert_disposition(reply: &Reply, name: &str) {
    let cd = reply
        .header("content-disposition")
        .expect("a Content-Disposition");
    assert!(cd.bytes().all(|b| (b' '..=b'~').contains(&b)), "{cd:?}");
    let (plain, extended) = cd
        .split_once("; filename*=UTF-8''")
        .unwrap_or_else(|| panic!("no filename*=UTF-8'' in {cd:?}"));
    let (_, fallback) = plain
        .split_once("filename=\"")
        .unwrap_or_else(|| panic!("no ASCII filename in {cd:?}"));
    let fallback = fallback
        .strip_suffix('"')
        .unwrap_or_else(|| panic!("{cd:?}"));
    assert!(
        !fallback.is_empty() && !fallback.contains(['"', '\\']),
        "{cd:?}"
    );
    let decoded = percent_decode_str(extended).decode_utf8().expect("UTF-8");
    assert_eq!(decoded, name, "{cd:?}");
    assert_eq!(reply.header("x-evil"), None, "a header was injected");
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
}

/// Each odd name, raw via `?name=` and multipart via `filename*` and a plain `filename`:
/// stored under a safe key in the file's own folder, served with a safe disposition.
async fn odd_names_get_safe_keys_and_dispositions(b: Backend) {
    let s = setup(b).await;
    for given in odd_names(b) {
        let bytes = format!("contents of {given:?}").into_bytes();
        let uploads = [
            s.upload_raw(&given, "application/pdf", &bytes).await,
            s.upload_form(&extended_filename(&given), "application/pdf", &bytes)
                .await,
            s.upload_form(
                &quoted_filename(&given.replace(['\r', '\n'], "")),
                "application/pdf",
                &bytes,
            )
            .await,
        ];
        for upload in uploads {
            let file = upload.expect(201);
            let name = name_of(&file);
            assert_safe_name(&name, &given);
            s.assert_stored(&file, &bytes).await;
            let got = s.download(&id_of(&file), &[]).await;
            assert_disposition(&got, &name);
            let forced = s.d.call(
                Method::GET,
                &format!("{}?download=1", s.content(&id_of(&file))),
            );
            let forced = forced.user(ALICE).send().await;
            assert_disposition(&forced, &name);
        }
    }
    let kept = s
        .upload_raw("résumé 東京.pdf", "application/pdf", b"x")
        .await
        .expect(201);
    assert_eq!(
        name_of(&kept),
        "résumé 東京.pdf",
        "a harmless name is kept as given"
    );
}

/// A filename with a raw CR LF splits the part's header block: whatever name comes out,
/// nothing is injected into the download's headers.
async fn raw_crlf_in_a_multipart_filename_injects_nothing(b: Backend) {
    let s = setup(b).await;
    let params = "filename=\"a\r\nX-Evil: 1.txt\"";
    let file = s
        .upload_form(params, "text/plain", b"evil")
        .await
        .expect(201);
    let name = name_of(&file);
    assert_safe_name(&name, params);
    s.assert_stored(&file, b"evil").await;
    assert_disposition(&s.download(&id_of(&file), &[]).await, &name);
}

/// `a b.txt` and `a+b.txt` are two files with two keys (a `+` read as a space, or signed
/// wrongly, would merge or lose one), each downloadable with its own bytes.
async fn space_and_plus_names_stay_two_files(b: Backend) {
    let s = setup(b).await;
    let space = s
        .upload_raw("a b.txt", "text/plain", b"space")
        .await
        .expect(201);
    let plus = s
        .upload_raw("a+b.txt", "text/plain", b"plus")
        .await
        .expect(201);
    assert_eq!(
        (name_of(&space).as_str(), name_of(&plus).as_str()),
        ("a b.txt", "a+b.txt")
    );
    s.assert_stored(&space, b"space").await;
    s.assert_stored(&plus, b"plus").await;
    let form_plus = s
        .upload_form(&quoted_filename("a+b.txt"), "text/plain", b"form plus")
        .await;
    let form_plus = form_plus.expect(201);
    assert_eq!(name_of(&form_plus), "a+b.txt");
    s.assert_stored(&form_plus, b"form plus").await;
}

/// HTML and SVG could run script in our origin: always attachments, never sniffed.
async fn active_content_is_served_as_attachment(b: Backend) {
    let s = setup(b).await;
    let html = b"<html><script>alert(document.cookie)</script></html>";
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>";
    let uploaded = [
        s.upload_raw("page.html", "text/html", html)
            .await
            .expect(201),
        s.upload_form(&quoted_filename("logo.svg"), "image/svg+xml", svg)
            .await
            .expect(201),
    ];
    for file in uploaded {
        let get = s.download(&id_of(&file), &[]).await;
        assert_eq!(get.status, 200);
        let cd = get.header("content-disposition").unwrap_or_default();
        assert!(
            cd.starts_with("attachment;"),
            "{} served as {cd:?}",
            name_of(&file)
        );
        assert_eq!(get.header("x-content-type-options"), Some("nosniff"));
        let shown = get.header("content-type").unwrap_or_default();
        assert!(
            !shown.contains("html") && !shown.contains("svg"),
            "served as {shown}"
        );
        assert_head_matches_get(&s, &id_of(&file), &get).await;
    }
}

/// One range each way, and a range past the end answered 416 with `bytes */size`.
async fn ranges_are_served_with_206_and_416(b: Backend) {
    let s = setup(b).await;
    let bytes = pattern(100);
    let id = id_of(
        &s.upload_raw("hundred.bin", "application/octet-stream", &bytes)
            .await
            .expect(201),
    );
    let cases = [
        ("bytes=0-9", 0..10),
        ("bytes=-10", 90..100),
        ("bytes=10-", 10..100),
    ];
    for (range, expected) in cases {
        let got = s.download(&id, &[("range", range)]).await;
        assert_eq!(got.status, 206, "{range}");
        let content_range = format!("bytes {}-{}/100", expected.start, expected.end - 1);
        assert_eq!(
            got.header("content-range"),
            Some(content_range.as_str()),
            "{range}"
        );
        let len = expected.len().to_string();
        assert_eq!(got.header("content-length"), Some(len.as_str()), "{range}");
        assert!(got.body == bytes[expected], "{range}: wrong bytes");
    }
    for range in ["bytes=100-", "bytes=150-200"] {
        let got = s.download(&id, &[("range", range)]).await;
        assert_eq!(got.expect_error(416), "range_not_satisfiable", "{range}");
        assert_eq!(got.header("content-range"), Some("bytes */100"), "{range}");
    }
}

/// Bob can neither read nor delete Alice's file, through her workspace or his own; it
/// answers 404, as for anything that does not exist, and the file survives.
async fn other_users_files_are_not_found(b: Backend) {
    let s = setup(b).await;
    let file = s
        .upload_raw("private.txt", "text/plain", b"alice only")
        .await
        .expect(201);
    let id = id_of(&file);
    let bobs = create_workspace(&s.d, BOB, "bob's").await;
    let via_bobs = format!("/api/workspaces/{bobs}/files/{id}");
    let via_alices = s.file(&id);
    let attempts = [
        (Method::GET, via_alices.clone()),
        (Method::DELETE, via_alices.clone()),
        (Method::GET, format!("{via_alices}/content")),
        (Method::HEAD, format!("{via_alices}/content")),
        (Method::GET, via_bobs.clone()),
        (Method::DELETE, via_bobs.clone()),
        (Method::GET, format!("{via_bobs}/content")),
        (Method::HEAD, format!("{via_bobs}/content")),
    ];
    for (method, path) in attempts {
        let got = s.d.call(method.clone(), &path).user(BOB).send().await;
        assert_eq!(got.status, 404, "{method} {path} as Bob");
    }
    s.d.get_as(BOB, &s.files()).await.expect_error(404);
    s.assert_stored(&file, b"alice only").await;
}

/// Lists are newest first, in pages that together hold every file once.
async fn list_pages_hold_every_file_once(b: Backend) {
    let s = setup(b).await;
    let mut uploaded = Vec::new();
    for i in 0..5 {
        let name = format!("file-{i}.txt");
        uploaded.push(id_of(
            &s.upload_raw(&name, "text/plain", name.as_bytes())
                .await
                .expect(201),
        ));
    }
    uploaded.reverse();
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let query = cursor
            .as_ref()
            .map(|c| format!("&cursor={}", encode(c)))
            .unwrap_or_default();
        let page =
            s.d.get_as(ALICE, &format!("{}?limit=2{query}", s.files()))
                .await
                .expect(200);
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2, "a page larger than its limit");
        listed.extend(items.iter().map(id_of));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(listed, uploaded);
}

/// Deleting takes the row and the object; every later request about the file is a 404.
async fn delete_removes_row_and_object(b: Backend) {
    let s = setup(b).await;
    let file = s
        .upload_raw("gone.txt", "text/plain", b"soon gone")
        .await
        .expect(201);
    let keep = s
        .upload_raw("kept.txt", "text/plain", b"stays")
        .await
        .expect(201);
    let id = id_of(&file);
    assert_eq!(
        s.d.call(Method::DELETE, &s.file(&id))
            .user(ALICE)
            .send()
            .await
            .status,
        204
    );
    let uuid: uuid::Uuid = id.parse().expect("a UUID");
    let row =
        s.db.client()
            .await
            .query_one("SELECT count(*) FROM files WHERE id = $1", &[&uuid])
            .await;
    assert_eq!(
        row.expect("counting rows").get::<_, i64>(0),
        0,
        "the row is left"
    );
    let prefix = format!("workspaces/{}/files/{id}/", s.ws);
    assert_eq!(
        s.view.objects_under(&prefix).await,
        vec![],
        "the object is left"
    );
    for (method, path) in [
        (Method::GET, s.file(&id)),
        (Method::GET, s.content(&id)),
        (Method::DELETE, s.file(&id)),
    ] {
        s.d.call(method, &path)
            .user(ALICE)
            .send()
            .await
            .expect_error(404);
    }
    let list = s.d.get_as(ALICE, &s.files()).await.expect(200);
    let ids: Vec<String> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, vec![id_of(&keep)]);
    s.assert_stored(&keep, b"stays").await;
}

/// A download under way when its file is deleted either completes with the right bytes or
/// breaks off; the service goes on, and the next request finds nothing.
async fn delete_while_a_download_streams(b: Backend) {
    let s = setup(b).await;
    let len = 8 * 1024 * 1024;
    let file = s
        .upload_raw("streaming.bin", "application/octet-stream", &pattern(len))
        .await;
    let id = id_of(&file.expect(201));
    let headers = [("x-forwarded-user", ALICE)];
    let empty = BodyExt::boxed_unsync(Empty::<Bytes>::new());
    let resp = send_streamed(&s.d, Method::GET, &s.content(&id), &headers, empty).await;
    let mut body = resp.expect("the download starts").into_body();
    let first = body
        .frame()
        .await
        .expect("a first frame")
        .expect("readable");
    let mut received = first.into_data().expect("data").to_vec();
    let deleted =
        s.d.call(Method::DELETE, &s.file(&id))
            .user(ALICE)
            .send()
            .await;
    assert_eq!(deleted.status, 204);
    let mut broke_off = false;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => received.extend_from_slice(&frame.into_data().unwrap_or_default()),
            Err(_) => {
                broke_off = true;
                break;
            }
        }
    }
    if !broke_off {
        assert!(
            received == pattern(len),
            "a download that completed is not the file"
        );
    }
    s.d.get_as(ALICE, &s.content(&id)).await.expect_error(404);
    s.d.get("/api/health").await.expect(200);
    assert!(
        !s.d.stderr_lines().iter().any(|l| l.contains("panicked")),
        "{}",
        s.d.dump()
    );
}

/// The sum of a metric's series whose labels include `label` (all of them when `None`).
async fn metric(d: &Daedalus, name: &str, label: Option<&str>) -> f64 {
    let text = d.get("/metrics").await;
    let text = String::from_utf8(text.body.to_vec()).expect("metrics are UTF-8");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with([' ', '{']))
        })
        .filter(|l| label.is_none_or(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Uploads and downloads move the file counters, and on S3 the request counter.
async fn transfers_move_the_metrics(b: Backend) {
    let s = setup(b).await;
    let uploads = metric(&s.d, "daedalus_file_uploads_total", None).await;
    let bytes_in = metric(&s.d, "daedalus_file_bytes_total", Some("direction=\"in\"")).await;
    let bytes_out = metric(&s.d, "daedalus_file_bytes_total", Some("direction=\"out\"")).await;
    let s3 = metric(&s.d, "daedalus_s3_requests_total", None).await;
    let raw = s
        .upload_raw("m.bin", "application/octet-stream", &pattern(1000))
        .await
        .expect(201);
    s.upload_form(
        &quoted_filename("m2.bin"),
        "application/octet-stream",
        &pattern(500),
    )
    .await
    .expect(201);
    assert_eq!(s.download(&id_of(&raw), &[]).await.status, 200);
    assert_eq!(
        metric(&s.d, "daedalus_file_uploads_total", None).await - uploads,
        2.0
    );
    let moved_in = metric(&s.d, "daedalus_file_bytes_total", Some("direction=\"in\"")).await;
    assert_eq!(moved_in - bytes_in, 1500.0, "bytes in");
    let moved_out = metric(&s.d, "daedalus_file_bytes_total", Some("direction=\"out\"")).await;
    assert_eq!(moved_out - bytes_out, 1000.0, "bytes out");
    if s.backend != Backend::Local {
        let requests = metric(&s.d, "daedalus_s3_requests_total", None).await;
        assert!(
            requests >= s3 + 3.0,
            "S3 requests went from {s3} to {requests}"
        );
    }
}

macro_rules! on_every_store {
    ($($case:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $case() { super::$case(super::Backend::Local).await })*
        }
        mod moto {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $case() { super::$case(super::Backend::Moto).await })*
        }
        mod s3s {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $case() { super::$case(super::Backend::S3s).await })*
        }
    };
}

on_every_store!(
    small_uploads_round_trip,
    large_streamed_uploads_round_trip,
    raw_upload_with_a_declared_length_is_measured_and_stored,
    odd_names_get_safe_keys_and_dispositions,
    raw_crlf_in_a_multipart_filename_injects_nothing,
    space_and_plus_names_stay_two_files,
    active_content_is_served_as_attachment,
    ranges_are_served_with_206_and_416,
    other_users_files_are_not_found,
    list_pages_hold_every_file_once,
    delete_removes_row_and_object,
    delete_while_a_download_streams,
    transfers_move_the_metrics,
);
