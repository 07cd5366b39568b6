//! AWS Signature Version 4 for S3 requests, as a pure function of the request and the clock.
//!
//! The caller gives the method, the already-encoded path, the raw query pairs, the headers
//! it will send (every one of them is signed) and the payload hash; [`authorization`]
//! returns the `Authorization` header value. Nothing here reads the clock or the network,
//! so the published AWS examples check it exactly.

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

/// `x-amz-content-sha256` for a body that is not hashed (streamed uploads).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// SHA-256 of no bytes, the payload hash of bodiless requests.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Everything but the unreserved characters of RFC 3986 (`A-Z a-z 0-9 - . _ ~`).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The same, keeping `/` as the path separator.
const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

/// The access key pair. The secret never appears in `Debug`.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// One request to sign.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent, already encoded with [`encode_path`].
    pub path: &'a str,
    /// Raw (unencoded) query parameters, in any order.
    pub query: &'a [(String, String)],
    /// Header names in lower case with their values; all are signed. Must include `host`,
    /// `x-amz-date` and `x-amz-content-sha256`.
    pub headers: &'a [(String, String)],
    pub payload_hash: &'a str,
}

/// Where and when the signature is valid.
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    pub time: OffsetDateTime,
}

/// Percent-encodes an S3 key or path the way SigV4 expects: UTF-8 bytes, everything but
/// the unreserved characters and `/` escaped (so `+` is `%2B` and a space is `%20`).
pub fn encode_path(path: &str) -> String {
    utf8_percent_encode(path, UNRESERVED_AND_SLASH).to_string()
}

/// Percent-encodes a query name or value (`/` escaped too).
pub fn encode_query_part(part: &str) -> String {
    utf8_percent_encode(part, UNRESERVED).to_string()
}

/// The query string as sent and as signed: encoded pairs sorted by name, then value.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (encode_query_part(k), encode_query_part(v)))
        .collect();
    pairs.sort();
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    joined.join("&")
}

/// `20130524T000000Z`: the `x-amz-date` header value.
pub fn amz_date(time: OffsetDateTime) -> String {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    time.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .expect("formatting a UTC date with a fixed description cannot fail")
}

fn short_date(time: OffsetDateTime) -> String {
    amz_date(time)[..8].to_owned()
}

/// Sorted, lower-cased headers with trimmed values, and the `;`-joined list of their names.
fn canonical_headers(headers: &[(String, String)]) -> (String, String) {
    let mut sorted: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), collapse_spaces(v)))
        .collect();
    sorted.sort();
    let block: String = sorted.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let names: Vec<&str> = sorted.iter().map(|(k, _)| k.as_str()).collect();
    (block, names.join(";"))
}

fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical request of SigV4, and the signed header names.
pub fn canonical_request(req: &Request<'_>) -> (String, String) {
    let (headers, signed) = canonical_headers(req.headers);
    let text = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        req.path,
        canonical_query(req.query),
        headers,
        signed,
        req.payload_hash
    );
    (text, signed)
}

fn credential_scope(scope: &Scope<'_>) -> String {
    let date = short_date(scope.time);
    format!("{date}/{}/{}/aws4_request", scope.region, scope.service)
}

pub fn string_to_sign(canonical_request: &str, scope: &Scope<'_>) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{}\n{}\n{}",
        amz_date(scope.time),
        credential_scope(scope),
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn signing_key(secret: &str, scope: &Scope<'_>) -> Vec<u8> {
    let date = hmac(format!("AWS4{secret}").as_bytes(), &short_date(scope.time));
    let region = hmac(&date, scope.region);
    let service = hmac(&region, scope.service);
    hmac(&service, "aws4_request")
}

/// The `Authorization` header value for `req`.
pub fn authorization(creds: &Credentials, req: &Request<'_>, scope: &Scope<'_>) -> String {
    let (canonical, signed) = canonical_request(req);
    let to_sign = string_to_sign(&canonical, scope);
    let signature = hex::encode(hmac(&signing_key(&creds.secret_key, scope), &to_sign));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{},SignedHeaders={signed},Signature={signature}",
        creds.access_key,
        credential_scope(scope)
    )
}

#[cfg(test)]
mod tests {
    //! The examples of "Signature Calculations for the Authorization Header" in the Amazon
    //! S3 API reference: bucket `examplebucket`, 24 May 2013, the documented example keys.
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        }
    }

    fn scope() -> Scope<'static> {
        Scope {
            region: "us-east-1",
            service: "s3",
            time: time::macros::datetime!(2013-05-24 00:00:00 UTC),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut all = vec![
            (
                "host".to_owned(),
                "examplebucket.s3.amazonaws.com".to_owned(),
            ),
            ("x-amz-date".to_owned(), "20130524T000000Z".to_owned()),
        ];
        all.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        all
    }

    fn signature_of(auth: &str) -> &str {
        auth.rsplit("Signature=").next().expect("a signature")
    }

    #[test]
    fn aws_example_get_object_with_range() {
        let headers = headers(&[
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
        ]);
        let req = Request {
            method: "GET",
            path: &encode_path("/test.txt"),
            query: &[],
            headers: &headers,
            payload_hash: EMPTY_SHA256,
        };
        let auth = authorization(&creds(), &req, &scope());
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn aws_example_put_object_with_escaped_key() {
        let hash = hex::encode(Sha256::digest(b"Welcome to Amazon S3."));
        let headers = headers(&[
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", &hash),
        ]);
        let path = encode_path("/test$file.text");
        assert_eq!(path, "/test%24file.text");
        let req = Request {
            method: "PUT",
            path: &path,
            query: &[],
            headers: &headers,
            payload_hash: &hash,
        };
        let auth = authorization(&creds(), &req, &scope());
        assert_eq!(
            signature_of(&auth),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    #[test]
    fn aws_example_list_objects_with_query() {
        let headers = headers(&[("x-amz-content-sha256", EMPTY_SHA256)]);
        let query = [
            ("prefix".into(), "J".into()),
            ("max-keys".into(), "2".into()),
        ];
        let req = Request {
            method: "GET",
            path: "/",
            query: &query,
            headers: &headers,
            payload_hash: EMPTY_SHA256,
        };
        let auth = authorization(&creds(), &req, &scope());
        assert_eq!(
            signature_of(&auth),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    #[test]
    fn keys_are_encoded_as_s3_expects() {
        assert_eq!(encode_path("/b/a b.txt"), "/b/a%20b.txt");
        assert_eq!(encode_path("/b/a+b.txt"), "/b/a%2Bb.txt");
        assert_eq!(
            encode_path("/b/C++ notes 100%~.txt"),
            "/b/C%2B%2B%20notes%20100%25~.txt"
        );
        assert_eq!(encode_path("/b/résumé"), "/b/r%C3%A9sum%C3%A9");
        assert_eq!(encode_query_part("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn the_secret_stays_out_of_debug() {
        assert!(!format!("{:?}", creds()).contains("EXAMPLEKEY"));
    }
}
