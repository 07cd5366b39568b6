//! The S3 store: a lean streaming client for S3-compatible servers (MinIO, moto, s3s-fs).
//!
//! Path-style addressing (`http://host:port/{bucket}/{key}`), SigV4 in the `Authorization`
//! header ([`sign`]). Object bytes are sent as `UNSIGNED-PAYLOAD`: hashing a streamed body
//! before sending would need it twice, and the upload path computes the file's SHA-256 on
//! the way anyway; small XML documents are hashed and signed. Every request is counted in
//! `daedalus_s3_requests_total` and timed in `daedalus_s3_request_duration_seconds`.
//!
//! Plain `http://` endpoints only: production MinIO is reached on a private network. A TLS
//! connector (hyper-rustls) in [`S3Store::new`] would lift that.

mod multipart;
pub mod sign;
mod transport;
pub mod xml;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use http::Method;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use time::OffsetDateTime;

use super::{ByteRange, ByteStream, Object, ObjectMeta, StorageError};
use transport::{Body, Call, Payload};

/// Largest object sent in a single PUT (S3's own limit); larger ones go multipart.
const SINGLE_PUT_MAX: u64 = 5 * 1024 * 1024 * 1024;

/// Where and as whom to reach the bucket. The secret never appears in `Debug`.
#[derive(Clone)]
pub struct S3Config {
    /// `http://host:port` of the S3 server.
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    /// Signing region; `us-east-1` unless the server says otherwise.
    pub region: String,
}

impl S3Config {
    /// A configuration with the default region.
    pub fn new(endpoint: &str, access_key: &str, secret_key: &str, bucket: &str) -> S3Config {
        S3Config {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            bucket: bucket.to_owned(),
            region: "us-east-1".to_owned(),
        }
    }
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .finish()
    }
}

/// A shared, cheaply cloned handle on one bucket.
#[derive(Clone, Debug)]
pub struct S3Store {
    inner: Arc<Inner>,
}

struct Inner {
    bucket: String,
    region: String,
    credentials: sign::Credentials,
    /// `http://host:port`, without a trailing slash.
    base_url: String,
    /// The `Host` header, exactly as signed.
    host: String,
    client: Client<HttpConnector, Body>,
    clock: fn() -> OffsetDateTime,
    /// Seconds to add to `clock` so that signatures match the server's time.
    skew_seconds: AtomicI64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("base_url", &self.base_url)
            .field("bucket", &self.bucket)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl S3Store {
    pub fn new(cfg: S3Config) -> Result<S3Store, StorageError> {
        S3Store::with_clock(cfg, OffsetDateTime::now_utc)
    }

    /// A store signing with `clock`'s time (plus any skew learnt from the server): tests
    /// use a clock that is off to check the skew correction.
    pub fn with_clock(
        cfg: S3Config,
        clock: fn() -> OffsetDateTime,
    ) -> Result<S3Store, StorageError> {
        let endpoint = cfg.endpoint.trim_end_matches('/');
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|e| StorageError::Protocol(format!("bad S3 endpoint: {e}")))?;
        let host = match (uri.scheme_str(), uri.authority()) {
            (Some("http"), Some(authority)) => authority.as_str().to_owned(),
            _ => {
                let why = "the S3 endpoint must be http://host[:port]";
                return Err(StorageError::Protocol(why.into()));
            }
        };
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let inner = Inner {
            bucket: cfg.bucket,
            region: cfg.region,
            credentials: sign::Credentials {
                access_key: cfg.access_key,
                secret_key: cfg.secret_key,
            },
            base_url: format!("http://{host}"),
            host,
            client,
            clock,
            skew_seconds: AtomicI64::new(0),
        };
        Ok(S3Store {
            inner: Arc::new(inner),
        })
    }

    fn client(&self) -> &Client<HttpConnector, Body> {
        &self.inner.client
    }

    fn credentials(&self) -> &sign::Credentials {
        &self.inner.credentials
    }

    fn host(&self) -> &str {
        &self.inner.host
    }

    fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    fn now(&self) -> OffsetDateTime {
        let skew = self.inner.skew_seconds.load(Ordering::Relaxed);
        (self.inner.clock)() + time::Duration::seconds(skew)
    }

