//! Local-directory backend: the embedded default, one file per key.

use std::io::{ErrorKind, SeekFrom};
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use futures_util::TryStreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{
    GetOptions, ListStream, Listed, Object, ObjectMeta, Storage, StorageError, key_is_safe,
};

/// Read buffer per stream: large enough for few syscalls, small enough that
/// thousands of concurrent streams stay within a modest memory budget.
const CHUNK: usize = 64 * 1024;

/// Recordings as files under a root directory.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        if !key_is_safe(key) {
            // Unreachable through the HTTP routes (sids are validated); a
            // bad key here is a bug or a bad key layout, not a missing file.
            return Err(StorageError::Misconfigured(format!("unsafe key {key:?}")));
        }
        Ok(self.root.join(key))
    }
}

/// A strong validator from size and modification time (as nginx and most
/// static servers do): a rewritten file gets a new tag.
fn meta_of(md: &std::fs::Metadata) -> ObjectMeta {
    let modified = md.modified().ok();
    let nanos = modified
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    ObjectMeta {
        size: md.len(),
        etag: format!("\"{:x}-{:x}\"", md.len(), nanos),
        last_modified: modified,
    }
}

fn io_error(err: std::io::Error, path: &std::path::Path) -> StorageError {
    match err.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory => StorageError::NotFound,
        ErrorKind::PermissionDenied => {
            StorageError::Misconfigured(format!("{}: {err}", path.display()))
        }
        _ => StorageError::Unavailable(format!("{}: {err}", path.display())),
    }
}

#[async_trait::async_trait]
impl Storage for LocalStorage {
    #[tracing::instrument(name = "storage.head", skip(self), err(level = "debug"))]
    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let path = self.path(key)?;
        let md = tokio::fs::metadata(&path)
            .await
            .map_err(|e| io_error(e, &path))?;
        if !md.is_file() {
            return Err(StorageError::NotFound);
        }
        Ok(meta_of(&md))
    }

    #[tracing::instrument(name = "storage.get", skip(self, opts), fields(range = ?opts.range), err(level = "debug"))]
    async fn get(&self, key: &str, opts: GetOptions<'_>) -> Result<Object, StorageError> {
        let path = self.path(key)?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| io_error(e, &path))?;
        // Validators come from the open handle, so a file replaced between
        // `head` and here is detected rather than served under a stale ETag.
        let md = file.metadata().await.map_err(|e| io_error(e, &path))?;
        if !md.is_file() {
            return Err(StorageError::NotFound);
        }
        let meta = meta_of(&md);
        if opts.if_match.is_some_and(|tag| tag != meta.etag) {
            return Err(StorageError::Changed);
        }
        let (start, len) = match opts.range {
            Some(r) if r.end < meta.size => (r.start, r.len()),
            Some(_) => return Err(StorageError::Changed),
            None => (0, meta.size),
        };
        if start > 0 {
            file.seek(SeekFrom::Start(start))
                .await
                .map_err(|e| io_error(e, &path))?;
        }
        let shown = path.display().to_string();
        let body = ReaderStream::with_capacity(file.take(len), CHUNK)
            .map_err(move |e| StorageError::Unavailable(format!("{shown}: {e}")));
        Ok(Object {
            meta,
            body: Box::pin(body),
        })
    }

    async fn check(&self) -> Result<(), StorageError> {
        let md = tokio::fs::metadata(&self.root)
            .await
            .map_err(|e| StorageError::Misconfigured(format!("{}: {e}", self.root.display())))?;
        if md.is_dir() {
            Ok(())
        } else {
            Err(StorageError::Misconfigured(format!(
                "{} is not a directory",
                self.root.display()
            )))
        }
    }

    fn describe(&self) -> String {
        format!("local directory {}", self.root.display())
    }

    fn list(&self, prefix: &str) -> ListStream {
        // A directory walk on a blocking thread, handing keys over through
        // a small channel: the reader's pace bounds what is held.
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let (root, prefix) = (self.root.clone(), prefix.to_owned());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = walk(&root, "", &prefix, &tx) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
    }
}

type Sender = tokio::sync::mpsc::Sender<Result<Listed, StorageError>>;

/// Sends the files under `root/dir` whose keys start with `prefix`, in
/// byte order of keys. Entries are sorted with a `/` after directory names,
/// as their keys continue: `a.wav` (`.` is 0x2E) comes before `a/x` (`/` is
/// 0x2F), though a plain sort of names would visit directory `a` first.
/// Returns early (without error) once the receiver is gone.
fn walk(root: &std::path::Path, dir: &str, prefix: &str, tx: &Sender) -> Result<(), StorageError> {
    if tx.is_closed() {
        return Ok(());
    }
    let path = root.join(dir);
    let entries = match std::fs::read_dir(&path) {
        Ok(entries) => entries,
        Err(e) if dir.is_empty() => {
            return Err(StorageError::Misconfigured(format!(
                "{}: {e}",
                path.display()
            )));
        }
        Err(e) => return Err(io_error(e, &path)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(e, &path))?;
        let kind = entry.file_type().map_err(|e| io_error(e, &path))?;
        // Keys are UTF-8; anything else is not one of ours.
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if kind.is_dir() {
            names.push((format!("{dir}{name}/"), true));
        } else if kind.is_file() {
            names.push((format!("{dir}{name}"), false));
        }
    }
    names.sort_unstable();
    for (key, is_dir) in names {
        if is_dir {
            // Only directories that can hold keys with the prefix.
            if key.starts_with(prefix) || prefix.starts_with(&key) {
                walk(root, &key, prefix, tx)?;
            }
            continue;
        }
        if !key.starts_with(prefix) {
            continue;
        }
        let md = std::fs::metadata(root.join(&key)).map_err(|e| io_error(e, &path))?;
        if tx
            .blocking_send(Ok(Listed {
                key,
                size: md.len(),
            }))
            .is_err()
        {
            return Ok(());
        }
    }
    Ok(())
}
