//! The catalog: what is known about each recording (Twilio's Recording
//! resource), through `sqlx` with embedded migrations, in SQLite or
//! PostgreSQL (see [`db`]); callers cannot tell which.

use std::collections::HashSet;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::keys::Format;
use crate::sid::{AccountSid, CallSid, RecordingSid};

/// Twilio's recording statuses, plus `deleted` for retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingStatus {
    InProgress,
    Processing,
    Completed,
    Absent,
    Failed,
    Deleted,
}

impl RecordingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in-progress",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Absent => "absent",
            Self::Failed => "failed",
            Self::Deleted => "deleted",
        }
    }
}

impl FromStr for RecordingStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "in-progress" => Self::InProgress,
            "processing" => Self::Processing,
            "completed" => Self::Completed,
            "absent" => Self::Absent,
            "failed" => Self::Failed,
            "deleted" => Self::Deleted,
            other => return Err(format!("unknown recording status {other:?}")),
        })
    }
}

/// One recording as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    pub sid: RecordingSid,
    pub account_sid: AccountSid,
    pub call_sid: Option<CallSid>,
    pub start_time: Option<Timestamp>,
    /// Seconds.
    pub duration: Option<u32>,
    pub channels: Option<u8>,
    pub source: Option<String>,
    pub track: Option<String>,
    pub status: RecordingStatus,
    pub error_code: Option<u32>,
    pub formats: Vec<Format>,
    pub deleted_at: Option<Timestamp>,
    pub deleted_reason: Option<String>,
}

/// An account (tenant) as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub sid: AccountSid,
    pub name: Option<String>,
    /// The token Twilio signs this account's webhooks with.
    pub auth_token: Option<crate::config::Secret>,
    /// IANA zone for the account's pages and exports.
    pub time_zone: Option<String>,
}

/// An API key as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub account_sid: AccountSid,
    pub read_only: bool,
    pub label: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// Catalog failures. A catalog that cannot answer is transient, like
/// storage: it must never turn into a verdict about a recording.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("catalog migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("catalog URL {0}")]
    Url(String),
    #[error("cannot reach the catalog database: {0}")]
    Unreachable(String),
    #[error("catalog row {sid}: {why}")]
    Corrupt { sid: String, why: String },
}

/// The catalog database (cheap to clone: a pool handle).
#[derive(Clone, Debug)]
pub struct Catalog {
    pool: db::Pool,
}

/// Runs the same code on whichever pool the catalog has, binding it to
/// `$pool`: the SQL is written once and type-checked against both drivers.
macro_rules! with_pool {
    ($catalog:expr, |$pool:ident| $body:expr) => {
        match &$catalog.pool {
            $crate::catalog::db::Pool::Sqlite($pool) => $body,
            $crate::catalog::db::Pool::Postgres($pool) => $body,
        }
    };
}

mod accounts;
mod audit;
mod db;
mod notify;
pub use audit::{KeyOrder, Scope};
pub use db::{Dialect, redact_url};
pub use notify::{CHANNEL, Change};

#[derive(FromRow)]
struct Row {
    sid: String,
    account_sid: String,
    call_sid: Option<String>,
    start_time: Option<String>,
    duration: Option<i64>,
    channels: Option<i64>,
    source: Option<String>,
    track: Option<String>,
    status: String,
    error_code: Option<i64>,
    formats: String,
    deleted_at: Option<String>,
    deleted_reason: Option<String>,
}

impl TryFrom<Row> for Recording {
    type Error = CatalogError;

