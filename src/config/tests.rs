use super::*;

#[test]
fn storage_urls() {
    assert_eq!(
        parse_storage_url("file:///srv/rec").unwrap(),
        StorageUrl::File("/srv/rec".into())
    );
    assert_eq!(
        parse_storage_url("s3://calls").unwrap(),
        StorageUrl::S3 {
            bucket: "calls".into(),
            prefix: String::new()
        }
    );
    assert_eq!(
        parse_storage_url("s3://calls/rec/2017/").unwrap(),
        StorageUrl::S3 {
            bucket: "calls".into(),
            prefix: "rec/2017/".into()
        }
    );
    for bad in [
        "",
        "calls",
        "http://x",
        "file://",
        "s3://",
        "s3://Calls",
        "s3://ab",
        "s3://calls/../x",
        "s3://calls/a//b",
    ] {
        let err = parse_storage_url(bad).unwrap_err().to_string();
        assert!(err.contains("--storage"), "{bad:?}: {err}");
    }
}

#[test]
fn durations_name_their_setting() {
    assert_eq!(parse_duration("x", "90s").unwrap(), Duration::from_secs(90));
    let err = parse_duration("--cache-ttl", "soon")
        .unwrap_err()
        .to_string();
    assert!(err.contains("--cache-ttl"), "{err}");
}

#[test]
fn secrets_do_not_print() {
    assert_eq!(
        format!("{:?}", Secret::new("hunter2")),
        "Secret([redacted])"
    );
}

#[test]
fn unknown_file_keys_are_refused() {
    let err = toml::from_str::<FileConfig>("lisen = \"x\"").unwrap_err();
    assert!(err.to_string().contains("lisen"), "{err}");
}
