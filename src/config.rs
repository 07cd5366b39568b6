//! Configuration, read once at start from the environment and an optional `.env` file.
//!
//! Every variable is listed in the README. A bad value names the variable and stops the
//! start with a non-zero exit; secrets never appear in `Debug` output or logs.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

/// Whether the service runs for one person on their machine or behind the SSO proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// A value that must never be printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// Object storage settings; present only when `DAEDALUS_S3_ENDPOINT` is set.
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub endpoint: String,
    pub access_key: Secret,
    pub secret_key: Secret,
    pub bucket: String,
    pub region: String,
}

/// The whole configuration, typed.
#[derive(Clone, Debug)]
pub struct Config {
    pub env: Environment,
    pub listen: SocketAddr,
    /// `None` in development means: run the embedded PostgreSQL cluster.
    pub database_url: Option<Secret>,
    pub s3: Option<S3Settings>,
    pub data_dir: PathBuf,
    pub static_dir: Option<PathBuf>,
    /// Lower-case header name carrying the signed-in user.
    pub auth_header: String,
    pub trusted_proxies: Vec<IpNet>,
    pub max_upload_bytes: u64,
}

/// A configuration problem, naming the variable.
#[derive(Debug)]
pub struct ConfigError {
    pub variable: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for ConfigError {}

fn bad(variable: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.to_string(),
        reason: reason.into(),
    }
}

/// Where values come from: the process environment wins over the `.env` file.
pub struct Source {
    vars: HashMap<String, String>,
}

impl Source {
    /// The process environment over `.env` in the working directory, if that file exists.
    pub fn from_env() -> Result<Source, ConfigError> {
        let mut vars = HashMap::new();
        let dotenv = Path::new(".env");
        if dotenv.exists() {
            let iter = dotenvy::from_path_iter(dotenv).map_err(|e| bad(".env", e.to_string()))?;
            for item in iter {
                let (key, value) = item.map_err(|e| bad(".env", e.to_string()))?;
                vars.insert(key, value);
            }
        }
        vars.extend(std::env::vars());
        Ok(Source { vars })
    }

    /// A source made of the given pairs only (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Source {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Source { vars }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// A secret given directly or as a `NAME_FILE` path to read it from.
    fn secret(&self, name: &str) -> Result<Option<Secret>, ConfigError> {
        if let Some(v) = self.get(name) {
            return Ok(Some(Secret(v.to_string())));
        }
        let file_var = format!("{name}_FILE");
        let Some(path) = self.get(&file_var) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(&file_var, format!("cannot read {path}: {e}")))?;
        Ok(Some(Secret(
            text.trim_end_matches(['\n', '\r']).to_string(),
        )))
    }
}

const DEFAULT_MAX_UPLOAD: u64 = 1 << 30;

impl Config {
    /// Reads and checks every variable.
    pub fn load(src: &Source) -> Result<Config, ConfigError> {
        let env = parse_env(src.get("DAEDALUS_ENV"))?;
        let listen = parse_listen(src.get("DAEDALUS_LISTEN"))?;
        let database_url = src.secret("DAEDALUS_DATABASE_URL")?;
        let database_url = match database_url {
            Some(url) => Some(Secret(normalise_database_url(&url.0)?)),
            None if env == Environment::Production => {
                return Err(bad("DAEDALUS_DATABASE_URL", "is required in production"));
            }
            None => None,
        };
        let data_dir = PathBuf::from(src.get("DAEDALUS_DATA_DIR").unwrap_or("./data"));
        let static_dir = match src.get("DAEDALUS_STATIC_DIR") {
            Some(dir) if !Path::new(dir).join("index.html").exists() => {
                return Err(bad(
                    "DAEDALUS_STATIC_DIR",
                    format!("{dir} has no index.html"),
                ));
            }
            Some(dir) => Some(PathBuf::from(dir)),
            None => Some(PathBuf::from("www/build")).filter(|p| p.join("index.html").exists()),
        };
        let auth_header = parse_header_name(src.get("DAEDALUS_AUTH_HEADER"))?;
        let trusted_proxies = parse_proxies(src.get("DAEDALUS_TRUSTED_PROXIES"))?;
        let max_upload_bytes = parse_size(src.get("DAEDALUS_MAX_UPLOAD_BYTES"))?;
        let s3 = parse_s3(src)?;
        Ok(Config {
            env,
            listen,
            database_url,
            s3,
            data_dir,
            static_dir,
            auth_header,
            trusted_proxies,
            max_upload_bytes,
        })
    }
}

fn parse_env(value: Option<&str>) -> Result<Environment, ConfigError> {
    match value.unwrap_or("development") {
        "development" | "dev" => Ok(Environment::Development),
        "production" | "prod" => Ok(Environment::Production),
        other => Err(bad(
            "DAEDALUS_ENV",
            format!("{other:?} is neither production nor development"),
        )),
    }
}

