//! The catalog: what is known about each recording (Twilio's Recording
//! resource), in SQLite through `sqlx`, with embedded migrations.

use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};

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
    #[error("catalog row {sid}: {why}")]
    Corrupt { sid: String, why: String },
}

/// The catalog database (cheap to clone: a pool handle).
#[derive(Clone, Debug)]
pub struct Catalog {
    pool: SqlitePool,
}

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
/// nothing.
macro_rules! upsert_tail {
    () => {
        "
    ON CONFLICT (sid) DO UPDATE SET
      account_sid = excluded.account_sid, call_sid = excluded.call_sid,
      start_time = excluded.start_time, duration = excluded.duration,
      channels = excluded.channels, source = excluded.source,
      track = excluded.track, status = excluded.status,
      error_code = excluded.error_code, formats = excluded.formats,
      deleted_at = excluded.deleted_at, deleted_reason = excluded.deleted_reason,
      end_time = excluded.end_time, date_updated = excluded.date_updated
    WHERE recordings.account_sid IS NOT excluded.account_sid
       OR recordings.call_sid IS NOT excluded.call_sid
       OR recordings.start_time IS NOT excluded.start_time
       OR recordings.duration IS NOT excluded.duration
       OR recordings.channels IS NOT excluded.channels
       OR recordings.source IS NOT excluded.source
       OR recordings.track IS NOT excluded.track
       OR recordings.status IS NOT excluded.status
       OR recordings.error_code IS NOT excluded.error_code
       OR recordings.formats IS NOT excluded.formats
       OR recordings.deleted_at IS NOT excluded.deleted_at
       OR recordings.deleted_reason IS NOT excluded.deleted_reason"
    };
}

/// Inserts or replaces one recording (its columns in `COLUMNS` order, then
/// `end_time`, `date_updated`).
const UPSERT: &str = concat!(
    "INSERT INTO recordings
      (sid, account_sid, call_sid, start_time, duration, channels, source, track, status,
       error_code, formats, deleted_at, deleted_reason, end_time, date_updated)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    upsert_tail!()
);

/// The insert of [`UPSERT`] without its values, for multi-row statements.
const UPSERT_HEAD: &str = "INSERT INTO recordings
      (sid, account_sid, call_sid, start_time, duration, channels, source, track, status,
       error_code, formats, deleted_at, deleted_reason, end_time, date_updated) ";

/// The conflict clause of [`UPSERT`].
const UPSERT_TAIL: &str = upsert_tail!();

type SqliteQuery =
    sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'static>>;

/// The statement that inserts or replaces one recording.
fn upsert_query(r: &Recording) -> SqliteQuery {
    let formats: Vec<&str> = r.formats.iter().map(|f| f.ext()).collect();
    sqlx::query(UPSERT)
        .bind(r.sid.to_string())
        .bind(r.account_sid.to_string())
        .bind(r.call_sid.as_ref().map(ToString::to_string))
        .bind(r.start_time.map(db_time))
        .bind(r.duration.map(i64::from))
        .bind(r.channels.map(i64::from))
        .bind(r.source.clone())
        .bind(r.track.clone())
        .bind(r.status.as_str())
        .bind(r.error_code.map(i64::from))
        .bind(formats.join(","))
        .bind(r.deleted_at.map(db_time))
        .bind(r.deleted_reason.clone())
        .bind(r.end_time().map(db_time))
        .bind(db_time(Timestamp::now()))
}