    fn try_from(r: Row) -> Result<Self, CatalogError> {
        let sid = r.sid.clone();
        let corrupt = |why: String| CatalogError::Corrupt {
            sid: sid.clone(),
            why,
        };
        let ts = |s: Option<String>| -> Result<Option<Timestamp>, CatalogError> {
            s.map(|s| s.parse().map_err(|e| corrupt(format!("time {s:?}: {e}"))))
                .transpose()
        };
        Ok(Recording {
            sid: r.sid.parse().map_err(|e| corrupt(format!("{e}")))?,
            account_sid: r.account_sid.parse().map_err(|e| corrupt(format!("{e}")))?,
            call_sid: r
                .call_sid
                .map(|c| c.parse())
                .transpose()
                .map_err(|e| corrupt(format!("{e}")))?,
            start_time: ts(r.start_time)?,
            duration: r.duration.and_then(|d| u32::try_from(d).ok()),
            channels: r.channels.and_then(|c| u8::try_from(c).ok()),
            source: r.source,
            track: r.track,
            status: r.status.parse().map_err(corrupt)?,
            error_code: r.error_code.and_then(|c| u32::try_from(c).ok()),
            formats: r
                .formats
                .split(',')
                .filter(|f| !f.is_empty())
                .map(|f| Format::from_ext(f).ok_or_else(|| corrupt(format!("format {f:?}"))))
                .collect::<Result<_, _>>()?,
            deleted_at: ts(r.deleted_at)?,
            deleted_reason: r.deleted_reason,
        })
    }
}

impl Recording {
    /// When the recorded call ended: start + duration.
    pub fn end_time(&self) -> Option<Timestamp> {
        let start = self.start_time?;
        let secs = i64::from(self.duration?);
        start
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .ok()
    }
}

/// Which time of a recording a window query compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeField {
    Start,
    End,
}

/// Times are stored as fixed-width RFC 3339 UTC with whole seconds, so that
/// text order is time order (a fractional `…00.5Z` would sort before `…00Z`).
pub(crate) fn db_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

const COLUMNS: &str = "sid, account_sid, call_sid, start_time, duration, channels, source, \
                       track, status, error_code, formats, deleted_at, deleted_reason";

/// What an upsert does on a conflict: update, unless nothing would change
/// (`date_updated` included), so a repeated import or webhook changes
/// nothing. `IS DISTINCT FROM` is null-safe inequality in both dialects
/// (SQLite's own spelling is `IS NOT`).
///
/// SECURITY: a recording's account never changes once it is known. The
/// clause neither sets `account_sid` nor touches a row of another account,
/// so no write path (API, import, callbacks, another replica racing this
/// one) can move a recording between accounts; [`Catalog::upsert_many`]
/// also reports such rows, but this guard is what holds under races.
macro_rules! upsert_tail {
    () => {
        "
    ON CONFLICT (sid) DO UPDATE SET
      call_sid = excluded.call_sid,
      start_time = excluded.start_time, duration = excluded.duration,
      channels = excluded.channels, source = excluded.source,
      track = excluded.track, status = excluded.status,
      error_code = excluded.error_code, formats = excluded.formats,
      deleted_at = excluded.deleted_at, deleted_reason = excluded.deleted_reason,
      end_time = excluded.end_time, date_updated = excluded.date_updated
    WHERE recordings.account_sid = excluded.account_sid AND (
          recordings.call_sid IS DISTINCT FROM excluded.call_sid
       OR recordings.start_time IS DISTINCT FROM excluded.start_time
       OR recordings.duration IS DISTINCT FROM excluded.duration
       OR recordings.channels IS DISTINCT FROM excluded.channels
       OR recordings.source IS DISTINCT FROM excluded.source
       OR recordings.track IS DISTINCT FROM excluded.track
       OR recordings.status IS DISTINCT FROM excluded.status
       OR recordings.error_code IS DISTINCT FROM excluded.error_code
       OR recordings.formats IS DISTINCT FROM excluded.formats
       OR recordings.deleted_at IS DISTINCT FROM excluded.deleted_at
       OR recordings.deleted_reason IS DISTINCT FROM excluded.deleted_reason)"
    };
}

/// The insert of a recording upsert, before its rows of values.
const UPSERT_HEAD: &str = "INSERT INTO recordings
      (sid, account_sid, call_sid, start_time, duration, channels, source, track, status,
       error_code, formats, deleted_at, deleted_reason, end_time, date_updated) ";

/// The conflict clause of a recording upsert.
const UPSERT_TAIL: &str = upsert_tail!();

