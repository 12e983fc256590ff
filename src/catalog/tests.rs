//! The catalog on both databases: every test runs on SQLite (a temp file)
//! and on a real PostgreSQL (a database of its own on the shared test
//! server), and must see the same answers.

use super::*;
use crate::sid::AccountSid;

#[path = "../../tests/api/postgres.rs"]
mod postgres;

#[derive(Debug, Clone, Copy)]
enum Db {
    Sqlite,
    Postgres,
}

/// A fresh, migrated catalog; the temp dir holds a SQLite file.
async fn open(db: Db) -> (Catalog, Option<tempfile::TempDir>) {
    match db {
        Db::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
            (Catalog::connect(&url).await.unwrap(), Some(dir))
        }
        Db::Postgres => {
            let url = postgres::fresh_database().await;
            let catalog = Catalog::connect(&url).await.unwrap();
            assert_eq!(catalog.dialect(), Dialect::Postgres);
            (catalog, None)
        }
    }
}

/// One `#[tokio::test]` per database from `async fn name(db: Db)`.
macro_rules! both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Db::Sqlite).await
                }
            )*
        }
        mod postgres_db {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Db::Postgres).await
                }
            )*
        }
    };
}

both_databases!(
    a_recording_comes_back_as_stored,
    a_repeated_upsert_changes_nothing,
    a_recordings_account_never_changes,
    big_batches_and_repeated_sids_apply_in_order,
    lists_are_in_time_then_byte_order,
    window_bounds_are_inclusive_and_accounts_half_open,
    incidents_are_replaced_and_listed_in_byte_order,
    accounts_and_keys,
    migrating_again_is_a_no_op,
);

fn sid<T: FromStr>(prefix: &str, n: u32) -> T
where
    T::Err: std::fmt::Debug,
{
    format!("{prefix}{n:032x}").parse().unwrap()
}

fn recording(n: u32, start: &str, secs: u32) -> Recording {
    Recording {
        sid: sid("RE", n),
        account_sid: sid("AC", 1),
        call_sid: Some(sid("CA", 1)),
        start_time: Some(start.parse().unwrap()),
        duration: Some(secs),
        channels: Some(2),
        source: Some("DialVerb".into()),
        track: Some("both".into()),
        status: RecordingStatus::Completed,
        error_code: None,
        formats: vec![Format::Mp3],
        deleted_at: None,
        deleted_reason: None,
    }
}

fn sids(recs: &[Recording]) -> Vec<String> {
    recs.iter().map(|r| r.sid.to_string()).collect()
}

async fn a_recording_comes_back_as_stored(db: Db) {
    let (catalog, _dir) = open(db).await;
    let mut r = recording(1, "2017-05-09T17:49:00Z", 60);
    r.status = RecordingStatus::Deleted;
    r.error_code = Some(16_102);
    r.deleted_at = Some("2018-05-09T00:00:00Z".parse().unwrap());
    r.deleted_reason = Some("retention: 12 months — «ünïcode»".into());
    r.formats = vec![Format::Wav, Format::Mp3];
    catalog.upsert(&r).await.unwrap();
    assert_eq!(catalog.get(&r.sid).await.unwrap(), Some(r.clone()));

    let bare = Recording {
        call_sid: None,
        start_time: None,
        duration: None,
        channels: None,
        source: None,
        track: None,
        formats: vec![],
        ..recording(2, "2017-05-09T17:49:00Z", 1)
    };
    catalog.upsert(&bare).await.unwrap();
    assert_eq!(catalog.get(&bare.sid).await.unwrap(), Some(bare));
    assert_eq!(catalog.get(&sid("RE", 3)).await.unwrap(), None);
    catalog.ping().await.unwrap();
}

