//! Two gateway replicas over one PostgreSQL catalog and one store: a
//! change made through one shows through the other at once (PostgreSQL
//! LISTEN/NOTIFY), and a replica that loses the channel says so and falls
//! back to short cache lifetimes until it is back.

use std::time::{Duration, Instant};

use playback_gateway::catalog::RecordingStatus;
use playback_gateway::keys::Format;
use playback_gateway::sid::AccountSid;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Backend, Options, TestApp, random_sid, spawn_app_with};

async fn replicas() -> (TestApp, TestApp) {
    let a = spawn_app_with(Backend::Postgres, Options::default()).await;
    let b = spawn_app_with(
        Backend::Postgres,
        Options {
            replica_of: Some(a.store()),
            ..Options::default()
        },
    )
    .await;
    for app in [&a, &b] {
        wait_for_changes(app, "listening").await;
    }
    (a, b)
}

async fn readiness(app: &TestApp) -> Value {
    app.get("/readyz")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `/readyz` until the change channel is in `status` (bounded).
async fn wait_for_changes(app: &TestApp, status: &str) -> Value {
    let t = Instant::now();
    loop {
        let r = readiness(app).await;
        if r["checks"]["changes"]["status"] == status {
            return r;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "never {status}: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until `f` holds, and says how long it took (bounded at 5 s).
async fn within<F, Fut>(what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    while !f().await {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{what}: not within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.elapsed()
}

/// The test's incident (calls ending 09:00-09:02 UTC on 2017-06-03).
fn incident(status: &str) -> Value {
    json!({
        "id": "replica-test", "title": "Replica test", "status": status,
        "outcome": "lost", "time_zone": "UTC", "starts": "2017-06-03T09:00:00",
        "ends": "2017-06-03T09:02:00", "match_on": "end", "summary": "A test.",
        "impact": "Some were lost.", "what_to_do": "Nothing."
    })
}

async fn verdict(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let res = app
        .get(path)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_change_through_one_replica_shows_through_the_other_at_once() {
    let (a, b) = replicas().await;
    let account: AccountSid = random_sid("AC");

    // A recording still processing: B caches that (for a minute, normally).
    let s = a
        .seed_with(
            &account,
            "2017-06-01T12:00:00Z",
            1,
            RecordingStatus::Processing,
            false,
        )
        .await;
    let path = s.path(Format::Mp3);
    let (status, body) = verdict(&b, &path).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["verdict"], "pending", "{body}");

    // The audio arrives and the completion is ingested through A.
    for f in Format::ALL {
        a.put_object(&a.key(&s, f), &s.bytes).await;
    }
    let res = a
        .client
        .post(a.url("/api/recordings"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!([{
            "sid": s.sid, "account_sid": account, "status": "completed",
            "start_time": "2017-06-01T12:00:00Z", "duration": "1"
        }]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    let took = within("B plays the ingested recording", || async {
        b.get(&path).send().await.unwrap().status() == StatusCode::OK
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");

    // An incident created on A explains B's missing recording within a second.
    let missing = a
        .seed_with(
            &account,
            "2017-06-03T09:00:00Z",
            60,
            RecordingStatus::Completed,
            false,
        )
        .await;
    let mpath = missing.path(Format::Mp3);
    assert_eq!(verdict(&b, &mpath).await.1["verdict"], "unexplained");
    let res = a
        .client
        .post(a.url("/admin/incidents"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&incident("resolved"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    let took = within("B explains it by the new incident", || async {
        verdict(&b, &mpath).await.1["verdict"] == "lost"
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");

    // An edit (resolved -> investigating) shows on B too.
    let res = a
        .client
        .put(a.url("/admin/incidents/replica-test"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&incident("investigating"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    within("B follows the edit", || async {
        verdict(&b, &mpath).await.1["verdict"] == "recovering"
    })
    .await;
}

#[tokio::test]
async fn a_replica_that_loses_the_channel_says_so_and_recovers() {
    let (a, b) = replicas().await;
    // Cut both replicas' LISTEN connections (only this test's database:
    // the server is shared), as a network blip would.
    let pool = sqlx::PgPool::connect(&a.catalog_url).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query LIKE 'LISTEN%' AND datname = current_database() \
         AND pid <> pg_backend_pid()",
    )
    .execute(&pool)
    .await
    .unwrap();
    let r = wait_for_changes(&b, "degraded").await;
    assert_eq!(r["status"], "ready", "a degraded replica still serves: {r}");
    assert!(
        r["checks"]["changes"]["detail"]
            .as_str()
            .unwrap()
            .contains("at most 2 s"),
        "{r}"
    );
    let metrics = b.metrics().await;
    assert!(
        metrics.contains("playback_invalidation_listening"),
        "{metrics}"
    );
    // It reconnects by itself, and changes are heard again.
    wait_for_changes(&b, "listening").await;
    wait_for_changes(&a, "listening").await;
    let account: AccountSid = random_sid("AC");
    let s = a
        .seed_with(
            &account,
            "2017-06-01T12:00:00Z",
            1,
            RecordingStatus::Processing,
            false,
        )
        .await;
    assert_eq!(
        verdict(&b, &s.path(Format::Wav)).await.1["verdict"],
        "pending"
    );
    for f in Format::ALL {
        a.put_object(&a.key(&s, f), &s.bytes).await;
    }
    let mut done =
        playback_gateway::catalog::Recording::clone(&a.catalog.get(&s.sid).await.unwrap().unwrap());
    done.status = RecordingStatus::Completed;
    a.catalog.upsert(&done).await.unwrap();
    let took = within("B hears the change after reconnecting", || async {
        b.get(&s.path(Format::Wav)).send().await.unwrap().status() == StatusCode::OK
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");
}
