//! Policies as they were at a git revision (`ca-replay diff --base origin/main:policies`).
//!
//! In: a revision `REV:PATH` (or `REV`, meaning the head folder's own path in its repository)
//! and the head folder, whose repository the revision is resolved in. Out: the folder's files
//! written into a temporary folder that is removed when the [`Extracted`] is dropped. Only
//! read-only git plumbing runs (`rev-parse`, `cat-file`, `ls-tree`): the repository, its index
//! and its working tree are left as they are.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git revision `{spec}`: cannot run git ({source})\nhint: install git, or give the base policies as a folder")]
    NoGit {
        spec: String,
        source: std::io::Error,
    },
    #[error("`{spec}` is neither a folder nor a git revision: `{dir}` is not in a git repository (git said: {said})")]
    NotARepository {
        spec: String,
        dir: PathBuf,
        said: String,
    },
    #[error("git revision `{spec}`: git said: {said}")]
    Git { spec: String, said: String },
    #[error("git revision `{spec}` is a {kind}, not a folder of policies")]
    NotAFolder { spec: String, kind: String },
    #[error("git revision `{spec}`: `{entry}` is {what}; only regular files are read")]
    Entry {
        spec: String,
        entry: String,
        what: &'static str,
    },
    #[error("git revision `{spec}`: writing `{path}`: {source}")]
    Io {
        spec: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A revision's folder written out; the folder is removed on drop.
#[derive(Debug)]
pub struct Extracted {
    /// The temporary folder holding the files.
    pub path: PathBuf,
    /// The revision as resolved: `REV:PATH`.
    pub spec: String,
    /// The commit `REV` names, when it names one.
    pub commit: Option<String>,
    pub files: usize,
}

impl Drop for Extracted {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs `git -C dir args…`, feeding `input` on stdin; stdout, or git's first lines of stderr.
fn git(dir: &Path, args: &[&str], input: Option<Vec<u8>>) -> Result<Vec<u8>, GitFailure> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(GitFailure::Spawn)?;
    // Write stdin from another thread so that a full stdout pipe cannot block both sides.
    let writer = match (input, child.stdin.take()) {
        (Some(bytes), Some(mut stdin)) => Some(std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        })),
        _ => None,
    };
    let out = child.wait_with_output().map_err(GitFailure::Spawn)?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let said = String::from_utf8_lossy(&out.stderr);
        let said: Vec<&str> = said
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(3)
            .collect();
        Err(GitFailure::Said(if said.is_empty() {
            format!("exit status {}", out.status)
        } else {
            said.join(" / ")
        }))
    }
}

enum GitFailure {
    Spawn(std::io::Error),
    Said(String),
}

impl GitFailure {
    fn into_error(self, spec: &str) -> GitError {
        match self {
            GitFailure::Spawn(source) => GitError::NoGit {
                spec: spec.to_owned(),
                source,
            },
            GitFailure::Said(said) => GitError::Git {
                spec: spec.to_owned(),
                said,
            },
        }
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).trim().to_owned()
}

