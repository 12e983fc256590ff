//! Every verdict through HTTP, on both backends and in every
//! representation; pages checked for their facts.

use playback_gateway::catalog::RecordingStatus;
use playback_gateway::keys::Format;
use playback_gateway::sid::{AccountSid, RecordingSid};
use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, Seeded, TestApp, random_sid, spawn_app};

both_backends!(
    a_recording_lost_on_2017_05_09_is_410_naming_the_incident,
    every_verdict_has_its_status_and_words,
    a_lost_recording_explains_itself_in_html_and_text,
    media_elements_get_the_compact_json,
    status_pages_tell_the_facts,
    twilio_json_has_twilio_fields_and_availability,
    a_re_uploaded_recording_plays_at_once,
);

async fn seed(
    app: &TestApp,
    account: &AccountSid,
    start: &str,
    secs: u32,
    status: RecordingStatus,
    stored: bool,
) -> Seeded {
    app.seed_with(account, start, secs, status, stored).await
}

async fn get_json(app: &TestApp, path: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let res = app
        .get(path)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let is_json = headers["content-type"].to_str().unwrap().contains("json");
    let body = if is_json {
        res.json().await.unwrap()
    } else {
        Value::Null
    };
    (status, headers, body)
}

/// A call that ended at 10:50 PDT on 2017-05-09, its audio gone.
const IN_WINDOW: &str = "2017-05-09T17:49:00Z";

async fn a_recording_lost_on_2017_05_09_is_410_naming_the_incident(b: Backend) {
    let app = spawn_app(b).await;
    let account = random_sid("AC");
    let rec = seed(
        &app,
        &account,
        IN_WINDOW,
        60,
        RecordingStatus::Completed,
        false,
    )
    .await;
    for path in [
        rec.path(Format::Mp3),
        rec.twilio_path(),
        format!("{}.wav", rec.twilio_path()),
    ] {
        let (status, headers, body) = get_json(&app, &path).await;
        assert_eq!(status, StatusCode::GONE, "{path}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(
            headers["link"],
            "</incidents/2017-05-09>; rel=\"describedby\""
        );
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(body["type"], "/problems/lost");
        assert_eq!(body["status"], 410);
        assert_eq!(body["verdict"], "lost");
        assert_eq!(body["recording_sid"], rec.sid.as_str());
        assert_eq!(body["incident"]["id"], "2017-05-09");
        assert_eq!(body["incident"]["window"]["start"], "2017-05-09T17:48:00Z");
        assert_eq!(body["incident"]["window"]["end"], "2017-05-09T18:31:00Z");
        assert_eq!(
            body["incident"]["window"]["local"],
            "2017-05-09 10:48–11:31 PDT"
        );
        assert_eq!(
            body["incident"]["window"]["utc"],
            "2017-05-09 17:48–18:31 UTC"
        );
        assert_eq!(body["incident"]["time_zone"], "America/Los_Angeles");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("10:48–11:31 PDT") && detail.contains("17:48–18:31 UTC"),
            "{detail}"
        );
        let notes = body["notes"].to_string();
        assert!(
            notes.contains("attempted call") && notes.contains("voicemail"),
            "{notes}"
        );
    }
}

