//! Running an audit: the catalog read page by page and the storage listing
//! each feed a bounded channel from their own task, and the merge consumes
//! both on a blocking thread. Memory stays flat (two channels and the
//! findings), and the two sides are fetched at the same time.

use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::mpsc;

use super::reconcile::MergeError;
use super::{BurstRule, Context, Finding, Kind, Report, Summary, find_bursts, reconcile};
use crate::catalog::{Catalog, CatalogError, KeyOrder, Recording, Scope};
use crate::incidents::Incident;
use crate::keys::KeyLayout;
use crate::storage::{Listed, Storage, StorageError};

/// Catalog rows per query.
const PAGE: u32 = 5_000;
/// Items each side may run ahead of the merge.
const AHEAD: usize = 10_000;

/// What to audit and how.
#[derive(Clone, Default)]
pub struct Options {
    pub scope: Scope,
    pub burst: BurstRule,
    /// Told the number of catalog recordings read so far, now and then.
    pub progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

/// Why an audit could not finish. None of these is a finding: an audit
/// that cannot see both sides whole says nothing about losses.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Catalog(#[from] CatalogError),
    #[error("{0}")]
    Order(String),
    #[error("{0}")]
    Layout(String),
}

/// Audits `scope`: reads both sides whole, and reports.
pub async fn audit(
    catalog: &Catalog,
    storage: Arc<dyn Storage>,
    layout: &KeyLayout,
    incidents: Vec<Arc<Incident>>,
    opts: Options,
) -> Result<Report, AuditError> {
    let started_at = Timestamp::now();
    let order = layout.audit_order().map_err(AuditError::Layout)?;
    let scope = opts.scope.clone();
    let (prefix, check_unknown) = listing(layout, order, &scope);

    let (rec_tx, mut rec_rx) = mpsc::channel::<Result<Recording, AuditError>>(AHEAD);
    let reader = {
        let (catalog, scope, progress) = (catalog.clone(), scope.clone(), opts.progress.clone());
        tokio::spawn(async move {
            let mut cursor = None;
            let mut read = 0u64;
            loop {
                let page = match catalog
                    .page_in_key_order(order, &scope, cursor.as_ref(), PAGE)
                    .await
                {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = rec_tx.send(Err(e.into())).await;
                        return;
                    }
                };
                let Some(last) = page.last() else { return };
                cursor = Some(order.cursor(last));
                let full = page.len() == PAGE as usize;
                read += page.len() as u64;
                for rec in page {
                    if rec_tx.send(Ok(rec)).await.is_err() {
                        return;
                    }
                }
                if let Some(p) = &progress {
                    p(read);
                }
                if !full {
                    return;
                }
            }
        })
    };
    let (obj_tx, mut obj_rx) = mpsc::channel::<Result<Listed, AuditError>>(AHEAD);
    let lister = tokio::spawn(async move {
        use futures_util::StreamExt;
        let mut objects = storage.list(&prefix);
        while let Some(item) = objects.next().await {
            let stop = item.is_err();
            if obj_tx.send(item.map_err(Into::into)).await.is_err() || stop {
                return;
            }
        }
    });

    let layout = layout.clone();
    let merged = tokio::task::spawn_blocking(move || {
        let ctx = Context {
            layout: &layout,
            incidents: &incidents,
            check_unknown,
        };
        let mut findings = Vec::new();
        let counts = reconcile(
            std::iter::from_fn(|| rec_rx.blocking_recv()),
            std::iter::from_fn(|| obj_rx.blocking_recv()),
            &ctx,
            |f| findings.push(f),
        );
        counts.map(|c| (c, findings))
    })
    .await
    .map_err(|e| AuditError::Order(format!("the merge failed: {e}")))?;
    reader.abort();
    lister.abort();
    let (counts, findings) = merged.map_err(|e| match e {
        MergeError::Side(e) => e,
        MergeError::Order(why) => AuditError::Order(why),
    })?;

    let bursts = find_bursts(unexplained_losses(&findings), opts.burst);
    Ok(Report {
        summary: Summary {
            started_at,
            finished_at: Timestamp::now(),
            scope: describe(&scope),
            checked_unknown: check_unknown,
            counts,
            bursts,
        },
        findings,
    })
}

/// Where to list, and whether objects outside the catalog side can be told
/// apart from objects of other recordings: only when the listing holds
/// exactly the scope's keys (all of them, or one account's under a layout
/// that starts with the account).
fn listing(layout: &KeyLayout, order: KeyOrder, scope: &Scope) -> (String, bool) {
    let timed = scope.from.is_some() || scope.to.is_some();
    match (&scope.account, order) {
        (None, _) => (layout.static_prefix().to_owned(), !timed),
        (Some(account), KeyOrder::AccountThenSid) => {
            let t = layout.as_str();
            let sid_at = t.find("{recording_sid}").unwrap_or(t.len());
            (
                t[..sid_at].replace("{account_sid}", account.as_str()),
                !timed,
            )
        }
        (Some(_), _) => (layout.static_prefix().to_owned(), false),
    }
}

fn unexplained_losses(
    findings: &[Finding],
) -> Vec<(Timestamp, crate::sid::AccountSid, crate::sid::RecordingSid)> {
    findings
        .iter()
        .filter(|f| f.kind == Kind::MissingUnexplained)
        .filter_map(|f| Some((f.end_time?, f.account_sid.clone()?, f.sid.clone()?)))
        .collect()
}

fn describe(scope: &Scope) -> String {
    let mut parts = Vec::new();
    match &scope.account {
        Some(a) => parts.push(format!("account {a}")),
        None => parts.push("all accounts".to_owned()),
    }
    if let Some(t) = scope.from {
        parts.push(format!("recordings started from {t}"));
    }
    if let Some(t) = scope.to {
        parts.push(format!("before {t}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_follows_the_scope() {
        let layout = KeyLayout::default();
        let order = layout.audit_order().unwrap();
        let a: crate::sid::AccountSid = "AC00000000000000000000000000000001".parse().unwrap();
        let all = listing(&layout, order, &Scope::default());
        assert_eq!(all, (String::new(), true));
        let one = Scope {
            account: Some(a.clone()),
            ..Scope::default()
        };
        assert_eq!(listing(&layout, order, &one), (format!("{a}/"), true));
        let timed = Scope {
            from: Some("2017-05-09T00:00:00Z".parse().unwrap()),
            ..one
        };
        assert!(!listing(&layout, order, &timed).1);
        let flat: KeyLayout = "r/{recording_sid}/{account_sid}.{ext}".parse().unwrap();
        let only_a = Scope {
            account: Some(a),
            ..Scope::default()
        };
        let (prefix, unknown) = listing(&flat, flat.audit_order().unwrap(), &only_a);
        assert_eq!((prefix.as_str(), unknown), ("r/", false));
    }
}
