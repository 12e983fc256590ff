//! Audio bytes and ranges, compared byte for byte with the source object.

use playback_gateway::keys::Format;
use playback_gateway::storage::BodyCacheConfig;
use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, Options, spawn_app, spawn_app_with};

both_backends!(
    full_get_returns_every_byte_with_exact_headers,
    head_is_get_without_the_body,
    mp3_and_wav_have_their_media_types,
    twilio_paths_serve_the_same_bytes,
    first_two_bytes_for_safari,
    open_ended_range_for_chrome,
    suffix_range,
    range_past_the_end_is_clamped,
    unsatisfiable_range_is_416,
    invalid_range_syntax_gets_the_whole_object,
    several_ranges_are_multipart,
    download_sets_an_attachment_name,
    a_large_object_streams_whole,
    a_replaced_object_is_served_in_its_new_version,
);

async fn full_get_returns_every_byte_with_exact_headers(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(300_000).await;
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["content-length"], "300000");
    assert_eq!(h["content-type"], "audio/wav");
    assert_eq!(h["cache-control"], "private, no-cache");
    assert!(
        h.get("content-range").is_none(),
        "Content-Range on 206 only"
    );
    let etag = h["etag"].to_str().unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    httpdate::parse_http_date(h["last-modified"].to_str().unwrap()).unwrap();
    assert_eq!(res.bytes().await.unwrap(), rec.bytes);
}

async fn head_is_get_without_the_body(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(10_000).await;
    for range in [None, Some("bytes=0-1"), Some("bytes=0-1,5000-5009")] {
        let mut get = app.get(&rec.path(Format::Mp3));
        let mut head = app.head(&rec.path(Format::Mp3));
        if let Some(r) = range {
            get = get.header("range", r);
            head = head.header("range", r);
        }
        let get = get.send().await.unwrap();
        let head = head.send().await.unwrap();
        assert_eq!(get.status(), head.status());
        for name in [
            "content-length",
            "accept-ranges",
            "etag",
            "last-modified",
            "cache-control",
            "content-range",
        ] {
            assert_eq!(get.headers().get(name), head.headers().get(name), "{name}");
        }
        if range.is_none_or(|r| !r.contains(',')) {
            assert_eq!(
                get.headers()["content-type"],
                head.headers()["content-type"]
            );
        }
        assert!(head.bytes().await.unwrap().is_empty());
    }
}

async fn mp3_and_wav_have_their_media_types(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(1_000).await;
    let mp3 = app.get(&rec.path(Format::Mp3)).send().await.unwrap();
    assert_eq!(mp3.headers()["content-type"], "audio/mpeg");
    let wav = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    assert_eq!(wav.headers()["content-type"], "audio/wav");
}

async fn twilio_paths_serve_the_same_bytes(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(5_000).await;
    for (suffix, ctype) in [
        ("", "audio/wav"),
        (".wav", "audio/wav"),
        (".mp3", "audio/mpeg"),
    ] {
        let res = app
            .get(&format!("{}{suffix}", rec.twilio_path()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{suffix}");
        assert_eq!(res.headers()["content-type"], ctype);
        assert_eq!(res.bytes().await.unwrap(), rec.bytes);
    }
}

async fn ranged(app: &crate::helpers::TestApp, path: &str, range: &str) -> reqwest::Response {
    app.get(path).header("range", range).send().await.unwrap()
}

async fn first_two_bytes_for_safari(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(50_000).await;
    let res = ranged(&app, &rec.path(Format::Mp3), "bytes=0-1").await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.headers()["content-range"], "bytes 0-1/50000");
    assert_eq!(res.headers()["content-length"], "2");
    assert_eq!(res.bytes().await.unwrap(), rec.bytes[0..2]);
}

async fn open_ended_range_for_chrome(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(50_000).await;
    // Chrome will not seek if `bytes=0-` got a 200.
    let res = ranged(&app, &rec.path(Format::Wav), "bytes=0-").await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.headers()["content-range"], "bytes 0-49999/50000");
    assert_eq!(res.bytes().await.unwrap(), rec.bytes);
    let res = ranged(&app, &rec.path(Format::Wav), "bytes=40000-").await;
    assert_eq!(res.headers()["content-range"], "bytes 40000-49999/50000");
    assert_eq!(res.bytes().await.unwrap(), rec.bytes[40_000..]);
}

async fn suffix_range(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(50_000).await;
    let res = ranged(&app, &rec.path(Format::Wav), "bytes=-500").await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.headers()["content-range"], "bytes 49500-49999/50000");
    assert_eq!(res.bytes().await.unwrap(), rec.bytes[49_500..]);
    let res = ranged(&app, &rec.path(Format::Wav), "bytes=-900000").await;
    assert_eq!(res.headers()["content-range"], "bytes 0-49999/50000");
    assert_eq!(res.bytes().await.unwrap(), rec.bytes);
}

async fn range_past_the_end_is_clamped(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(1_000).await;
    let res = ranged(&app, &rec.path(Format::Wav), "bytes=900-5000").await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.headers()["content-range"], "bytes 900-999/1000");
    assert_eq!(res.bytes().await.unwrap(), rec.bytes[900..]);
}

async fn unsatisfiable_range_is_416(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(1_000).await;
    for r in ["bytes=1000-", "bytes=5000-6000", "bytes=-0"] {
        let res = ranged(&app, &rec.path(Format::Wav), r).await;
        assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{r}");
        assert_eq!(res.headers()["content-range"], "bytes */1000");
        crate::helpers::problem(res).await;
    }
}