impl Catalog {
    /// Opens (creating a SQLite file if needed) and migrates the catalog
    /// at `url`: `sqlite://PATH` or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Self, CatalogError> {
        Ok(Self {
            pool: db::Pool::connect(url).await?,
        })
    }

    /// Which database this catalog is in.
    pub fn dialect(&self) -> Dialect {
        self.pool.dialect()
    }

    /// The recording, if the catalog knows it.
    pub async fn get(&self, sid: &RecordingSid) -> Result<Option<Recording>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM recordings WHERE sid = $1");
        let row: Option<Row> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(sid.as_str())
                .fetch_optional(pool)
                .await?
        });
        row.map(Recording::try_from).transpose()
    }

    /// Inserts or replaces a recording of its own account (see
    /// [`upsert_many`](Self::upsert_many)).
    pub async fn upsert(&self, r: &Recording) -> Result<Upserted, CatalogError> {
        self.upsert_many(std::slice::from_ref(r)).await
    }

    /// Inserts or replaces many recordings in one transaction, several
    /// hundred rows per statement (a statement is a round trip to SQLite's
    /// worker thread or to PostgreSQL). Rows apply in order: a later row
    /// for the same sid wins. A row whose sid the catalog (or an earlier
    /// row of the batch) already gives to another account changes nothing
    /// and is reported in [`Upserted::foreign`].
    pub async fn upsert_many(&self, recs: &[Recording]) -> Result<Upserted, CatalogError> {
        if recs.is_empty() {
            return Ok(Upserted::default());
        }
        let now = db_time(Timestamp::now());
        let (changed, foreign) = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut owners = std::collections::HashMap::new();
            for chunk in recs.chunks(500) {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT sid, account_sid FROM recordings WHERE sid IN ",
                );
                q.push_tuples(chunk, |mut b, r| {
                    b.push_bind(r.sid.to_string());
                });
                let rows: Vec<(String, String)> = q.build_query_as().fetch_all(&mut *tx).await?;
                owners.extend(rows);
            }
            let (own, foreign) = split_foreign(recs, owners);
            let mut changed = 0;
            // A batch of foreign rows only has nothing left to write.
            for chunk in statements(&own).into_iter().filter(|c| !c.is_empty()) {
                let mut q = sqlx::QueryBuilder::new(UPSERT_HEAD);
                push_rows(&mut q, chunk, &now);
                q.push(UPSERT_TAIL);
                changed += q.build().execute(&mut *tx).await?.rows_affected() as usize;
            }
            tx.commit().await?;
            (changed, foreign)
        });
        if changed > 0 {
            let mut sids: Vec<RecordingSid> = recs.iter().map(|r| r.sid.clone()).collect();
            sids.dedup();
            self.announce(Change::Recordings(sids)).await;
        }
        Ok(Upserted { changed, foreign })
    }

    /// The PostgreSQL pool, for listening to other replicas' changes.
    pub(crate) fn pg_pool(&self) -> Option<&sqlx::PgPool> {
        match &self.pool {
            db::Pool::Postgres(p) => Some(p),
            db::Pool::Sqlite(_) => None,
        }
    }

    async fn select(&self, filter: &str, binds: &[&str]) -> Result<Vec<Recording>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM recordings WHERE {filter}");
        let rows: Vec<Row> = with_pool!(self, |pool| {
            let mut q = sqlx::query_as(&sql);
            for b in binds {
                q = q.bind(*b);
            }
            q.fetch_all(pool).await?
        });
        rows.into_iter().map(Recording::try_from).collect()
    }

    /// The recordings of one call, oldest first.
    pub async fn by_call(&self, call: &CallSid) -> Result<Vec<Recording>, CatalogError> {
        self.select("call_sid = $1 ORDER BY start_time, sid", &[call.as_str()])
            .await
    }

    /// An account's recordings that started in `[from, to)`, oldest first.
    pub async fn by_account_between(
        &self,
        account: &AccountSid,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Recording>, CatalogError> {
        let (from, to) = (db_time(from), db_time(to));
        self.select(
            "account_sid = $1 AND start_time >= $2 AND start_time < $3 ORDER BY start_time, sid",
            &[account.as_str(), &from, &to],
        )
        .await
    }

    /// Recordings whose start or end lies in `[from, to]` (both inclusive),
    /// oldest first: the candidates of an incident window.
    pub async fn in_window(
        &self,
        field: TimeField,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Recording>, CatalogError> {
        let (from, to) = (db_time(from), db_time(to));
        let filter = match field {
            TimeField::Start => "start_time >= $1 AND start_time <= $2 ORDER BY start_time, sid",
            TimeField::End => "end_time >= $1 AND end_time <= $2 ORDER BY end_time, sid",
        };
        self.select(filter, &[&from, &to]).await
    }

    /// Admin-created incidents, as stored JSON.
    pub async fn incident_specs(&self) -> Result<Vec<String>, CatalogError> {
        let rows: Vec<(String,)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT spec FROM incidents ORDER BY id")
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    /// Stores (inserts or replaces) an admin incident.
    pub async fn save_incident_spec(&self, id: &str, spec_json: &str) -> Result<(), CatalogError> {
        let now = db_time(Timestamp::now());
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO incidents (id, spec, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
            )
            .bind(id)
            .bind(spec_json)
            .bind(&now)
            .execute(pool)
            .await?;
        });
        self.announce(Change::Incidents).await;
        Ok(())
    }

    /// A trivial query, for readiness.
    pub async fn ping(&self) -> Result<(), CatalogError> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }
}

