//! The service's error type. Each variant knows its HTTP status and its snake_case code;
//! the request wrapper turns it into the one JSON error shape
//! `{"error": {"code": "...", "message": "..."}}`.

use std::fmt;

use http::{Method, StatusCode};

/// Everything a handler can fail with.
#[derive(Debug)]
pub enum Error {
    /// The request is malformed or fails validation; `code` says which rule.
    BadRequest {
        code: &'static str,
        message: String,
    },
    /// Nothing here, or not yours: ids never leak.
    NotFound,
    MethodNotAllowed {
        allow: &'static [Method],
    },
    /// No identity, or one from an untrusted peer in production.
    Unauthorized,
    PayloadTooLarge {
        limit: u64,
    },
    UnsupportedMediaType {
        expected: &'static str,
    },
    Conflict {
        code: &'static str,
        message: String,
    },
    RangeNotSatisfiable {
        size: u64,
    },
    TooManyRequests,
    HeadersTooLarge,
    /// A dependency (database, storage, agent server) cannot serve now.
    Unavailable {
        code: &'static str,
        message: String,
    },
    /// An agent server answered, but wrongly or with an error.
    BadGateway {
        code: &'static str,
        message: String,
    },
    /// A fault of ours; the detail is logged, never shown.
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Error {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Error {
        Error::Unavailable {
            code,
            message: message.into(),
        }
    }

    pub fn internal(detail: impl fmt::Display) -> Error {
        Error::Internal(detail.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Error::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. }
            | Error::Conflict { code, .. }
            | Error::Unavailable { code, .. }
            | Error::BadGateway { code, .. } => code,
            Error::NotFound => "not_found",
            Error::MethodNotAllowed { .. } => "method_not_allowed",
            Error::Unauthorized => "unauthorized",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::UnsupportedMediaType { .. } => "unsupported_media_type",
            Error::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Error::TooManyRequests => "too_many_requests",
            Error::HeadersTooLarge => "headers_too_large",
            Error::Internal(_) => "internal_error",
        }
    }

    /// The sentence shown to the person; internal details stay in the log.
    pub fn message(&self) -> String {
        match self {
            Error::BadRequest { message, .. }
            | Error::Conflict { message, .. }
            | Error::Unavailable { message, .. }
            | Error::BadGateway { message, .. } => message.clone(),
            Error::NotFound => "nothing here, or it is not yours".into(),
            Error::MethodNotAllowed { allow } => {
                let names: Vec<&str> = allow.iter().map(Method::as_str).collect();
                format!("this path answers {}", names.join(", "))
            }
            Error::Unauthorized => {
                "sign in first: no trusted identity came with the request".into()
            }
            Error::PayloadTooLarge { limit } => format!("the body is larger than {limit} bytes"),
            Error::UnsupportedMediaType { expected } => format!("send the body as {expected}"),
            Error::RangeNotSatisfiable { size } => {
                format!("the range lies outside the file's {size} bytes")
            }
            Error::TooManyRequests => "too many requests; slow down".into(),
            Error::HeadersTooLarge => "the request headers are too large".into(),
            Error::Internal(_) => "something went wrong on our side; it has been logged".into(),
        }
    }

    /// The JSON error body.
    pub fn body(&self) -> Vec<u8> {
        let v = serde_json::json!({"error": {"code": self.code(), "message": self.message()}});
        serde_json::to_vec(&v).expect("a JSON value always serialises")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Internal(detail) => write!(f, "internal error: {detail}"),
            other => write!(f, "{}: {}", other.code(), other.message()),
        }
    }
}

impl std::error::Error for Error {}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Error {
        if e.is_closed() || e.as_db_error().is_none() {
            return Error::unavailable("database_unavailable", "the database cannot be reached");
        }
        let detail = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |db| db.to_string());
        Error::Internal(format!("database: {detail}"))
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Error {
        log::warn!(target: "db", error = e.to_string().as_str(); "no database connection");
        Error::unavailable("database_unavailable", "the database cannot be reached")
    }
}