async fn a_repeated_upsert_changes_nothing(db: Db) {
    let (catalog, _dir) = open(db).await;
    let recs: Vec<Recording> = (1..=3)
        .map(|n| recording(n, "2017-05-09T17:49:00Z", 60))
        .collect();
    assert_eq!(catalog.upsert_many(&recs).await.unwrap().changed, 3);
    assert_eq!(
        catalog.upsert_many(&recs).await.unwrap().changed,
        0,
        "unchanged"
    );
    let mut changed = recs.clone();
    changed[1].status = RecordingStatus::Absent;
    changed[2].track = None;
    assert_eq!(catalog.upsert_many(&changed).await.unwrap().changed, 2);
    assert_eq!(
        catalog.get(&recs[2].sid).await.unwrap().unwrap().track,
        None
    );
    assert_eq!(catalog.upsert_many(&[]).await.unwrap().changed, 0);
}

async fn a_recordings_account_never_changes(db: Db) {
    let (catalog, _dir) = open(db).await;
    let mine = recording(1, "2017-05-09T17:49:00Z", 60);
    catalog.upsert(&mine).await.unwrap();
    // Another account writes the same sid: deleted, and its own.
    let theirs = Recording {
        account_sid: sid("AC", 2),
        status: RecordingStatus::Deleted,
        deleted_reason: Some("taken".into()),
        ..mine.clone()
    };
    let up = catalog.upsert(&theirs).await.unwrap();
    assert_eq!(up.changed, 0);
    assert_eq!(up.foreign, vec![mine.sid.clone()]);
    assert_eq!(catalog.get(&mine.sid).await.unwrap(), Some(mine.clone()));
    // In a batch beside good rows; and a new sid claimed twice in one batch
    // stays with the first row's account.
    let fresh = recording(2, "2017-05-09T17:49:00Z", 60);
    let claim = Recording {
        account_sid: sid("AC", 2),
        ..fresh.clone()
    };
    let up = catalog
        .upsert_many(&[theirs.clone(), fresh.clone(), claim])
        .await
        .unwrap();
    assert_eq!(up.changed, 1);
    assert_eq!(up.foreign, vec![mine.sid.clone(), fresh.sid.clone()]);
    assert_eq!(catalog.get(&fresh.sid).await.unwrap(), Some(fresh));
    assert_eq!(catalog.get(&mine.sid).await.unwrap(), Some(mine));
    // Only foreign rows: nothing to write, no error.
    let up = catalog.upsert_many(&[theirs]).await.unwrap();
    assert_eq!((up.changed, up.foreign.len()), (0, 1));
}

async fn big_batches_and_repeated_sids_apply_in_order(db: Db) {
    let (catalog, _dir) = open(db).await;
    // More rows than one statement takes, and the same sid three times.
    let mut recs: Vec<Recording> = (1..=1_200)
        .map(|n| recording(n, "2017-05-09T17:49:00Z", 60))
        .collect();
    let mut later = recording(7, "2017-05-09T17:49:00Z", 61);
    recs.push(later.clone());
    later.duration = Some(62);
    recs.insert(600, later.clone());
    // 1,200 new rows, then sid 7 changed twice (62 s, then 61 s).
    assert_eq!(catalog.upsert_many(&recs).await.unwrap().changed, 1_202);
    let got = catalog.get(&later.sid).await.unwrap().unwrap();
    assert_eq!(got.duration, Some(61), "the last row wins");
    assert_eq!(catalog.upsert_many(&recs[..5]).await.unwrap().changed, 0);
}

async fn lists_are_in_time_then_byte_order(db: Db) {
    let (catalog, _dir) = open(db).await;
    let call: CallSid = sid("CA", 9);
    // Same start: sid decides, in byte order ("RE…0a" after "RE…09").
    let mut recs = vec![
        recording(0x0a, "2017-05-09T17:49:00Z", 60),
        recording(0x09, "2017-05-09T17:49:00Z", 60),
        recording(0x01, "2017-05-09T18:00:00Z", 5),
        recording(0x02, "2017-05-09T17:00:00.9Z", 5),
    ];
    for r in &mut recs {
        r.call_sid = Some(call.clone());
    }
    catalog.upsert_many(&recs).await.unwrap();
    let listed = sids(&catalog.by_call(&call).await.unwrap());
    let expected: Vec<String> = [0x02, 0x09, 0x0a, 0x01]
        .iter()
        .map(|&n| sid::<RecordingSid>("RE", n).to_string())
        .collect();
    assert_eq!(listed, expected);
    assert!(catalog.by_call(&sid("CA", 8)).await.unwrap().is_empty());
    // Stored times are whole seconds, so text order stays time order.
    let early = catalog.get(&sid("RE", 2)).await.unwrap().unwrap();
    assert_eq!(
        early.start_time.unwrap().to_string(),
        "2017-05-09T17:00:00Z"
    );
}

