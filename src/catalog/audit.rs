//! What the loss audit reads from the catalog: recordings in the order of
//! their storage keys, page by page (keyset pagination: flat memory and
//! one index range per page, however large the catalog), and the summaries
//! of past audits.

use jiff::Timestamp;

use super::{Catalog, CatalogError, Recording, db_time};
use crate::sid::AccountSid;

/// Which columns sort recordings as their keys sort: the key layout's
/// placeholders in the order they appear (see `KeyLayout::audit_order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    /// `{account_sid}…{recording_sid}…{ext}` (the default layout).
    AccountThenSid,
    /// `{recording_sid}…{account_sid}…{ext}`.
    SidThenAccount,
    /// `{recording_sid}…{ext}`.
    Sid,
}

impl KeyOrder {
    fn columns(self) -> &'static str {
        match self {
            KeyOrder::AccountThenSid => "account_sid, sid",
            KeyOrder::SidThenAccount | KeyOrder::Sid => "sid, account_sid",
        }
    }

    /// Where the next page starts: strictly after this recording.
    pub fn cursor(self, r: &Recording) -> (String, String) {
        match self {
            KeyOrder::AccountThenSid => (r.account_sid.to_string(), r.sid.to_string()),
            KeyOrder::SidThenAccount | KeyOrder::Sid => {
                (r.sid.to_string(), r.account_sid.to_string())
            }
        }
    }
}

/// Which recordings an audit covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub account: Option<AccountSid>,
    /// Recordings that started at or after this instant…
    pub from: Option<Timestamp>,
    /// …and before this one.
    pub to: Option<Timestamp>,
}

impl Scope {
    /// The SQL conditions and their values, numbered from `$1`.
    fn conditions(&self) -> (Vec<String>, Vec<String>) {
        let mut conds = Vec::new();
        let mut binds = Vec::new();
        if let Some(a) = &self.account {
            binds.push(a.to_string());
            conds.push(format!("account_sid = ${}", binds.len()));
        }
        if let Some(t) = self.from {
            binds.push(db_time(t));
            conds.push(format!("start_time >= ${}", binds.len()));
        }
        if let Some(t) = self.to {
            binds.push(db_time(t));
            conds.push(format!("start_time < ${}", binds.len()));
        }
        (conds, binds)
    }
}

impl Catalog {
    /// Up to `limit` recordings in `scope`, in key order, after `cursor`.
    pub async fn page_in_key_order(
        &self,
        order: KeyOrder,
        scope: &Scope,
        cursor: Option<&(String, String)>,
        limit: u32,
    ) -> Result<Vec<Recording>, CatalogError> {
        let (mut conds, mut binds) = scope.conditions();
        let columns = order.columns();
        if let Some((a, b)) = cursor {
            binds.push(a.clone());
            binds.push(b.clone());
            conds.push(format!(
                "({columns}) > (${}, ${})",
                binds.len() - 1,
                binds.len()
            ));
        }
        if conds.is_empty() {
            conds.push("1 = 1".into());
        }
        let filter = format!("{} ORDER BY {columns} LIMIT {limit}", conds.join(" AND "));
        let binds: Vec<&str> = binds.iter().map(String::as_str).collect();
        self.select(&filter, &binds).await
    }

    /// How many recordings an audit of `scope` reads (for its progress).
    pub async fn count_in_scope(&self, scope: &Scope) -> Result<u64, CatalogError> {
        let (conds, binds) = scope.conditions();
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        let sql = format!("SELECT COUNT(*) FROM recordings{filter}");
        let (n,): (i64,) = with_pool!(self, |pool| {
            let mut q = sqlx::query_as(&sql);
            for b in &binds {
                q = q.bind(b.as_str());
            }
            q.fetch_one(pool).await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Keeps the summary of one audit run (JSON), and at most `keep` runs.
    pub async fn save_audit_run(
        &self,
        started: Timestamp,
        finished: Timestamp,
        summary_json: &str,
        keep: u32,
    ) -> Result<(), CatalogError> {
        let (started, finished) = (db_time(started), db_time(finished));
        let id = format!("{started}-{}", uuid::Uuid::new_v4().simple());
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO audit_runs (id, started_at, finished_at, summary) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(&started)
            .bind(&finished)
            .bind(summary_json)
            .execute(pool)
            .await?;
            sqlx::query(&format!(
                "DELETE FROM audit_runs WHERE id NOT IN \
                 (SELECT id FROM audit_runs ORDER BY id DESC LIMIT {keep})"
            ))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The summaries of the latest audit runs (JSON), newest first.
    pub async fn audit_runs(&self, limit: u32) -> Result<Vec<String>, CatalogError> {
        let sql = format!("SELECT summary FROM audit_runs ORDER BY id DESC LIMIT {limit}");
        let rows: Vec<(String,)> =
            with_pool!(self, |pool| { sqlx::query_as(&sql).fetch_all(pool).await? });
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_conditions_are_numbered_in_order() {
        let scope = Scope {
            account: Some("AC00000000000000000000000000000001".parse().unwrap()),
            from: Some("2017-05-09T00:00:00Z".parse().unwrap()),
            to: None,
        };
        let (conds, binds) = scope.conditions();
        assert_eq!(conds, ["account_sid = $1", "start_time >= $2"]);
        assert_eq!(binds[1], "2017-05-09T00:00:00Z");
        assert_eq!(Scope::default().conditions().0.len(), 0);
    }
}
