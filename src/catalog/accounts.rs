//! Accounts and their API keys in the catalog database.

use jiff::Timestamp;

use super::{Account, ApiKey, Catalog, CatalogError, db_time};
use crate::sid::AccountSid;

impl Catalog {
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
}