async fn invalid_range_syntax_gets_the_whole_object(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(1_000).await;
    let garbage: [&[u8]; 5] = [
        b"bytes=5-1",
        b"pages=1-2",
        b"bytes=x-y",
        b"bytes 0-1",
        b"bytes=\xff-1",
    ];
    for r in garbage {
        let value = reqwest::header::HeaderValue::from_bytes(r).unwrap();
        let res = app
            .get(&rec.path(Format::Wav))
            .header("range", value)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{r:?}");
        assert_eq!(res.bytes().await.unwrap(), rec.bytes);
    }
}

/// Splits a multipart/byteranges body into (Content-Range, bytes) parts.
fn parse_multipart(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("a boundary parameter");
    let delim = format!("\r\n--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let mut pos = 0;
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    loop {
        let start = find(text, delim.as_bytes(), pos).expect("delimiter") + delim.len();
        if text[start..].starts_with(b"--") {
            assert_eq!(&text[start..], b"--\r\n", "closing delimiter ends the body");
            break;
        }
        let head_end = find(text, b"\r\n\r\n", start).unwrap();
        let head = String::from_utf8(text[start..head_end].to_vec()).unwrap();
        let range = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Range: "))
            .unwrap()
            .to_string();
        let (a, b) = range["bytes ".len()..]
            .split('/')
            .next()
            .unwrap()
            .split_once('-')
            .unwrap();
        let len = b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1;
        let data = text[head_end + 4..head_end + 4 + len].to_vec();
        parts.push((range, data));
        pos = head_end + 4 + len;
    }
    parts
}

async fn several_ranges_are_multipart(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(100_000).await;
    let res = ranged(&app, &rec.path(Format::Mp3), "bytes=90000-90099, 0-9, -5").await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert!(res.headers().get("content-range").is_none());
    let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("multipart/byteranges; boundary="));
    let declared: usize = res.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = res.bytes().await.unwrap();
    assert_eq!(body.len(), declared);
    let parts = parse_multipart(&ctype, &body);
    let expect = [
        ("bytes 0-9/100000", &rec.bytes[0..10]),
        ("bytes 90000-90099/100000", &rec.bytes[90_000..90_100]),
        ("bytes 99995-99999/100000", &rec.bytes[99_995..]),
    ];
    assert_eq!(parts.len(), expect.len());
    for ((range, data), (er, eb)) in parts.iter().zip(expect) {
        assert_eq!(range, er);
        assert_eq!(data.as_slice(), eb);
    }
}

async fn download_sets_an_attachment_name(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(100).await;
    let res = app
        .get(&format!("{}?download=1", rec.path(Format::Mp3)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["content-disposition"],
        format!("attachment; filename=\"{}.mp3\"", rec.sid).as_str()
    );
    let res = app.get(&rec.path(Format::Mp3)).send().await.unwrap();
    assert!(res.headers().get("content-disposition").is_none());
}

async fn a_large_object_streams_whole(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(24 * 1024 * 1024 + 17).await;
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.bytes().await.unwrap();
    assert_eq!(body.len(), rec.bytes.len());
    assert!(body == rec.bytes, "bytes differ");
    // Seeking deep into it reads only that range.
    let res = ranged(&app, &rec.path(Format::Wav), "bytes=20000000-20000099").await;
    assert_eq!(
        res.bytes().await.unwrap(),
        rec.bytes[20_000_000..20_000_100]
    );
}

async fn a_replaced_object_is_served_in_its_new_version(b: Backend) {
    // With recordings kept in memory (the default), and without.
    for body_cache in [
        BodyCacheConfig::default(),
        BodyCacheConfig {
            max_bytes: 0,
            ..BodyCacheConfig::default()
        },
    ] {
        let kept = body_cache.max_bytes > 0;
        let app = spawn_app_with(
            b,
            Options {
                body_cache,
                ..Options::default()
            },
        )
        .await;
        let rec = app.seed(10_000).await;
        let first = app.get(&rec.path(Format::Wav)).send().await.unwrap();
        let old_etag = first.headers()["etag"].clone();
        assert_eq!(first.bytes().await.unwrap(), rec.bytes);
        // Re-uploaded (say, during a recovery) with other content and size,
        // behind the gateway's back, while it still caches the old metadata.
        let new_bytes = crate::helpers::audio_bytes(7_777);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        app.put_object(&app.key(&rec, Format::Wav), &new_bytes)
            .await;
        let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        if kept {
            // The kept version, whole and consistent (its own ETag and
            // length), until the metadata is forgotten or its TTL passes.
            assert_eq!(res.headers()["etag"], old_etag);
            assert_eq!(res.bytes().await.unwrap(), rec.bytes);
            app.state.heads.clear();
            let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            assert_ne!(res.headers()["etag"], old_etag);
            assert_eq!(res.bytes().await.unwrap(), new_bytes);
            continue;
        }
        // Every read goes to the store, conditioned on the ETag: the change
        // shows at once.
        assert_ne!(res.headers()["etag"], old_etag);
        assert_eq!(res.headers()["content-length"], "7777");
        assert_eq!(res.bytes().await.unwrap(), new_bytes);
    }
}

/// Keys are signed as S3 reads them: a prefix with spaces, symbols and
/// non-ASCII letters (percent-encoded once in the path) still plays.
#[tokio::test]
async fn keys_with_spaces_symbols_and_accents_play_from_s3() {
    let prefix = format!("t-{} calls +=é,;@!/", uuid::Uuid::new_v4().simple());
    let app = crate::helpers::spawn_app_with(
        Backend::S3,
        crate::helpers::Options {
            s3_prefix: Some(prefix),
            ..crate::helpers::Options::default()
        },
    )
    .await;
    let rec = app.seed(50_000).await;
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), rec.bytes);
    let res = app
        .get(&rec.path(Format::Wav))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap(), rec.bytes[100..200]);
}
