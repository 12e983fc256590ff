use super::*;

fn shipped() -> Incident {
    let (name, text) = BUILTIN[0];
    parse_toml(name, text).unwrap()
}

#[test]
fn the_shipped_incident_has_the_rca_facts() {
    let i = shipped();
    assert_eq!(i.id(), "2017-05-09");
    assert_eq!(i.spec.match_on, MatchOn::End);
    assert_eq!(i.spec.outcome, Outcome::PartiallyLost);
    assert_eq!(i.spec.status, IncidentStatus::Resolved);
    assert_eq!(
        i.spec.service.as_deref(),
        Some("Programmable Voice Recording")
    );
    assert_eq!(i.spec.communicated.as_deref(), Some("2017-05-11"));
    assert_eq!(i.window_local(), "2017-05-09 10:48–11:31 PDT");
    assert_eq!(i.window_utc(), "2017-05-09 17:48–18:31 UTC");
    assert_eq!(i.spec.corrective_actions.len(), 4);
    assert!(i.spec.notes.iter().any(|n| n.contains("attempted call")));
    assert!(i.spec.notes.iter().any(|n| n.contains("voicemail")));
}

fn with(edit: impl FnOnce(&mut IncidentSpec)) -> Result<Incident, InvalidIncident> {
    let mut spec = shipped().spec;
    edit(&mut spec);
    spec.validate(Origin::Admin)
}

#[test]
fn bad_definitions_name_the_field() {
    type Edit = Box<dyn FnOnce(&mut IncidentSpec)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("id", Box::new(|s| s.id = "../etc".into())),
        ("id", Box::new(|s| s.id = String::new())),
        ("title", Box::new(|s| s.title = "  ".into())),
        (
            "time_zone",
            Box::new(|s| s.time_zone = "Pacific/Atlantis".into()),
        ),
        ("starts", Box::new(|s| s.starts = "yesterday".into())),
        ("ends", Box::new(|s| s.ends = "2017-05-09T10:00:00".into())),
        // 01:30 happens twice on 2017-11-05 in Los Angeles.
        (
            "starts",
            Box::new(|s| {
                s.starts = "2017-11-05T01:30:00".into();
                s.ends = "2017-11-05T03:00:00".into();
            }),
        ),
        // 02:30 does not exist on 2017-03-12 in Los Angeles.
        (
            "ends",
            Box::new(|s| {
                s.starts = "2017-03-12T01:00:00".into();
                s.ends = "2017-03-12T02:30:00".into();
            }),
        ),
        (
            "communicated",
            Box::new(|s| s.communicated = Some("May 11".into())),
        ),
        (
            "links",
            Box::new(|s| s.links[0].href = "javascript:alert(1)".into()),
        ),
        (
            "links",
            Box::new(|s| s.links[0].href = "//evil.example/x".into()),
        ),
    ];
    for (field, edit) in cases {
        let err = with(edit).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
}

#[test]
fn only_links_to_this_site_or_to_http_urls_are_kept() {
    for bad in [
        "/\\evil.example/rca",
        "/\t/evil.example",
        "/\n/evil.example",
        "\\\\evil.example",
        "//evil.example",
        "javascript:alert(1)",
        "data:text/html,x",
        "evil.example/rca",
        "https://",
        "http:/evil.example",
        " https://status.example",
        "",
    ] {
        let err = with(|s| s.links[0].href = bad.into()).unwrap_err();
        assert_eq!(err.field, "links", "{bad:?}: {err}");
    }
    for good in [
        "/incidents/2017-05-09",
        "/",
        "/a\u{e9}?q=1#x",
        "https://status.example/rca",
        "http://intranet.example/rca",
    ] {
        assert!(with(|s| s.links[0].href = good.into()).is_ok(), "{good:?}");
    }
}

#[test]
fn garbage_toml_is_refused_with_the_file_name() {
    for text in ["", "id = 3", "nonsense", "id = \"x\"\nunknown_key = 1"] {
        let err = parse_toml("incidents/x.toml", text).unwrap_err();
        assert!(err.starts_with("incidents/x.toml"), "{err}");
    }
}

#[test]
fn windows_over_midnight_show_both_dates() {
    let i = with(|s| {
        s.starts = "2017-05-09T23:30:00".into();
        s.ends = "2017-05-10T00:30:00".into();
    })
    .unwrap();
    assert_eq!(i.window_local(), "2017-05-09 23:30 – 2017-05-10 00:30 PDT");
}