    fn scope(&self) -> sign::Scope<'_> {
        sign::Scope {
            region: &self.inner.region,
            service: "s3",
            time: self.now(),
        }
    }

    fn correct_clock(&self, server_time: OffsetDateTime) {
        let skew = (server_time - (self.inner.clock)()).whole_seconds();
        log::warn!(target: "s3", skew_seconds = skew; "clock differs from the S3 server's");
        self.inner.skew_seconds.store(skew, Ordering::Relaxed);
    }

    /// `/{bucket}` or `/{bucket}/{key}`, percent-encoded for the URL and the signature.
    fn path(&self, key: Option<&str>) -> String {
        let path = match key {
            Some(key) => format!("/{}/{key}", self.inner.bucket),
            None => format!("/{}", self.inner.bucket),
        };
        sign::encode_path(&path)
    }

    pub async fn ensure_ready(&self) -> Result<(), StorageError> {
        match self.send(Call::new("HeadBucket", Method::HEAD, None)).await {
            Ok(_) => Ok(()),
            Err(StorageError::NotFound) => self.create_bucket().await,
            Err(e) => Err(e),
        }
    }

    async fn create_bucket(&self) -> Result<(), StorageError> {
        let mut call = Call::new("CreateBucket", Method::PUT, None);
        if self.inner.region != "us-east-1" {
            let xml = format!(
                "<CreateBucketConfiguration><LocationConstraint>{}</LocationConstraint>\
                 </CreateBucketConfiguration>",
                self.inner.region
            );
            call = call.payload(signed_bytes(xml));
        }
        match self.send(call).await {
            Err(StorageError::Service { code, .. }) if code == "BucketAlreadyOwnedByYou" => Ok(()),
            other => other.map(drop),
        }
    }

    pub async fn check(&self) -> Result<(), StorageError> {
        match self.send(Call::new("HeadBucket", Method::HEAD, None)).await {
            Ok(_) => Ok(()),
            Err(StorageError::NotFound) => Err(StorageError::Unavailable(format!(
                "bucket {} does not exist",
                self.inner.bucket
            ))),
            Err(e) => Err(e),
        }
    }

    pub async fn put(
        &self,
        key: &str,
        content_type: &str,
        len: Option<u64>,
        body: ByteStream,
    ) -> Result<(), StorageError> {
        match len {
            Some(len) if len <= SINGLE_PUT_MAX => {
                self.put_stream(key, content_type, len, body).await
            }
            _ => multipart::put_unknown_length(self, key, content_type, len, body).await,
        }
    }

    async fn put_stream(
        &self,
        key: &str,
        content_type: &str,
        len: u64,
        body: ByteStream,
    ) -> Result<(), StorageError> {
        let call = Call::new("PutObject", Method::PUT, Some(key))
            .header("content-type", content_type)
            .payload(Payload::Stream { body, len });
        self.send(call).await.map(drop)
    }

    /// One PUT of bytes already in memory (a small body of unknown length).
    async fn put_bytes(
        &self,
        key: &str,
        content_type: &str,
        data: Bytes,
    ) -> Result<(), StorageError> {
        let call = Call::new("PutObject", Method::PUT, Some(key))
            .header("content-type", content_type)
            .payload(Payload::Bytes {
                data,
                signed: false,
            });
        self.send(call).await.map(drop)
    }

    pub async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Object, StorageError> {
        let mut call = Call::new("GetObject", Method::GET, Some(key));
        if let Some(r) = range {
            call = call.header("range", &format!("bytes={}-{}", r.first, r.last));
        }
        let answer = self.send(call).await?;
        let headers = answer.headers();
        let size = content_length(headers)?;
        let total_size = match range {
            Some(_) => total_from_content_range(headers)?,
            None => size,
        };
        Ok(Object {
            size,
            total_size,
            content_type: header_text(headers, http::header::CONTENT_TYPE),
            body: transport::stream_body(answer.into_body()),
        })
    }

    pub async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let answer = self
            .send(Call::new("HeadObject", Method::HEAD, Some(key)))
            .await?;
        let headers = answer.headers();
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: content_length(headers)?,
            content_type: header_text(headers, http::header::CONTENT_TYPE),
            last_modified: header_text(headers, http::header::LAST_MODIFIED)
                .and_then(|d| transport::parse_http_date(&d)),
        })
    }

    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self
            .send(Call::new("DeleteObject", Method::DELETE, Some(key)))
            .await
        {
            Ok(_) | Err(StorageError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut call = Call::new("ListObjectsV2", Method::GET, None)
                .query("list-type", "2")
                .query("prefix", prefix);
            if let Some(token) = &token {
                call = call.query("continuation-token", token);
            }
            let page = xml::parse_list(&self.read_xml(call).await?)?;
            objects.extend(page.objects);
            match page.next_token {
                Some(next) => token = Some(next),
                None => return Ok(objects),
            }
        }
    }

    /// Multipart uploads started under `prefix` and neither completed nor aborted, as
    /// `(key, upload id)`: for housekeeping and for tests that check nothing was left.
    pub async fn pending_uploads(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, StorageError> {
        let call = Call::new("ListMultipartUploads", Method::GET, None)
            .query("uploads", "")
            .query("prefix", prefix);
        xml::parse_uploads(&self.read_xml(call).await?)
    }

    /// Sends `call` and reads its XML answer, which may itself be an error document (S3
    /// can answer 200 and still fail a CompleteMultipartUpload).
    async fn read_xml(&self, call: Call) -> Result<String, StorageError> {
        let answer = self.send(call).await?;
        let status = answer.status().as_u16();
        let text = transport::read_text(answer.into_body()).await?;
        match xml::parse_error(&text) {
            Some((code, message)) => Err(StorageError::Service {
                code,
                message,
                status,
            }),
            None => Ok(text),
        }
    }
}

fn signed_bytes(text: String) -> Payload {
    Payload::Bytes {
        data: Bytes::from(text),
        signed: true,
    }
}

fn header_text(headers: &http::HeaderMap, name: http::HeaderName) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_owned)
}

fn content_length(headers: &http::HeaderMap) -> Result<u64, StorageError> {
    header_text(headers, http::header::CONTENT_LENGTH)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StorageError::Protocol("answer without Content-Length".into()))
}

/// The total after the `/` of `Content-Range: bytes 0-9/1234`.
fn total_from_content_range(headers: &http::HeaderMap) -> Result<u64, StorageError> {
    header_text(headers, http::header::CONTENT_RANGE)
        .and_then(|v| v.rsplit('/').next()?.trim().parse().ok())
        .ok_or_else(|| StorageError::Protocol("ranged answer without Content-Range".into()))
}