async fn every_verdict_has_its_status_and_words(b: Backend) {
    let app = spawn_app(b).await;
    let account = random_sid("AC");
    let before = "2017-05-09T15:00:00Z";
    let cases = [
        (
            seed(&app, &account, before, 60, RecordingStatus::Completed, true).await,
            200,
            "available",
        ),
        (
            seed(
                &app,
                &account,
                IN_WINDOW,
                60,
                RecordingStatus::Completed,
                false,
            )
            .await,
            410,
            "lost",
        ),
        (
            seed(
                &app,
                &account,
                IN_WINDOW,
                60,
                RecordingStatus::Completed,
                true,
            )
            .await,
            200,
            "available",
        ),
        (
            seed(&app, &account, before, 60, RecordingStatus::Deleted, false).await,
            410,
            "deleted",
        ),
        (
            seed(&app, &account, before, 60, RecordingStatus::Deleted, true).await,
            410,
            "deleted",
        ),
        (
            seed(&app, &account, before, 1, RecordingStatus::Absent, false).await,
            404,
            "absent",
        ),
        (
            seed(
                &app,
                &account,
                before,
                60,
                RecordingStatus::Processing,
                false,
            )
            .await,
            503,
            "pending",
        ),
        (
            seed(
                &app,
                &account,
                before,
                60,
                RecordingStatus::Completed,
                false,
            )
            .await,
            404,
            "unexplained",
        ),
    ];
    for (rec, status, verdict) in &cases {
        let (got, headers, body) = get_json(&app, &rec.path(Format::Wav)).await;
        assert_eq!(got.as_u16(), *status, "{verdict}");
        if *status == 200 {
            continue;
        }
        assert_eq!(body["verdict"], *verdict);
        assert_eq!(body["type"], format!("/problems/{verdict}"));
        assert!(!body["title"].as_str().unwrap().is_empty());
        assert_eq!(
            headers.contains_key("retry-after"),
            *status == 503,
            "{verdict}"
        );
        assert_eq!(
            headers.contains_key("link"),
            *verdict == "lost",
            "{verdict}"
        );
    }
    let (_, _, deleted) = get_json(&app, &cases[3].0.path(Format::Wav)).await;
    assert!(deleted["detail"].as_str().unwrap().contains("2018-05-09"));
    assert!(
        deleted["detail"]
            .as_str()
            .unwrap()
            .contains("retention policy")
    );
    let (_, _, absent) = get_json(&app, &cases[5].0.path(Format::Wav)).await;
    assert_eq!(absent["error_code"], 16102);
    assert!(absent["detail"].as_str().unwrap().contains("silent"));
    let (_, headers, _) = get_json(&app, &cases[6].0.path(Format::Wav)).await;
    assert_eq!(headers["retry-after"], "7");
    // Unknown: neither catalog nor storage.
    let unknown: RecordingSid = random_sid("RE");
    let (status, _, body) = get_json(&app, &format!("/recordings/{unknown}.wav")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["verdict"], "unknown");
}

async fn a_lost_recording_explains_itself_in_html_and_text(b: Backend) {
    let app = spawn_app(b).await;
    let rec = seed(
        &app,
        &random_sid("AC"),
        IN_WINDOW,
        60,
        RecordingStatus::Completed,
        false,
    )
    .await;
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let res = app
        .get(&rec.path(Format::Mp3))
        .header("accept", browser)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::GONE);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    let html = res.text().await.unwrap();
    for fact in [
        "This recording was lost in incident 2017-05-09",
        "2017-05-09 10:48–11:31 PDT",
        "2017-05-09 17:48–18:31 UTC",
        "href=\"/incidents/2017-05-09\"",
        "attempted call",
        "What to do",
        rec.sid.as_str(),
    ] {
        assert!(html.contains(fact), "missing {fact:?}");
    }
    let res = app
        .get(&rec.path(Format::Mp3))
        .header("accept", "*/*")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::GONE);
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    let text = res.text().await.unwrap();
    assert!(
        text.starts_with("This recording was lost in incident 2017-05-09"),
        "{text}"
    );
    assert!(text.contains("17:48–18:31 UTC"));
}

async fn media_elements_get_the_compact_json(b: Backend) {
    let app = spawn_app(b).await;
    let rec = seed(
        &app,
        &random_sid("AC"),
        IN_WINDOW,
        60,
        RecordingStatus::Completed,
        false,
    )
    .await;
    let res = app
        .get(&rec.path(Format::Mp3))
        .header("accept", "*/*")
        .header("sec-fetch-dest", "audio")
        .header("range", "bytes=0-")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::GONE);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(res.headers()["vary"], "Accept, Sec-Fetch-Dest");
}

