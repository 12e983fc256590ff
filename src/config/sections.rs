//! The sections of the configuration that have many settings: S3, access,
//! the server's limits and the body cache. Same precedence as everywhere: flag, then
//! environment, then file, then default.

use std::time::Duration;

use super::{AccessConfig, ConfigError, FileConfig, Secret, bad, duration, size};
use crate::cli::{ServeArgs, StoreArgs};
use crate::storage::{S3Options, read_ca_file};

pub(super) fn server_limits(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<crate::server::ServerLimits, ConfigError> {
    let d = crate::server::ServerLimits::default();
    Ok(crate::server::ServerLimits {
        header_read_timeout: duration(
            "--header-read-timeout (PLAYBACK_GATEWAY_HEADER_READ_TIMEOUT, header_read_timeout)",
            args.header_read_timeout.as_deref(),
            file.header_read_timeout.as_deref(),
            d.header_read_timeout,
        )?,
        max_header_bytes: args
            .max_header_bytes
            .or(file.max_header_bytes)
            .unwrap_or(d.max_header_bytes),
        max_connections: args
            .max_connections
            .or(file.max_connections)
            .unwrap_or(d.max_connections),
        max_connections_per_address: args
            .max_connections_per_address
            .or(file.max_connections_per_address)
            .unwrap_or(d.max_connections_per_address),
        idle_timeout: duration(
            "--idle-timeout (PLAYBACK_GATEWAY_IDLE_TIMEOUT, idle_timeout)",
            args.idle_timeout.as_deref(),
            file.idle_timeout.as_deref(),
            d.idle_timeout,
        )?,
        write_timeout: duration(
            "--write-timeout (PLAYBACK_GATEWAY_WRITE_TIMEOUT, write_timeout)",
            args.write_timeout.as_deref(),
            file.write_timeout.as_deref(),
            d.write_timeout,
        )?,
    })
}

pub(super) fn access_config(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<AccessConfig, ConfigError> {
    let defaults = AccessConfig::default();
    let link_keys = match args
        .link_keys
        .clone()
        .map(Secret::new)
        .or(file.link_keys.clone())
    {
        Some(keys) => crate::access::parse_link_keys(keys.expose())
            .map_err(|e| bad("--link-keys (PLAYBACK_GATEWAY_LINK_KEYS, link_keys)", e))?,
        None => Vec::new(),
    };
    let cors_origins = match &args.cors_origins {
        Some(list) => list
            .split(',')
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect(),
        None => file.cors_origins.clone().unwrap_or_default(),
    };
    for o in &cors_origins {
        let ok = (o.starts_with("https://") || o.starts_with("http://"))
            && o.matches('/').count() == 2
            && !o.contains(['*', ' ', '\'', '"', ';']);
        if !ok {
            return Err(bad(
                "--cors-origins (PLAYBACK_GATEWAY_CORS_ORIGINS, cors_origins)",
                format!("{o:?} is not an origin like https://crm.example.com"),
            ));
        }
    }
    let what = "--link-max-lifetime (PLAYBACK_GATEWAY_LINK_MAX_LIFETIME, link_max_lifetime)";
    let link_max_lifetime = duration(
        what,
        args.link_max_lifetime.as_deref(),
        file.link_max_lifetime.as_deref(),
        defaults.link_max_lifetime,
    )?;
    if link_max_lifetime < Duration::from_secs(1) {
        return Err(bad(what, "at least 1s, or no link would open"));
    }
    Ok(AccessConfig {
        open: args.open || file.open.unwrap_or(false),
        link_keys,
        link_skew: duration(
            "--link-skew (PLAYBACK_GATEWAY_LINK_SKEW, link_skew)",
            args.link_skew.as_deref(),
            file.link_skew.as_deref(),
            defaults.link_skew,
        )?,
        link_max_lifetime,
        cors_origins,
        rate_limit: args
            .rate_limit
            .or(file.rate_limit)
            .unwrap_or(defaults.rate_limit),
        auth_failures_per_minute: args
            .auth_failures_per_minute
            .or(file.auth_failures_per_minute)
            .unwrap_or(defaults.auth_failures_per_minute),
    })
}

pub(super) fn s3_options(
    args: &StoreArgs,
    file: &FileConfig,
    bucket: String,
    prefix: String,
) -> Result<S3Options, ConfigError> {
    let key_id = args
        .s3_access_key_id
        .clone()
        .or(file.s3_access_key_id.clone());
    let secret = args
        .s3_secret_access_key
        .clone()
        .map(Secret)
        .or(file.s3_secret_access_key.clone());
    let credentials = match (key_id, secret) {
        (Some(id), Some(secret)) => Some((id, secret)),
        (None, None) => None,
        _ => {
            return Err(ConfigError(
                "--s3-access-key-id and --s3-secret-access-key go together; \
                 leave both out to use the standard AWS credential chain"
                    .into(),
            ));
        }
    };
    Ok(S3Options {
        bucket,
        prefix,
        endpoint: args.s3_endpoint.clone().or(file.s3_endpoint.clone()),
        region: args.s3_region.clone().or(file.s3_region.clone()),
        path_style: args.s3_path_style || file.s3_path_style.unwrap_or(false),
        credentials,
        connect_timeout: duration(
            "--s3-connect-timeout (PLAYBACK_GATEWAY_S3_CONNECT_TIMEOUT, s3_connect_timeout)",
            args.s3_connect_timeout.as_deref(),
            file.s3_connect_timeout.as_deref(),
            Duration::from_secs(3),
        )?,
        read_timeout: duration(
            "--s3-read-timeout (PLAYBACK_GATEWAY_S3_READ_TIMEOUT, s3_read_timeout)",
            args.s3_read_timeout.as_deref(),
            file.s3_read_timeout.as_deref(),
            Duration::from_secs(10),
        )?,
        read_buffer: match args.s3_read_buffer.or(file.s3_read_buffer) {
            None => crate::storage::DEFAULT_READ_BUFFER,
            Some(n) if (8 * 1024..=4 * 1024 * 1024).contains(&n) => n,
            Some(n) => {
                return Err(ConfigError(format!(
                    "--s3-read-buffer (PLAYBACK_GATEWAY_S3_READ_BUFFER, s3_read_buffer): {n} \
                     bytes is outside 8192 to 4194304"
                )));
            }
        },
        extra_roots: match args.s3_ca_file.as_ref().or(file.s3_ca_file.as_ref()) {
            Some(path) => read_ca_file(path).map_err(|why| {
                ConfigError(format!(
                    "--s3-ca-file (PLAYBACK_GATEWAY_S3_CA_FILE, s3_ca_file): {}: {why}",
                    path.display()
                ))
            })?,
            None => Vec::new(),
        },
    })
}

/// The body cache's budget and largest object (0 turns it off).
pub(super) fn body_cache(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<crate::storage::BodyCacheConfig, ConfigError> {
    let default = crate::storage::BodyCacheConfig::default();
    Ok(crate::storage::BodyCacheConfig {
        max_bytes: size(
            "--body-cache-size (PLAYBACK_GATEWAY_BODY_CACHE_SIZE, body_cache_size)",
            args.body_cache_size.as_deref(),
            file.body_cache_size.as_deref(),
            default.max_bytes,
        )?,
        max_object: size(
            "--body-cache-max-object (PLAYBACK_GATEWAY_BODY_CACHE_MAX_OBJECT, body_cache_max_object)",
            args.body_cache_max_object.as_deref(),
            file.body_cache_max_object.as_deref(),
            default.max_object,
        )?,
    })
}
