//! Subcommands other than `serve` and `demo`: small programs over the
//! catalog and the keys.

use crate::app;
use crate::cli::{KeysAction, KeysArgs, SignArgs};
use crate::config::{FileConfig, StoreConfig};
use crate::sid::{AccountSid, RecordingSid};

async fn catalog_of(store: &crate::cli::StoreArgs) -> anyhow::Result<crate::catalog::Catalog> {
    let file = FileConfig::load(store.config.as_deref())?;
    let store = StoreConfig::resolve(store, &file)?;
    app::open_catalog(&store).await
}

fn account(s: &str) -> anyhow::Result<AccountSid> {
    s.parse().map_err(|e| anyhow::anyhow!("--account: {e}"))
}

/// `playback-gateway keys create|list|revoke`.
pub async fn keys(args: &KeysArgs) -> anyhow::Result<()> {
    let catalog = catalog_of(&args.store).await?;
    match &args.action {
        KeysAction::Create {
            account: a,
            read_only,
            label,
        } => {
            let a = account(a)?;
            let key = crate::access::new_key();
            catalog
                .create_key(&key.id, &a, &key.hash, *read_only, label.as_deref())
                .await?;
            println!("key id:  {}", key.id);
            println!(
                "account: {a}{}",
                if *read_only { " (read-only)" } else { "" }
            );
            println!("secret:  {}", key.secret.expose());
            println!();
            println!("The secret is shown once and stored only as a hash. Use it as HTTP Basic");
            println!("{a}:<secret>, or as Authorization: Bearer <secret>.");
        }
        KeysAction::List { account: a } => {
            let a = a.as_deref().map(account).transpose()?;
            for k in catalog.keys(a.as_ref()).await? {
                println!(
                    "{}  {}  {}  created {}{}{}",
                    k.id,
                    k.account_sid,
                    if k.read_only {
                        "read-only"
                    } else {
                        "read-write"
                    },
                    k.created_at,
                    k.revoked_at
                        .map(|r| format!("  REVOKED {r}"))
                        .unwrap_or_default(),
                    k.label.map(|l| format!("  {l}")).unwrap_or_default(),
                );
            }
        }
        KeysAction::Revoke { id } => {
            if !catalog.revoke_key(id).await? {
                anyhow::bail!("no live key {id:?}");
            }
            println!("key {id} revoked");
        }
    }
    Ok(())
}

/// `playback-gateway sign`: prints a signed playback link.
pub async fn sign(args: &SignArgs) -> anyhow::Result<()> {
    let file = FileConfig::load(args.store.config.as_deref())?;
    let keys = args
        .link_keys
        .clone()
        .or(file.link_keys.as_ref().map(|s| s.expose().to_owned()))
        .ok_or_else(|| {
            anyhow::anyhow!("--link-keys (PLAYBACK_GATEWAY_LINK_KEYS, link_keys): none given")
        })?;
    let keys =
        crate::access::parse_link_keys(&keys).map_err(|e| anyhow::anyhow!("--link-keys: {e}"))?;
    let key = keys
        .first()
        .ok_or_else(|| anyhow::anyhow!("--link-keys: none given"))?;
    let a = account(&args.account)?;
    let r: RecordingSid = args
        .recording
        .parse()
        .map_err(|e| anyhow::anyhow!("--recording: {e}"))?;
    let format = crate::keys::Format::from_ext(&args.format)
        .ok_or_else(|| anyhow::anyhow!("--format: mp3 or wav"))?;
    // The gateway refuses a link that outlives its limit; say so here
    // rather than print one that never opens.
    let max = match file.link_max_lifetime.as_deref() {
        Some(s) => crate::config::parse_duration("link_max_lifetime", s)?,
        None => crate::access::DEFAULT_LINK_MAX_LIFETIME,
    };
    if args.ttl == 0 || u64::from(args.ttl) > max.as_secs() {
        anyhow::bail!("--ttl: 1 to {} seconds (link_max_lifetime)", max.as_secs());
    }
    let exp = jiff::Timestamp::now().as_second() + i64::from(args.ttl);
    let link = crate::access::sign_link(key, &a, &r, exp);
    let base = args
        .public_url
        .clone()
        .or(file.public_url.clone())
        .unwrap_or_default();
    println!(
        "{}/recordings/{r}.{}?{}",
        base.trim_end_matches('/'),
        format.ext(),
        link.query()
    );
    Ok(())
}