fn parse_listen(value: Option<&str>) -> Result<SocketAddr, ConfigError> {
    let value = value.unwrap_or("127.0.0.1:8000");
    value.parse().map_err(|_| {
        bad(
            "DAEDALUS_LISTEN",
            format!("{value:?} is not an address:port"),
        )
    })
}

/// Accepts `postgres://`, `postgresql://` and the old service's `postgresql+asyncpg://`.
pub fn normalise_database_url(url: &str) -> Result<String, ConfigError> {
    let var = "DAEDALUS_DATABASE_URL";
    let rest = [
        "postgresql+asyncpg://",
        "postgres+asyncpg://",
        "postgresql://",
        "postgres://",
    ]
    .iter()
    .find_map(|scheme| url.strip_prefix(scheme))
    .ok_or_else(|| {
        bad(
            var,
            "must start with postgresql:// (or postgresql+asyncpg://)",
        )
    })?;
    let url = format!("postgresql://{rest}");
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| bad(var, format!("cannot be parsed: {e}")))?;
    Ok(url)
}

fn parse_header_name(value: Option<&str>) -> Result<String, ConfigError> {
    let name = value.unwrap_or("X-Forwarded-User").to_ascii_lowercase();
    http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        bad(
            "DAEDALUS_AUTH_HEADER",
            format!("{name:?} is not a header name"),
        )
    })?;
    Ok(name)
}

fn parse_proxies(value: Option<&str>) -> Result<Vec<IpNet>, ConfigError> {
    let value = value.unwrap_or("127.0.0.0/8,::1/128");
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    bad(
                        "DAEDALUS_TRUSTED_PROXIES",
                        format!("{s:?} is not an address or CIDR"),
                    )
                })
        })
        .collect()
}

fn parse_size(value: Option<&str>) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(DEFAULT_MAX_UPLOAD);
    };
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad(
            "DAEDALUS_MAX_UPLOAD_BYTES",
            format!("{value:?} is not a positive byte count"),
        )),
    }
}

fn parse_s3(src: &Source) -> Result<Option<S3Settings>, ConfigError> {
    let Some(endpoint) = src.get("DAEDALUS_S3_ENDPOINT") else {
        return Ok(None);
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(bad(
            "DAEDALUS_S3_ENDPOINT",
            "must be an http:// or https:// URL",
        ));
    }
    let access_key = src.secret("DAEDALUS_S3_ACCESS_KEY")?.ok_or_else(|| {
        bad(
            "DAEDALUS_S3_ACCESS_KEY",
            "is required with DAEDALUS_S3_ENDPOINT",
        )
    })?;
    let secret_key = src.secret("DAEDALUS_S3_SECRET_KEY")?.ok_or_else(|| {
        bad(
            "DAEDALUS_S3_SECRET_KEY",
            "is required with DAEDALUS_S3_ENDPOINT",
        )
    })?;
    Ok(Some(S3Settings {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        access_key,
        secret_key,
        bucket: src
            .get("DAEDALUS_S3_BUCKET")
            .unwrap_or("daedalus")
            .to_string(),
        region: src
            .get("DAEDALUS_S3_REGION")
            .unwrap_or("us-east-1")
            .to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_development_on_loopback() {
        let cfg = Config::load(&Source::from_pairs([])).expect("defaults load");
        assert_eq!(cfg.env, Environment::Development);
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8000");
        assert!(cfg.database_url.is_none());
        assert_eq!(cfg.auth_header, "x-forwarded-user");
        assert_eq!(cfg.max_upload_bytes, 1 << 30);
    }

    #[test]
    fn asyncpg_urls_of_the_old_service_are_accepted() {
        let url = normalise_database_url("postgresql+asyncpg://u:p@db:5432/daedalus").expect("ok");
        assert_eq!(url, "postgresql://u:p@db:5432/daedalus");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = Config::load(&Source::from_pairs([("DAEDALUS_LISTEN", "nowhere")])).unwrap_err();
        assert_eq!(err.variable, "DAEDALUS_LISTEN");
        let err = Config::load(&Source::from_pairs([("DAEDALUS_ENV", "production")])).unwrap_err();
        assert_eq!(err.variable, "DAEDALUS_DATABASE_URL");
        let err = Config::load(&Source::from_pairs([(
            "DAEDALUS_TRUSTED_PROXIES",
            "10.0.0.0/99",
        )]))
        .unwrap_err();
        assert_eq!(err.variable, "DAEDALUS_TRUSTED_PROXIES");
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let cfg = Config::load(&Source::from_pairs([(
            "DAEDALUS_DATABASE_URL",
            "postgresql://u:hunter2@db/x",
        )]))
        .expect("loads");
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}
