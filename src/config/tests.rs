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

#[test]
fn catalog_urls_are_sqlite_or_postgres() {
    use crate::catalog::Dialect;
    for (url, dialect) in [
        ("sqlite:///var/lib/gw/catalog.db", Dialect::Sqlite),
        ("sqlite://catalog.db?mode=rwc", Dialect::Sqlite),
        (
            "postgres://gw:pw@db.internal:5432/catalog",
            Dialect::Postgres,
        ),
        ("postgresql://gw@127.0.0.1/catalog", Dialect::Postgres),
        (
            "postgres://db.internal/catalog?sslmode=disable",
            Dialect::Postgres,
        ),
    ] {
        assert_eq!(Dialect::of_url(url), Ok(dialect), "{url}");
    }
    for bad in [
        "",
        "catalog.db",
        "mysql://gw@db/catalog",
        "postgres:/db",
        "postgres://gw:secret@db:notaport/catalog",
        "postgres://gw:secret@db/catalog?sslmode=sometimes",
        "sqlite://catalog.db?mode=sometimes",
    ] {
        let err = Dialect::of_url(bad).unwrap_err();
        assert!(
            !err.contains("secret"),
            "{bad:?}: the password shows: {err}"
        );
    }
}

#[test]
fn a_bad_catalog_url_names_its_setting_and_hides_its_password() {
    let file: FileConfig =
        toml::from_str("dir = \"/srv/gw\"\ncatalog = \"mysql://gw:secret@db/catalog\"").unwrap();
    let err = StoreConfig::resolve(&StoreArgs::default(), &file)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--catalog (PLAYBACK_GATEWAY_CATALOG, catalog)"),
        "{err}"
    );
    assert!(err.contains("postgres://"), "says what would do: {err}");
    assert!(!err.contains("secret"), "{err}");
    let file: FileConfig =
        toml::from_str("dir = \"/srv/gw\"\ncatalog = \"postgres://gw:secret@db/catalog\"").unwrap();
    let store = StoreConfig::resolve(&StoreArgs::default(), &file).unwrap();
    assert_eq!(store.catalog_url, "postgres://gw:secret@db/catalog");
}

#[test]
fn the_audit_schedule_is_off_by_default_and_sane_when_set() {
    let resolve = |every: Option<&str>| {
        let args = crate::cli::ServeArgs {
            store: StoreArgs {
                dir: Some(std::env::temp_dir().join("playback-audit-config-test")),
                ..StoreArgs::default()
            },
            audit_every: every.map(str::to_owned),
            ..crate::cli::ServeArgs::default()
        };
        Config::resolve(&args, &FileConfig::default()).map(|c| c.audit_every)
    };
    assert_eq!(resolve(None).unwrap(), None);
    assert_eq!(resolve(Some("off")).unwrap(), None);
    assert_eq!(
        resolve(Some("6h")).unwrap(),
        Some(Duration::from_secs(6 * 3600))
    );
    for bad in ["30s", "often", ""] {
        let err = resolve(Some(bad)).unwrap_err().to_string();
        assert!(err.contains("--audit-every"), "{bad:?}: {err}");
    }
    let file: FileConfig = toml::from_str("audit_every = \"1h\"").unwrap();
    assert_eq!(file.audit_every.as_deref(), Some("1h"));
}

#[test]
fn the_s3_read_buffer_is_bounded() {
    let resolve = |n: Option<usize>| {
        let args = StoreArgs {
            storage: Some("s3://calls".into()),
            catalog: Some("sqlite:///tmp/playback-read-buffer-test.db".into()),
            s3_read_buffer: n,
            ..StoreArgs::default()
        };
        StoreConfig::resolve(&args, &FileConfig::default()).map(|c| match c.storage {
            StorageConfig::S3(o) => o.read_buffer,
            StorageConfig::Local { .. } => 0,
        })
    };
    assert_eq!(resolve(None).unwrap(), 256 * 1024);
    assert_eq!(resolve(Some(16_384)).unwrap(), 16_384);
    for bad in [0, 100, 5 * 1024 * 1024] {
        let err = resolve(Some(bad)).unwrap_err().to_string();
        assert!(err.contains("--s3-read-buffer"), "{bad}: {err}");
    }
}

#[test]
fn the_s3_ca_file_must_hold_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let resolve = |path: std::path::PathBuf| {
        let args = StoreArgs {
            storage: Some("s3://calls".into()),
            catalog: Some("sqlite:///tmp/playback-ca-file-test.db".into()),
            s3_ca_file: Some(path),
            ..StoreArgs::default()
        };
        StoreConfig::resolve(&args, &FileConfig::default()).map(|c| match c.storage {
            StorageConfig::S3(o) => o.extra_roots.len(),
            StorageConfig::Local { .. } => 0,
        })
    };
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    for (path, why) in [
        (dir.path().join("missing.pem"), "No such file"),
        (write("empty.pem", ""), "no certificate"),
        (
            write(
                "key.pem",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            ),
            "no certificate",
        ),
        (
            write(
                "garbled.pem",
                "-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n",
            ),
            "not a PEM",
        ),
        (
            write("binary.der", "\u{0}\u{1}\u{2}\u{ff}"),
            "no certificate",
        ),
    ] {
        let err = resolve(path.clone()).unwrap_err().to_string();
        assert!(
            err.contains("--s3-ca-file") && err.contains(why),
            "{}: {err}",
            path.display()
        );
    }
    // A certificate (base64 of any DER: the file's job is to hold one).
    let one = write(
        "ca.pem",
        "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
    );
    assert_eq!(resolve(one).unwrap(), 1);
}

#[test]
fn sizes_read_as_operators_write_them() {
    for (text, bytes) in [
        ("16MiB", 16 << 20),
        ("512 KiB", 512 << 10),
        ("1048576", 1 << 20),
        ("0", 0),
        ("2MB", 2_000_000),
    ] {
        assert_eq!(parse_size("x", text).unwrap(), bytes, "{text}");
    }
    for garbage in ["", "lots", "-1MiB", "16 MiBs", "1e999", "\u{0}", "16MiB16"] {
        let err = parse_size("--body-cache-size", garbage)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--body-cache-size"), "{garbage:?}: {err}");
    }
}

#[test]
fn the_body_cache_is_on_by_default_and_can_be_turned_off() {
    let with = |args: ServeArgs, file: &str| {
        let file: FileConfig = toml::from_str(&format!(
            "storage = \"s3://calls\"\ncatalog = \"sqlite://c.db\"\n{file}"
        ))
        .unwrap();
        Config::resolve(&args, &file).map(|c| c.cache.bodies)
    };
    assert_eq!(
        with(ServeArgs::default(), "").unwrap(),
        crate::storage::BodyCacheConfig::default()
    );
    let off = with(
        ServeArgs::default(),
        "body_cache_size = \"0\"\nbody_cache_max_object = \"1MiB\"",
    )
    .unwrap();
    assert_eq!((off.max_bytes, off.max_object), (0, 1 << 20));
    let args = ServeArgs {
        body_cache_size: Some("a little".into()),
        ..ServeArgs::default()
    };
    let err = with(args, "").unwrap_err().to_string();
    assert!(err.contains("PLAYBACK_GATEWAY_BODY_CACHE_SIZE"), "{err}");
}