/// `playback-gateway check-config`: what `serve` would run with, checked.
pub async fn check_config(args: &crate::cli::ServeArgs) -> anyhow::Result<()> {
    use crate::config::{Config, StorageConfig};
    let file = FileConfig::load(args.store.config.as_deref())?;
    let config = Config::resolve(args, &file)?;
    println!("ok   configuration: every value is valid");
    println!("     listen {}", config.listen);
    match &config.store.storage {
        StorageConfig::Local { root } => {
            println!("     storage: local directory {}", root.display())
        }
        StorageConfig::S3(o) => println!(
            "     storage: s3 bucket {} prefix {:?} endpoint {} (path style: {})",
            o.bucket,
            o.prefix,
            o.endpoint.as_deref().unwrap_or("AWS"),
            o.path_style
        ),
    }
    println!(
        "     catalog: {}",
        crate::catalog::redact_url(&config.store.catalog_url)
    );
    let bodies = config.cache.bodies;
    println!(
        "     caches: metadata {} (not found {}), recordings in memory {}",
        humantime::format_duration(config.cache.ttl),
        humantime::format_duration(config.cache.negative_ttl),
        if bodies.max_bytes == 0 {
            "off".to_owned()
        } else {
            format!(
                "{} (each up to {})",
                bytesize::ByteSize(bodies.max_bytes),
                bytesize::ByteSize(bodies.max_object)
            )
        }
    );
    println!(
        "     access: {}, {} link key(s), admin API {}",
        if config.access.open {
            "OPEN MODE"
        } else {
            "closed"
        },
        config.access.link_keys.len(),
        if config.admin_token.is_some() {
            "on"
        } else {
            "off"
        }
    );
    let mut failed = 0;
    let storage = app::open_storage(&config.store).await;
    match &storage {
        Ok(s) => match s.check().await {
            Ok(()) => println!("ok   storage answers: {}", s.describe()),
            Err(e) => {
                failed += 1;
                println!("FAIL storage: {e}");
            }
        },
        Err(e) => {
            failed += 1;
            println!("FAIL storage: {e:#}");
        }
    }
    match app::open_catalog(&config.store).await {
        Ok(catalog) => {
            println!("ok   catalog opens and is migrated");
            match crate::incidents::registry::Registry::load(
                catalog,
                config.incidents_dir.as_deref(),
            )
            .await
            {
                Ok(r) => println!("ok   incident registry: {} incident(s)", r.snapshot().len()),
                Err(e) => {
                    failed += 1;
                    println!("FAIL incidents: {e:#}");
                }
            }
        }
        Err(e) => {
            failed += 1;
            println!("FAIL catalog: {e:#}");
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} check(s) failed");
    }
    Ok(())
}

/// `playback-gateway account`: creates or changes one account, keeping
/// what is not given.
pub async fn set_account(args: &crate::cli::AccountArgs) -> anyhow::Result<()> {
    let sid: crate::sid::AccountSid = args
        .account
        .parse()
        .map_err(|e| anyhow::anyhow!("--account: {e}"))?;
    if let Some(tz) = &args.time_zone {
        jiff::tz::TimeZone::get(tz)
            .map_err(|_| anyhow::anyhow!("--time-zone: {tz:?} is not an IANA time zone"))?;
    }
    let file = FileConfig::load(args.store.config.as_deref())?;
    let store = StoreConfig::resolve(&args.store, &file)?;
    let catalog = app::open_catalog(&store).await?;
    let old = catalog.account(&sid).await?;
    let account = crate::catalog::Account {
        sid: sid.clone(),
        name: args
            .name
            .clone()
            .or(old.as_ref().and_then(|a| a.name.clone())),
        auth_token: args
            .auth_token
            .clone()
            .map(crate::config::Secret::new)
            .or(old.as_ref().and_then(|a| a.auth_token.clone())),
        time_zone: args.time_zone.clone().or(old.and_then(|a| a.time_zone)),
    };
    catalog.upsert_account(&account).await?;
    println!(
        "account {sid}: name {:?}, time zone {:?}, webhook auth token {}",
        account.name.as_deref().unwrap_or("-"),
        account.time_zone.as_deref().unwrap_or("-"),
        if account.auth_token.is_some() {
            "set"
        } else {
            "not set"
        }
    );
    Ok(())
}

/// `audit`: reconciles catalog and storage and prints the report; the
/// exit status is 3 when unexplained losses exceed the threshold.
pub async fn audit(args: &crate::cli::AuditArgs) -> anyhow::Result<()> {
    use crate::audit::{BurstRule, Options, render};
    use crate::catalog::Scope;

    let file = FileConfig::load(args.store.config.as_deref())?;
    let store = StoreConfig::resolve(&args.store, &file)?;
    let time = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<jiff::Timestamp>> {
        v.as_deref()
            .map(|s| {
                s.parse::<jiff::civil::Date>()
                    .ok()
                    .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                    .map(|z| z.timestamp())
                    .map_or_else(|| crate::import::parse_time(s), Ok)
                    .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
            })
            .transpose()
    };
    let scope = Scope {
        account: args
            .account
            .as_deref()
            .map(|a| a.parse().map_err(|e| anyhow::anyhow!("--account: {e}")))
            .transpose()?,
        from: time("from", &args.from)?,
        to: time("to", &args.to)?,
    };
    if let (Some(f), Some(t)) = (scope.from, scope.to)
        && t <= f
    {
        anyhow::bail!("--to must be after --from");
    }
    let window = crate::config::parse_duration("--burst-window", &args.burst_window)?;
    let storage = crate::app::open_storage(&store).await?;
    let catalog = crate::app::open_catalog(&store).await?;
    let incidents_dir = args.incidents.clone().or(file.incidents.clone());
    let registry =
        crate::incidents::registry::Registry::load(catalog.clone(), incidents_dir.as_deref())
            .await?;
    let total = catalog.count_in_scope(&scope).await?;
    let bar = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} recordings {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = {
        let bar = bar.clone();
        std::sync::Arc::new(move |n| bar.set_position(n))
            as std::sync::Arc<dyn Fn(u64) + Send + Sync>
    };
    let report = crate::audit::audit(
        &catalog,
        storage,
        &store.key_layout,
        registry.snapshot().to_vec(),
        Options {
            scope,
            burst: BurstRule {
                min_losses: args.burst_min,
                window,
            },
            progress: Some(progress),
        },
    )
    .await?;
    bar.finish_and_clear();
    print!("{}", render(&report, args.format));
    let unexplained = report.summary.counts.missing_unexplained;
    if unexplained > args.max_unexplained {
        eprintln!(
            "playback-gateway: {unexplained} unexplained losses (more than --max-unexplained {})",
            args.max_unexplained
        );
        return Err(crate::Exit(3).into());
    }
    Ok(())
}