async fn window_bounds_are_inclusive_and_accounts_half_open(db: Db) {
    let (catalog, _dir) = open(db).await;
    let t = |s: &str| -> Timestamp { s.parse().unwrap() };
    let recs = vec![
        recording(1, "2017-05-09T17:47:00Z", 60), // ends 17:48:00, on the edge
        recording(2, "2017-05-09T18:00:00Z", 60),
        recording(3, "2017-05-09T18:30:00Z", 61), // ends 18:31:01, after
        recording(4, "2017-05-09T17:48:00Z", 0),
    ];
    catalog.upsert_many(&recs).await.unwrap();
    let (from, to) = (t("2017-05-09T17:48:00Z"), t("2017-05-09T18:31:00Z"));
    let by_end = sids(&catalog.in_window(TimeField::End, from, to).await.unwrap());
    assert_eq!(
        by_end,
        sids(&[recs[0].clone(), recs[3].clone(), recs[1].clone()])
    );
    let by_start = sids(
        &catalog
            .in_window(TimeField::Start, from, t("2017-05-09T18:30:00Z"))
            .await
            .unwrap(),
    );
    let expected = [recs[3].clone(), recs[1].clone(), recs[2].clone()];
    assert_eq!(by_start, sids(&expected));
    let account: AccountSid = sid("AC", 1);
    let day = catalog
        .by_account_between(&account, from, t("2017-05-09T18:30:00Z"))
        .await
        .unwrap();
    assert_eq!(sids(&day), sids(&[recs[3].clone(), recs[1].clone()]));
    let other = catalog
        .by_account_between(&sid("AC", 2), from, to)
        .await
        .unwrap();
    assert!(other.is_empty());
}

async fn incidents_are_replaced_and_listed_in_byte_order(db: Db) {
    let (catalog, _dir) = open(db).await;
    assert!(catalog.incident_specs().await.unwrap().is_empty());
    // PostgreSQL's test cluster collates en-US by default, where "a" sorts
    // before "B"; the schema's COLLATE "C" keeps byte order, as SQLite.
    for (id, spec) in [("a-1", "{\"v\":1}"), ("B-2", "{}"), ("a-1", "{\"v\":2}")] {
        catalog.save_incident_spec(id, spec).await.unwrap();
    }
    assert_eq!(catalog.incident_specs().await.unwrap(), ["{}", "{\"v\":2}"]);
}

async fn accounts_and_keys(db: Db) {
    let (catalog, _dir) = open(db).await;
    let (a, b): (AccountSid, AccountSid) = (sid("AC", 0xa), sid("AC", 0xb));
    assert_eq!(catalog.account(&a).await.unwrap(), None);
    let mut account = Account {
        sid: a.clone(),
        name: Some("Acme".into()),
        auth_token: Some(crate::config::Secret::new("token-1")),
        time_zone: Some("America/Los_Angeles".into()),
    };
    catalog.upsert_account(&account).await.unwrap();
    account.name = None;
    catalog.upsert_account(&account).await.unwrap();
    assert_eq!(catalog.account(&a).await.unwrap(), Some(account));

    catalog
        .create_key("KY2", &b, "hash-2", false, None)
        .await
        .unwrap();
    catalog
        .create_key("KY1", &a, "hash-1", true, Some("CRM"))
        .await
        .unwrap();
    let dup = catalog.create_key("KY3", &a, "hash-1", false, None).await;
    assert!(
        matches!(dup, Err(CatalogError::Database(_))),
        "a secret hash is unique: {dup:?}"
    );
    let key = catalog.key_by_hash("hash-1").await.unwrap().unwrap();
    assert_eq!(
        (key.id.as_str(), &key.account_sid, key.read_only),
        ("KY1", &a, true)
    );
    assert_eq!(key.label.as_deref(), Some("CRM"));
    assert_eq!(key.created_at.len(), "2017-05-09T17:48:00Z".len());
    let all: Vec<String> = catalog
        .keys(None)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(all, ["KY1", "KY2"], "by account sid");
    assert_eq!(catalog.keys(Some(&b)).await.unwrap().len(), 1);

    assert!(catalog.revoke_key("KY1").await.unwrap());
    assert!(!catalog.revoke_key("KY1").await.unwrap(), "already revoked");
    assert!(!catalog.revoke_key("KY9").await.unwrap(), "no such key");
    assert_eq!(catalog.key_by_hash("hash-1").await.unwrap(), None);
    let revoked = catalog.keys(Some(&a)).await.unwrap();
    assert!(revoked[0].revoked_at.is_some());
}

