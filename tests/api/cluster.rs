//! Two gateway replicas, a PostgreSQL catalog and a distributed store: a
//! SeaweedFS master, two volume servers with every object on both
//! (replication `001`), and a filer with the S3 gateway, each its own
//! process on loopback. With one volume server stopped the recordings
//! still play through either replica; with both stopped the answer is 503
//! (or a cut stream), never a loss.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use playback_gateway::keys::Format;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{ADMIN_TOKEN, Backend, Options, spawn_app_with};
use crate::seaweed::{ACCESS_KEY, SECRET_KEY, free_base, weed_binary};

/// One SeaweedFS process under a shell that kills it when our end of its
/// stdin closes (on `stop`, on drop, or when the test process dies). It
/// is killed outright, as a crash would stop it (and a filer whose volume
/// servers are gone does not hurry to stop on SIGTERM).
struct Proc(Option<Child>);

impl Proc {
    fn start(args: &str, log: &std::path::Path) -> Self {
        let cmd = format!(
            "'{bin}' {args} >'{log}' 2>&1 & pid=$!; cat >/dev/null; kill -9 $pid; wait $pid",
            bin = weed_binary().display(),
            log = log.display(),
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting SeaweedFS");
        Self(Some(child))
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.0.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Cluster {
    s3: String,
    master_port: u16,
    volumes: Vec<Proc>,
    _filer: Proc,
    _master: Proc,
    dir: tempfile::TempDir,
}

fn wait_port(port: u16, what: &str, log: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not open port {port} in 30 s; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let identities = p("identities.json");
    write!(
        std::fs::File::create(&identities).unwrap(),
        r#"{{"identities":[{{"name":"tests","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
    )
    .unwrap();
    let base = free_base();
    let (master, v1, v2, filer, s3) = (base, base + 1, base + 2, base + 3, base + 4);
    for d in ["m", "v1", "v2", "f"] {
        std::fs::create_dir_all(p(d)).unwrap();
    }
    let local = "-ip=127.0.0.1 -ip.bind=127.0.0.1";
    let master_proc = Proc::start(
        &format!(
            "master {local} -port={master} -mdir='{}' -defaultReplication=001 \
             -volumeSizeLimitMB=64 -telemetry=false",
            p("m").display()
        ),
        &p("master.log"),
    );
    wait_port(master, "the master", &p("master.log"));
    let volumes = [(v1, "v1"), (v2, "v2")]
        .into_iter()
        .map(|(port, d)| {
            let log = p(&format!("{d}.log"));
            let proc = Proc::start(
                &format!(
                    "volume {local} -port={port} -dir='{}' -mserver=127.0.0.1:{master} -max=8 \
                     -dataCenter=dc1 -rack=rack1",
                    p(d).display()
                ),
                &log,
            );
            wait_port(port, "a volume server", &log);
            proc
        })
        .collect();
    let filer_proc = Proc::start(
        &format!(
            "filer {local} -port={filer} -master=127.0.0.1:{master} -defaultReplicaPlacement=001 \
             -defaultStoreDir='{}' -s3 -s3.port={s3} -s3.config='{}' -s3.port.iceberg=0 \
             -s3.port.lance=0",
            p("f").display(),
            identities.display()
        ),
        &p("filer.log"),
    );
    wait_port(s3, "the S3 gateway", &p("filer.log"));
    Cluster {
        s3: format!("http://127.0.0.1:{s3}"),
        master_port: master,
        volumes,
        _filer: filer_proc,
        _master: master_proc,
        dir,
    }
}

impl Cluster {
    fn logs(&self) -> String {
        ["master", "v1", "v2", "filer"]
            .iter()
            .map(|n| {
                let log = std::fs::read_to_string(self.dir.path().join(format!("{n}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                format!(
                    "== {n}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until the master knows both volume servers.
    async fn wait_for_volumes(&self) {
        let url = format!("http://127.0.0.1:{}/dir/status", self.master_port);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let body = reqwest::get(&url).await.ok().map(|r| r.text());
            let text = match body {
                Some(t) => t.await.unwrap_or_default(),
                None => String::new(),
            };
            if text.matches("\"Url\"").count() >= 2 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the volume servers never joined:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn two_replicas_over_a_replicated_store_play_with_one_volume_server_down_and_never_say_lost()
{
    let mut cluster = start_cluster();
    cluster.wait_for_volumes().await;
    // Two gateway replicas: one PostgreSQL catalog, one bucket and prefix.
    let catalog = crate::postgres::fresh_database().await;
    let prefix = format!("t-{}/", uuid::Uuid::new_v4().simple());
    let replica = || Options {
        store_endpoint: Some(cluster.s3.clone()),
        s3_prefix: Some(prefix.clone()),
        catalog_url: Some(catalog.clone()),
        ..Options::default()
    };
    let a = spawn_app_with(Backend::S3, replica()).await;
    let b = spawn_app_with(Backend::S3, replica()).await;
    let mut recordings = Vec::new();
    for len in [50_000, 120_000, 300_000] {
        recordings.push(a.seed(len).await);
    }
    for app in [&a, &b] {
        for s in &recordings {
            let res = app.get(&s.path(Format::Wav)).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(res.bytes().await.unwrap(), s.bytes, "{}", cluster.logs());
        }
    }

    // One volume server down: every recording still plays, whole, through
    // either replica.
    cluster.volumes[0].stop();
    for app in [&a, &b] {
        for s in &recordings {
            for f in Format::ALL {
                let res = app.get(&s.path(f)).send().await.unwrap();
                assert_eq!(
                    res.status(),
                    StatusCode::OK,
                    "{}\n{}",
                    s.path(f),
                    cluster.logs()
                );
                assert_eq!(res.bytes().await.unwrap(), s.bytes, "{}", s.path(f));
            }
        }
    }

    // Both down: the audio cannot be read. Never a loss: a 503 before the
    // headers, or a stream cut short (the headers were already sent).
    cluster.volumes[1].stop();
    for app in [&a, &b] {
        let flush = app
            .client
            .delete(app.url("/admin/cache"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(flush.status(), StatusCode::NO_CONTENT);
    }
    for (app, s) in [
        (&a, &recordings[0]),
        (&b, &recordings[1]),
        (&b, &recordings[2]),
    ] {
        let res = app.get(&s.path(Format::Mp3)).send().await.unwrap();
        let status = res.status();
        assert!(
            status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::OK,
            "{status}: {}",
            cluster.logs()
        );
        if status == StatusCode::OK {
            let body = res.bytes().await;
            assert!(
                body.as_ref().map_or(true, |b| *b != s.bytes),
                "whole audio served with every volume server down"
            );
        } else {
            assert!(res.headers().contains_key("retry-after"));
            let problem: Value = res.json().await.unwrap();
            assert_eq!(
                problem["type"], "/problems/storage_unavailable",
                "{problem}"
            );
        }
        let res = app
            .get(&format!("/recordings/{}", s.sid))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let verdict = body["availability"]["verdict"]
            .as_str()
            .unwrap_or("storage_unavailable");
        assert!(
            !["lost", "unexplained", "unknown"].contains(&verdict),
            "called {verdict} with the volume servers down: {body}"
        );
    }
}
