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
    if args.ttl == 0 {
        anyhow::bail!("--ttl: at least one second");
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