/// What an upsert did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upserted {
    /// Rows that were new or changed.
    pub changed: usize,
    /// Sids refused because they belong to another account, in order.
    pub foreign: Vec<RecordingSid>,
}

/// Keeps the rows whose sid is new or already of the row's account;
/// `owners` maps the batch's known sids to their accounts. A new sid is
/// owned by the first row that names it, so a later row of the batch with
/// another account is foreign too.
fn split_foreign(
    recs: &[Recording],
    mut owners: std::collections::HashMap<String, String>,
) -> (Vec<Recording>, Vec<RecordingSid>) {
    let (mut own, mut foreign) = (Vec::with_capacity(recs.len()), Vec::new());
    for r in recs {
        let owner = owners
            .entry(r.sid.to_string())
            .or_insert_with(|| r.account_sid.to_string());
        if *owner == r.account_sid.as_str() {
            own.push(r.clone());
        } else {
            foreign.push(r.sid.clone());
        }
    }
    (own, foreign)
}

/// Splits rows into statements of at most 500 rows (15 values a row:
/// SQLite takes up to 32,766 per statement, PostgreSQL 65,535), starting a
/// new statement where a sid repeats: PostgreSQL refuses to update one row
/// twice in one statement, and applying them in turn is what SQLite does.
fn statements(recs: &[Recording]) -> Vec<&[Recording]> {
    let mut out = Vec::new();
    let (mut start, mut seen) = (0, HashSet::new());
    for (i, r) in recs.iter().enumerate() {
        if i - start == 500 || !seen.insert(&r.sid) {
            out.push(&recs[start..i]);
            start = i;
            seen.clear();
            seen.insert(&r.sid);
        }
    }
    out.push(&recs[start..]);
    out
}

/// The `VALUES` rows of an upsert, in the columns of [`UPSERT_HEAD`].
fn push_rows<'a, DB>(q: &mut sqlx::QueryBuilder<'a, DB>, chunk: &[Recording], now: &str)
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push_values(chunk, |mut b, r| {
        let formats: Vec<&str> = r.formats.iter().map(|f| f.ext()).collect();
        b.push_bind(r.sid.to_string())
            .push_bind(r.account_sid.to_string())
            .push_bind(r.call_sid.as_ref().map(ToString::to_string))
            .push_bind(r.start_time.map(db_time))
            .push_bind(r.duration.map(i64::from))
            .push_bind(r.channels.map(i64::from))
            .push_bind(r.source.clone())
            .push_bind(r.track.clone())
            .push_bind(r.status.as_str().to_owned())
            .push_bind(r.error_code.map(i64::from))
            .push_bind(formats.join(","))
            .push_bind(r.deleted_at.map(db_time))
            .push_bind(r.deleted_reason.clone())
            .push_bind(r.end_time().map(db_time))
            .push_bind(now.to_owned());
    });
}

#[cfg(test)]
mod tests;
