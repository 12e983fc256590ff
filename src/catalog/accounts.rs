//! Accounts and their API keys in the catalog database.

use jiff::Timestamp;

use super::{Account, ApiKey, Catalog, CatalogError, db_time};
use crate::sid::AccountSid;

impl Catalog {
    /// One account.
    pub async fn account(&self, sid: &AccountSid) -> Result<Option<Account>, CatalogError> {
        type AccountRow = (String, Option<String>, Option<String>, Option<String>);
        let row: Option<AccountRow> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT sid, name, auth_token, time_zone FROM accounts WHERE sid = $1")
                .bind(sid.as_str())
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(_, name, token, tz)| Account {
            sid: sid.clone(),
            name,
            auth_token: token.map(crate::config::Secret::new),
            time_zone: tz,
        }))
    }

    /// Creates or replaces an account.
    pub async fn upsert_account(&self, a: &Account) -> Result<(), CatalogError> {
        let now = db_time(Timestamp::now());
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO accounts (sid, name, auth_token, time_zone, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (sid) DO UPDATE SET name = excluded.name,
                   auth_token = excluded.auth_token, time_zone = excluded.time_zone,
                   updated_at = excluded.updated_at",
            )
            .bind(a.sid.as_str())
            .bind(a.name.as_deref())
            .bind(a.auth_token.as_ref().map(|t| t.expose()))
            .bind(a.time_zone.as_deref())
            .bind(&now)
            .execute(pool)
            .await?;
        });
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
        let now = db_time(Timestamp::now());
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO api_keys (id, account_sid, secret_hash, read_only, label, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(account.as_str())
            .bind(secret_hash)
            .bind(read_only)
            .bind(label)
            .bind(&now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The live (not revoked) key with this secret hash.
    pub async fn key_by_hash(&self, secret_hash: &str) -> Result<Option<ApiKey>, CatalogError> {
        let keys = self
            .keys_where("secret_hash = $1 AND revoked_at IS NULL", secret_hash)
            .await?;
        Ok(keys.into_iter().next())
    }

    /// Keys, of one account or of all.
    pub async fn keys(&self, account: Option<&AccountSid>) -> Result<Vec<ApiKey>, CatalogError> {
        match account {
            Some(a) => {
                self.keys_where("account_sid = $1 ORDER BY created_at, id", a.as_str())
                    .await
            }
            None => {
                // Every key: the filter still binds its one parameter.
                self.keys_where("$1 = '' ORDER BY account_sid, created_at, id", "")
                    .await
            }
        }
    }

    async fn keys_where(&self, filter: &str, bind: &str) -> Result<Vec<ApiKey>, CatalogError> {
        type KeyRow = (String, String, bool, Option<String>, String, Option<String>);
        let sql = format!(
            "SELECT id, account_sid, read_only, label, created_at, revoked_at FROM api_keys WHERE {filter}"
        );
        let rows: Vec<KeyRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(bind).fetch_all(pool).await?
        });
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
        let now = db_time(Timestamp::now());
        let revoked = with_pool!(self, |pool| {
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(&now)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if revoked > 0 {
            self.announce(super::Change::Keys).await;
        }
        Ok(revoked > 0)
    }
}