async fn status_pages_tell_the_facts(b: Backend) {
    let app = spawn_app(b).await;
    let account = random_sid("AC");
    let lost = seed(
        &app,
        &account,
        IN_WINDOW,
        60,
        RecordingStatus::Completed,
        false,
    )
    .await;
    let fine = seed(
        &app,
        &account,
        "2017-05-09T16:00:00Z",
        75,
        RecordingStatus::Completed,
        true,
    )
    .await;
    // JSON status.
    let (status, _, body) = get_json(&app, &format!("/recordings/{}", lost.sid)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["availability"]["verdict"], "lost");
    assert_eq!(body["availability"]["incident"]["id"], "2017-05-09");
    assert_eq!(body["end_time"], "2017-05-09T17:50:00Z");
    let (_, _, body) = get_json(&app, &format!("/recordings/{}.json", fine.sid)).await;
    assert_eq!(body["availability"]["verdict"], "available");
    assert_eq!(body["availability"]["playable"], true);
    assert_eq!(
        body["media"]["mp3"],
        format!("/recordings/{}.mp3", fine.sid)
    );
    // HTML status page.
    let html = app
        .get(&format!("/recordings/{}", lost.sid))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Lost in incident") && html.contains("2017-05-09 10:48–11:31 PDT"));
    // The account's day, in Pacific time, HTML and CSV.
    let day = format!("/accounts/{account}/recordings?date=2017-05-09&tz=America/Los_Angeles");
    let (status, _, body) = get_json(&app, &day).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["recordings"].as_array().unwrap().len(), 2);
    let html = app
        .get(&day)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("2017-05-09 10:49:00"),
        "local start time of the lost call"
    );
    assert!(html.contains("Lost in incident") && html.contains("Available"));
    let csv = app
        .get(&day.replace("/recordings?", "/recordings.csv?"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.contains(lost.sid.as_str()) && l.contains(",lost,2017-05-09,"))
    );
    // Another day is empty; a bad date is a clear 400.
    let (_, _, body) = get_json(
        &app,
        &format!("/accounts/{account}/recordings?date=2017-05-10"),
    )
    .await;
    assert_eq!(body["recordings"].as_array().unwrap().len(), 0);
    for bad in [
        "date=9 May",
        "date=2017-13-01",
        "",
        "date=2017-05-09&tz=Mars/Olympus",
    ] {
        let (status, _, body) =
            get_json(&app, &format!("/accounts/{account}/recordings?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains(if bad.contains("tz") { "tz" } else { "date" })
        );
    }
    // The call page.
    let call: Value = app
        .get(&format!(
            "/calls/{}",
            app.catalog
                .get(&lost.sid)
                .await
                .unwrap()
                .unwrap()
                .call_sid
                .unwrap()
        ))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(call["recordings"][0]["availability"]["verdict"], "lost");
    let unknown_call: playback_gateway::sid::CallSid = random_sid("CA");
    let res = app
        .get(&format!("/calls/{unknown_call}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

async fn twilio_json_has_twilio_fields_and_availability(b: Backend) {
    let app = spawn_app(b).await;
    let account = random_sid("AC");
    let rec = seed(
        &app,
        &account,
        IN_WINDOW,
        60,
        RecordingStatus::Completed,
        false,
    )
    .await;
    let (status, _, body) = get_json(&app, &format!("{}.json", rec.twilio_path())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sid"], rec.sid.as_str());
    assert_eq!(body["account_sid"], account.as_str());
    assert_eq!(body["duration"], "60");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["start_time"], "Tue, 09 May 2017 17:49:00 +0000");
    assert_eq!(body["uri"], format!("{}.json", rec.twilio_path()));
    assert_eq!(body["availability"]["verdict"], "lost");
    // Another account: Twilio's own 404 shape, same as a recording that never was.
    let other: AccountSid = random_sid("AC");
    let (status, _, body) = get_json(
        &app,
        &format!("/2010-04-01/Accounts/{other}/Recordings/{}.json", rec.sid),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 20404);
    assert_eq!(body["availability"]["verdict"], "unknown");
}

async fn a_re_uploaded_recording_plays_at_once(b: Backend) {
    let app = spawn_app(b).await;
    let rec = seed(
        &app,
        &random_sid("AC"),
        IN_WINDOW,
        60,
        RecordingStatus::Completed,
        false,
    )
    .await;
    let (status, _, _) = get_json(&app, &rec.path(Format::Wav)).await;
    assert_eq!(status, StatusCode::GONE);
    // Recovered by the partner: uploaded again. An ingest event (or the
    // short negative TTL) makes it play; here the cache is told directly,
    // as ingest does.
    app.put_object(&app.key(&rec, Format::Wav), &rec.bytes)
        .await;
    app.state
        .heads
        .invalidate(&app.key(&rec, Format::Wav))
        .await;
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), rec.bytes);
}