/// Resolves `rev` in the repository of `head` (a folder or file inside a work tree) and writes
/// the folder it names into a new temporary folder. `rev` is `REV:PATH` (PATH from the
/// repository's root) or `REV` (the head folder's own path at that revision).
pub fn extract(rev: &str, head: &Path) -> Result<Extracted, GitError> {
    if rev.starts_with('-') || rev.is_empty() {
        return Err(GitError::Git {
            spec: rev.to_owned(),
            said: "a revision cannot be empty or start with `-`".into(),
        });
    }
    let head_dir = if head.is_file() {
        head.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        head.to_path_buf()
    };
    let top = match git(&head_dir, &["rev-parse", "--show-toplevel"], None) {
        Ok(out) => PathBuf::from(text(out)),
        Err(GitFailure::Said(said)) => {
            return Err(GitError::NotARepository {
                spec: rev.to_owned(),
                dir: head_dir,
                said,
            })
        }
        Err(f) => return Err(f.into_error(rev)),
    };
    let spec = if rev.contains(':') {
        rev.to_owned()
    } else {
        format!(
            "{rev}:{}",
            relative(&top, head).map_err(|said| GitError::Git {
                spec: rev.to_owned(),
                said,
            })?
        )
    };
    let kind = text(git(&top, &["cat-file", "-t", &spec], None).map_err(|f| f.into_error(&spec))?);
    if kind != "tree" {
        return Err(GitError::NotAFolder { spec, kind });
    }
    let tree =
        text(git(&top, &["rev-parse", "--verify", &spec], None).map_err(|f| f.into_error(&spec))?);
    let rev_part = spec.split_once(':').map_or(spec.as_str(), |(r, _)| r);
    let commit = if rev_part.is_empty() {
        None
    } else {
        git(
            &top,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{rev_part}^{{commit}}"),
            ],
            None,
        )
        .ok()
        .map(text)
        .filter(|c| !c.is_empty())
    };
    let listing =
        git(&top, &["ls-tree", "-r", "-z", &tree], None).map_err(|f| f.into_error(&spec))?;
    let mut entries: Vec<(String, String)> = Vec::new();
    for item in listing.split(|b| *b == 0).filter(|i| !i.is_empty()) {
        // `<mode> SP <type> SP <object> TAB <path>`
        let item = String::from_utf8(item.to_vec()).map_err(|_| GitError::Entry {
            spec: spec.clone(),
            entry: String::from_utf8_lossy(item).into_owned(),
            what: "a name that is not UTF-8",
        })?;
        let Some((meta, name)) = item.split_once('\t') else {
            continue;
        };
        let fields: Vec<&str> = meta.split(' ').collect();
        let (mode, object) = match fields.as_slice() {
            [mode, _kind, object] => (*mode, *object),
            _ => continue,
        };
        let what = match mode {
            "100644" | "100755" => None,
            "120000" => Some("a symbolic link"),
            "160000" => Some("a submodule"),
            _ => Some("not a regular file"),
        };
        if let Some(what) = what {
            return Err(GitError::Entry {
                spec,
                entry: name.to_owned(),
                what,
            });
        }
        if Path::new(name)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(GitError::Entry {
                spec,
                entry: name.to_owned(),
                what: "a path outside the folder",
            });
        }
        entries.push((object.to_owned(), name.to_owned()));
    }
    let dir = temp_dir().map_err(|(path, source)| GitError::Io {
        spec: spec.clone(),
        path,
        source,
    })?;
    // From here on the folder is removed on any error (drop).
    let mut extracted = Extracted {
        path: dir,
        spec,
        commit,
        files: 0,
    };
    let input: Vec<u8> = entries
        .iter()
        .flat_map(|(object, _)| format!("{object}\n").into_bytes())
        .collect();
    let blobs = git(&top, &["cat-file", "--batch"], Some(input))
        .map_err(|f| f.into_error(&extracted.spec))?;
    let mut rest = blobs.as_slice();
    for (object, name) in &entries {
        let bad = |said: &str| GitError::Git {
            spec: extracted.spec.clone(),
            said: format!("reading `{name}` ({object}): {said}"),
        };
        let nl = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| bad("truncated output of cat-file"))?;
        let header = String::from_utf8_lossy(&rest[..nl]).into_owned();
        let size: usize = match header.split(' ').collect::<Vec<_>>().as_slice() {
            [_, "blob", size] => size.parse().map_err(|_| bad(&header))?,
            _ => return Err(bad(&header)),
        };
        let body = rest
            .get(nl + 1..nl + 1 + size)
            .ok_or_else(|| bad("truncated output of cat-file"))?;
        let path = extracted.path.join(name);
        let io = |source| GitError::Io {
            spec: extracted.spec.clone(),
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, body).map_err(io)?;
        rest = rest.get(nl + 1 + size + 1..).unwrap_or(&[]);
    }
    extracted.files = entries.len();
    Ok(extracted)
}

/// `path` relative to the repository root `top`, with `/` separators.
fn relative(top: &Path, path: &Path) -> Result<String, String> {
    let canon = |p: &Path| {
        p.canonicalize()
            .map_err(|e| format!("`{}`: {e}", p.display()))
    };
    let (top, path) = (canon(top)?, canon(path)?);
    let rel = path.strip_prefix(&top).map_err(|_| {
        format!(
            "`{}` is not inside the repository `{}`",
            path.display(),
            top.display()
        )
    })?;
    Ok(rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/"))
}

/// A new, empty folder under the system's temporary folder.
fn temp_dir() -> Result<PathBuf, (PathBuf, std::io::Error)> {
    static N: AtomicUsize = AtomicUsize::new(0);
    loop {
        let dir = std::env::temp_dir().join(format!(
            "ca-replay-base-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err((dir, e)),
        }
    }
}