async fn migrating_again_is_a_no_op(db: Db) {
    let url = match db {
        Db::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
            let first = Catalog::connect(&url).await.unwrap();
            first
                .upsert(&recording(1, "2017-05-09T17:49:00Z", 60))
                .await
                .unwrap();
            let again = Catalog::connect(&url).await.unwrap();
            assert!(again.get(&sid("RE", 1)).await.unwrap().is_some());
            return;
        }
        Db::Postgres => postgres::fresh_database().await,
    };
    // Replicas starting at once on a new database: one migrates, the
    // others wait for it (the migrator's advisory lock), none fails.
    let starts = (0..3).map(|_| Catalog::connect(&url));
    let catalogs = futures_util::future::try_join_all(starts).await.unwrap();
    catalogs[0]
        .upsert(&recording(1, "2017-05-09T17:49:00Z", 60))
        .await
        .unwrap();
    assert!(catalogs[2].get(&sid("RE", 1)).await.unwrap().is_some());
}

#[test]
fn both_schemas_have_the_same_versions() {
    let versions = |m: sqlx::migrate::Migrator| -> Vec<(i64, String)> {
        m.iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    };
    let sqlite = versions(sqlx::migrate!("./migrations/sqlite"));
    assert_eq!(sqlite, versions(sqlx::migrate!("./migrations/postgres")));
    assert_eq!(sqlite.len(), 4);
}

#[tokio::test]
async fn bad_or_unreachable_catalogs_say_why() {
    let err = Catalog::connect("mysql://gw:secret@127.0.0.1/catalog")
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::Url(_)), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");

    // Nobody listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Catalog::connect(&format!("postgres://gw:secret@127.0.0.1:{port}/catalog"))
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::Unreachable(_)), "{err}");
    assert!(err.to_string().contains("refused"), "{err}");

    // A real server, a wrong password.
    let url = postgres::fresh_database().await;
    let wrong = url.replacen(":playback-test-pg@", ":wrong@", 1);
    assert_ne!(wrong, url);
    let err = Catalog::connect(&wrong).await.unwrap_err();
    assert!(matches!(err, CatalogError::Unreachable(_)), "{err}");
    assert!(err.to_string().contains("password"), "{err}");
}

#[test]
fn passwords_are_redacted() {
    for (url, shown) in [
        (
            "postgres://gw:s3cret@db:5432/catalog",
            "postgres://gw:***@db:5432/catalog",
        ),
        (
            "postgresql://gw:p@ss@db/catalog?sslmode=disable",
            "postgresql://gw:***@db/catalog?sslmode=disable",
        ),
        (
            "postgres://db/catalog?user=gw&password=s3cret",
            "postgres://db/catalog?user=gw&password=***",
        ),
        ("postgres://gw@db/catalog", "postgres://gw@db/catalog"),
        ("sqlite:///srv/gw/catalog.db", "sqlite:///srv/gw/catalog.db"),
        ("not a url", "not a url"),
    ] {
        assert_eq!(redact_url(url), shown, "{url}");
    }
}