impl Catalog {
    /// Opens (creating if needed) and migrates the catalog at `url`.
    pub async fn connect(url: &str) -> Result<Self, CatalogError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            // WAL lets readers go on while ingest writes; NORMAL is durable
            // across process crashes, which is what a 2xx promises.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The recording, if the catalog knows it.
    pub async fn get(&self, sid: &RecordingSid) -> Result<Option<Recording>, CatalogError> {
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM recordings WHERE sid = ?"))
                .bind(sid.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(Recording::try_from).transpose()
    }

    /// Inserts or replaces a recording.
    pub async fn upsert(&self, r: &Recording) -> Result<(), CatalogError> {
        upsert_query(r).execute(&self.pool).await?;
        Ok(())
    }

    /// Inserts or replaces many recordings in one transaction, several
    /// hundred rows per statement (a statement is a round trip to SQLite's
    /// worker thread); returns how many rows were new or changed.
    pub async fn upsert_many(&self, recs: &[Recording]) -> Result<usize, CatalogError> {
        if recs.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let mut changed = 0;
        let now = db_time(Timestamp::now());
        // 15 values a row; SQLite takes up to 32,766 per statement.
        for chunk in recs.chunks(500) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(UPSERT_HEAD);
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
                    .push_bind(r.status.as_str())
                    .push_bind(r.error_code.map(i64::from))
                    .push_bind(formats.join(","))
                    .push_bind(r.deleted_at.map(db_time))
                    .push_bind(r.deleted_reason.clone())
                    .push_bind(r.end_time().map(db_time))
                    .push_bind(now.clone());
            });
            q.push(UPSERT_TAIL);
            changed += q.build().execute(&mut *tx).await?.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn select(&self, filter: &str, binds: &[&str]) -> Result<Vec<Recording>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM recordings WHERE {filter}");
        let mut q = sqlx::query_as::<_, Row>(&sql);
        for b in binds {
            q = q.bind(*b);
        }
        q.fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(Recording::try_from)
            .collect()
    }

    /// The recordings of one call, oldest first.
    pub async fn by_call(&self, call: &CallSid) -> Result<Vec<Recording>, CatalogError> {
        self.select("call_sid = ? ORDER BY start_time, sid", &[call.as_str()])
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
            "account_sid = ? AND start_time >= ? AND start_time < ? ORDER BY start_time, sid",
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
            TimeField::Start => "start_time >= ? AND start_time <= ? ORDER BY start_time, sid",
            TimeField::End => "end_time >= ? AND end_time <= ? ORDER BY end_time, sid",
        };
        self.select(filter, &[&from, &to]).await
    }

    /// Admin-created incidents, as stored JSON.
    pub async fn incident_specs(&self) -> Result<Vec<String>, CatalogError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT spec FROM incidents ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    /// Stores (inserts or replaces) an admin incident.
    pub async fn save_incident_spec(&self, id: &str, spec_json: &str) -> Result<(), CatalogError> {
        sqlx::query(
            "INSERT INTO incidents (id, spec, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(spec_json)
        .bind(db_time(Timestamp::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One account.
    pub async fn account(&self, sid: &AccountSid) -> Result<Option<Account>, CatalogError> {
        type AccountRow = (String, Option<String>, Option<String>, Option<String>);
        let row: Option<AccountRow> =
            sqlx::query_as("SELECT sid, name, auth_token, time_zone FROM accounts WHERE sid = ?")
                .bind(sid.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(_, name, token, tz)| Account {
            sid: sid.clone(),
            name,
            auth_token: token.map(crate::config::Secret::new),
            time_zone: tz,
        }))
    }

    /// Creates or replaces an account.
    pub async fn upsert_account(&self, a: &Account) -> Result<(), CatalogError> {
        sqlx::query(
            "INSERT INTO accounts (sid, name, auth_token, time_zone, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (sid) DO UPDATE SET name = excluded.name, auth_token = excluded.auth_token,
               time_zone = excluded.time_zone, updated_at = excluded.updated_at",
        )
        .bind(a.sid.as_str())
        .bind(a.name.as_deref())
        .bind(a.auth_token.as_ref().map(|t| t.expose().to_owned()))
        .bind(a.time_zone.as_deref())
        .bind(db_time(Timestamp::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a new key (its hash only).
    pub async fn create_key(
        &self,
        id: &str,
        account: &AccountSid,
        secret_hash: &str,
        read_only: bool,
        label: Option<&str>,
    ) -> Result<(), CatalogError> {
        sqlx::query(
            "INSERT INTO api_keys (id, account_sid, secret_hash, read_only, label, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(account.as_str())
        .bind(secret_hash)
        .bind(read_only)
        .bind(label)
        .bind(db_time(Timestamp::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live (not revoked) key with this secret hash.
    pub async fn key_by_hash(&self, secret_hash: &str) -> Result<Option<ApiKey>, CatalogError> {
        let keys = self
            .keys_where("secret_hash = ? AND revoked_at IS NULL", secret_hash)
            .await?;
        Ok(keys.into_iter().next())
    }

    /// Keys, of one account or of all.
    pub async fn keys(&self, account: Option<&AccountSid>) -> Result<Vec<ApiKey>, CatalogError> {
        match account {
            Some(a) => {
                self.keys_where("account_sid = ? ORDER BY created_at, id", a.as_str())
                    .await
            }
            None => {
                self.keys_where("? = '' ORDER BY account_sid, created_at, id", "")
                    .await
            }
        }
    }

    async fn keys_where(&self, filter: &str, bind: &str) -> Result<Vec<ApiKey>, CatalogError> {
        type KeyRow = (String, String, bool, Option<String>, String, Option<String>);
        let rows: Vec<KeyRow> = sqlx::query_as(&format!(
            "SELECT id, account_sid, read_only, label, created_at, revoked_at FROM api_keys WHERE {filter}"
        ))
        .bind(bind)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, account, read_only, label, created_at, revoked_at)| {
                Ok(ApiKey {
                    account_sid: account.parse().map_err(|e| CatalogError::Corrupt {
                        sid: id.clone(),
                        why: format!("{e}"),
                    })?,
                    id,
                    read_only,
                    label,
                    created_at,
                    revoked_at,
                })
            })
            .collect()
    }

    /// Revokes a key; `false` when there is no such live key.
    pub async fn revoke_key(&self, id: &str) -> Result<bool, CatalogError> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(db_time(Timestamp::now()))
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A trivial query, for readiness.
    pub async fn ping(&self) -> Result<(), CatalogError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
