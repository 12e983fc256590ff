//! The storage side of the bench: a bucket with fixture objects of
//! pseudo-random bytes (generated in memory, large ones part by part in a
//! multipart upload), and presigned URLs for the direct path.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use serde_json::{Value, json};

use crate::util::{bytes_at, round3, seed_of};

#[derive(Debug, Clone, clap::Args)]
pub struct Store {
    /// S3 endpoint, e.g. http://127.0.0.1:8333 (path-style addressing).
    #[arg(long)]
    pub endpoint: String,
    #[arg(long)]
    pub bucket: String,
    #[arg(long, env = "BENCH_S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub access_key_id: String,
    #[arg(long, env = "BENCH_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_access_key: String,
}

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub store: Store,
    /// `KEY=BYTES`, repeatable.
    #[arg(long = "object", value_name = "KEY=BYTES", required = true)]
    pub objects: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PresignArgs {
    #[command(flatten)]
    pub store: Store,
    /// Object key, repeatable; one URL is printed per key, in order.
    #[arg(long = "key", required = true)]
    pub keys: Vec<String>,
    /// GET or HEAD.
    #[arg(long, default_value = "GET")]
    pub method: String,
    #[arg(long, default_value_t = 3600)]
    pub expires_s: u64,
}

pub fn client(store: &Store) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&store.endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            &store.access_key_id,
            &store.secret_access_key,
            None,
            None,
            "bench",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(config)
}

/// Objects larger than this go up in parts of this size.
const PART: u64 = 16 << 20;

/// Creates the bucket, waiting up to a minute for the store to be ready;
/// a bucket that already exists is fine.
pub async fn ensure_bucket(s3: &Client, bucket: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match s3.create_bucket().bucket(bucket).send().await {
            Ok(_) => return Ok(()),
            Err(e) => {
                let e = aws_sdk_s3::error::DisplayErrorContext(e).to_string();
                if e.contains("BucketAlreadyOwnedByYou") || e.contains("BucketAlreadyExists") {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    bail!("the store does not create bucket {bucket}: {e}");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Creates the bucket (waiting for the store to be ready) and uploads the
/// objects.
pub async fn seed(args: SeedArgs) -> anyhow::Result<Value> {
    let s3 = client(&args.store);
    let bucket = &args.store.bucket;
    ensure_bucket(&s3, bucket).await?;
    let started = Instant::now();
    let mut total = 0u64;
    for spec in &args.objects {
        let (key, size) = spec
            .rsplit_once('=')
            .with_context(|| format!("--object {spec:?} is not KEY=BYTES"))?;
        let size: u64 = size.parse().with_context(|| format!("--object {spec:?}"))?;
        let seed = seed_of(key);
        if size <= PART {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .content_type("audio/wav")
                .body(ByteStream::from(bytes_at(seed, 0, size as usize)))
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))
                .with_context(|| format!("uploading {key}"))?;
        } else {
            upload_multipart(&s3, bucket, key, size, seed).await?;
        }
        total += size;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({
        "objects": args.objects.len(),
        "bytes": total,
        "seconds": round3(secs),
        "mb_per_s": round3(total as f64 / secs / 1e6),
    }))
}

async fn upload_multipart(
    s3: &Client,
    bucket: &str,
    key: &str,
    size: u64,
    seed: u64,
) -> anyhow::Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("uploading {key}: {e}");
    let up = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .content_type("audio/wav")
        .send()
        .await
        .map_err(|e| err(&aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let id = up.upload_id().context("no upload id")?.to_owned();
    let mut parts = Vec::new();
    let mut offset = 0u64;
    let mut number = 1;
    while offset < size {
        let len = PART.min(size - offset);
        let part = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(number)
            .body(ByteStream::from(bytes_at(seed, offset, len as usize)))
            .send()
            .await
            .map_err(|e| err(&aws_sdk_s3::error::DisplayErrorContext(e)))?;
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(part.e_tag().map(str::to_owned))
                .build(),
        );
        offset += len;
        number += 1;
    }
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|e| err(&aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// Presigned URLs, one per line, in the order of the keys.
pub async fn presign(args: PresignArgs) -> anyhow::Result<String> {
    let s3 = client(&args.store);
    let cfg = PresigningConfig::expires_in(Duration::from_secs(args.expires_s))?;
    let mut out = String::new();
    for key in &args.keys {
        let req = match args.method.to_ascii_uppercase().as_str() {
            "GET" => {
                s3.get_object()
                    .bucket(&args.store.bucket)
                    .key(key)
                    .presigned(cfg.clone())
                    .await?
            }
            "HEAD" => {
                s3.head_object()
                    .bucket(&args.store.bucket)
                    .key(key)
                    .presigned(cfg.clone())
                    .await?
            }
            m => bail!("--method {m}: GET or HEAD"),
        };
        out.push_str(req.uri());
        out.push('\n');
    }
    Ok(out)
}
