//! `ca-replay generate`: a realistic synthetic tenant in the real export formats.
//!
//! In: a size (users, days or a sign-in count) and a seed. Out: a tenant folder (design.md
//! "Inputs") with Graph JSON directory files, Microsoft's template policies, legacy Identity
//! Protection settings, `ca-replay.toml`, and Graph `signIn` records as NDJSON, one file per
//! day. Sign-ins are first drawn as attempts, then passed through the tenant's *enabled*
//! policies with ca-replay's own engine, so that what the log shows is what enforcement would
//! have let through (blocked attempts fail with 53003, MFA prompts are answered or abandoned),
//! and `appliedConditionalAccessPolicies` holds each policy's result as Entra records it.
//!
//! The same options give byte-identical output. Work is split per day and per chunk of sign-ins,
//! each with its own random stream, and run in parallel (rayon); chunks are gzip members when
//! `--gzip` is on, so compression is parallel too.

pub mod rng;
pub mod tenant;
pub mod write;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use rayon::prelude::*;

use crate::domain::{ClientApp, Impact, Platform, PolicyState, RiskLevel};
use crate::engine::{self, combine, Env, Facts, SetKind};
use crate::ingest::columnar::{self, ColumnarError, SignInWriter};
use crate::policy::BuildOptions;
use crate::signin::{AppliedPolicy, Device, EventType, SignIn, Ustr};
use crate::tenant::Tenant;
use rng::Rng;
use tenant::{GenUser, Kind, OFFICES, TENANT_ID};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub users: usize,
    pub days: u32,
    pub seed: u64,
    /// Total sign-ins; default about 8 per user per working day.
    pub signins: Option<u64>,
    /// First day (UTC midnight).
    pub start: DateTime<Utc>,
    /// Write `.ndjson.gz` (parallel gzip members) instead of `.ndjson`.
    pub gzip: bool,
    /// The sign-in export format.
    pub format: Format,
}

/// Sign-in file formats the generator writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// Graph `signIn` records, NDJSON, one file per day (`signins-YYYY-MM-DD.ndjson`).
    #[default]
    Graph,
    /// Diagnostic-settings records (`properties` holds the sign-in), NDJSON as a storage account
    /// archives them, one file per day (`diagnostic-YYYY-MM-DD.json`).
    Diagnostic,
    /// ca-replay's own Parquet schema (`signins-YYYY-MM-DD.parquet`), through the streaming
    /// writer: the fast input for repeated runs and benches at scale.
    Parquet,
    /// The same schema as Arrow IPC (`signins-YYYY-MM-DD.arrow`).
    Arrow,
    /// Log Analytics rows (`SigninLogs`, `AADNonInteractiveUserSignInLogs`, …) as a query
    /// export writes them, NDJSON, one file per day (`loganalytics-YYYY-MM-DD.ndjson`).
    LogAnalytics,
    /// The Entra admin center's CSV downloads, one per day and kind, named as the portal names
    /// them (`InteractiveSignIns_…`, `NonInteractiveSignIns_…`, `ServicePrincipalSignIns_…`,
    /// `ManagedIdentitySignIns_…`). They lack what the CSV cannot carry
    /// (`ingest::portal_csv::CSV_CANNOT_CARRY`).
    PortalCsv,
}

/// The portal's download names and headers, by slot (see [`portal_slot`]).
const PORTAL_FILES: [&str; 4] = [
    "Interactive",
    "NonInteractive",
    "ServicePrincipal",
    "ManagedIdentity",
];
const PORTAL_HEADERS: [&[&str]; 4] = [
    crate::ingest::portal_csv::USER_HEADERS,
    crate::ingest::portal_csv::USER_HEADERS,
    crate::ingest::portal_csv::WORKLOAD_HEADERS,
    crate::ingest::portal_csv::WORKLOAD_HEADERS,
];

fn portal_slot(e: EventType) -> usize {
    match e {
        EventType::InteractiveUser => 0,
        EventType::NonInteractiveUser => 1,
        EventType::ServicePrincipal => 2,
        EventType::ManagedIdentity => 3,
    }
}

impl Format {
    fn columnar(self) -> Option<columnar::Format> {
        match self {
            Format::Parquet => Some(columnar::Format::Parquet),
            Format::Arrow => Some(columnar::Format::ArrowIpc),
            Format::Graph | Format::Diagnostic | Format::LogAnalytics | Format::PortalCsv => None,
        }
    }

    /// Files per day.
    fn slots(self) -> usize {
        if self == Format::PortalCsv {
            PORTAL_FILES.len()
        } else {
            1
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub users: usize,
    pub signins: u64,
    pub files: usize,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("`{0}` exists and was not written by `ca-replay generate` (no .ca-replay-generated marker); choose an empty or new folder")]
    NotOurs(PathBuf),
    #[error("writing `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the generated tenant does not load: {0}")]
    Tenant(#[from] crate::tenant::TenantError),
    #[error(transparent)]
    Columnar(#[from] ColumnarError),
}

const MARKER: &str = ".ca-replay-generated";
const CHUNK: usize = 8192;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> GenerateError + '_ {
    move |source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a tenant folder at `out`.
pub fn generate(out: &Path, o: &Options) -> Result<Summary, GenerateError> {
    prepare_folder(out)?;
    let (built, rng, mut summary) = write_tenant(out, o)?;
    let tenant = Tenant::load(out, BuildOptions::default())?;
    let model = Model::new(&built, &tenant);
    let per_day = day_counts(o);
    let (stem, ext) = match o.format {
        Format::Graph => ("signins", "ndjson"),
        Format::Diagnostic => ("diagnostic", "json"),
        Format::Parquet => ("signins", "parquet"),
        Format::Arrow => ("signins", "arrow"),
        Format::LogAnalytics => ("loganalytics", "ndjson"),
        Format::PortalCsv => ("", "csv"),
    };
    let gz = if o.gzip && o.format.columnar().is_none() {
        ".gz"
    } else {
        ""
    };
    // One file per day, or per day and event type for the portal's downloads (`slots` each).
    let slots = o.format.slots();
    let paths: Vec<PathBuf> = (0..per_day.len())
        .flat_map(|day| {
            let date = o.start + Duration::days(day as i64);
            let ymd = |d: DateTime<Utc>| format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
            (0..slots).map(move |slot| {
                if o.format == Format::PortalCsv {
                    out.join(format!(
                        "signins/{}SignIns_{}_{}.{ext}{gz}",
                        PORTAL_FILES[slot],
                        ymd(date),
                        ymd(date + Duration::days(1))
                    ))
                } else {
                    out.join(format!("signins/{stem}-{}.{ext}{gz}", ymd(date)))
                }
            })
        })
        .collect();
    let jobs = jobs(&rng, o, &per_day);
    if let Some(format) = o.format.columnar() {
        // Columnar files: encoding is the costly part and one writer is one thread, so days are
        // written in parallel, each by its own writer, its chunks in order.
        let bytes: Vec<Result<u64, GenerateError>> = paths
            .par_iter()
            .enumerate()
            .map(|(day, path)| {
                let mut w = SignInWriter::create(path, format)?;
                for (_, r, times) in jobs.iter().filter(|(d, _, _)| *d == day) {
                    let mut r = r.clone();
                    let rows: Vec<SignIn> =
                        times.iter().map(|t| model.signin(&mut r, *t)).collect();
                    w.write(&rows)?;
                }
                Ok(w.finish()?.bytes)
            })
            .collect();
        for b in bytes {
            summary.bytes += b?;
        }
        summary.files += paths.len();
        summary.signins += per_day.iter().sum::<usize>() as u64;
        return Ok(summary);
    }
    // Buffers go back to this pool once written (or compressed), and are rendered into again:
    // memory already mapped, instead of some 30 MB of fresh pages per chunk. It keeps at most
    // what three windows of chunks use (one rendered, one queued, one written). With `--gzip`
    // the text goes back once compressed, and the (small) compressed copies are not kept.
    let window = rayon::current_num_threads() * 2;
    let pool = std::sync::Mutex::new(Vec::<Vec<u8>>::new());
    let recycle = |mut buf: Vec<u8>| {
        buf.clear();
        if let Ok(mut p) = pool.lock() {
            if p.len() < 3 * window * slots {
                p.push(buf);
            }
        }
    };
    let buffer = |capacity: usize| {
        let mut buf = pool
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_default();
        buf.reserve(capacity);
        buf
    };
    let compress = |buf: Vec<u8>| {
        if o.gzip {
            let z = gzip(&buf);
            recycle(buf);
            z
        } else {
            buf
        }
    };
    let render = |(day, r, times): &Job| {
        let mut r = r.clone();
        let signins: Vec<SignIn> = times.iter().map(|t| model.signin(&mut r, *t)).collect();
        let mut bufs: Vec<Vec<u8>> = (0..slots)
            .map(|_| buffer(times.len() * 3600 / slots))
            .collect();
        if o.format == Format::PortalCsv {
            for s in &signins {
                let slot = portal_slot(s.event_type);
                write::portal_csv_row(s, PORTAL_HEADERS[slot], &mut bufs[slot]);
            }
        } else {
            let buf = &mut bufs[0];
            for s in &signins {
                match o.format {
                    Format::Diagnostic => write::diagnostic_json(s, buf),
                    Format::LogAnalytics => write::log_analytics_json(s, buf),
                    _ => write::signin_json(s, buf),
                }
                buf.push(b'\n');
            }
        }
        (*day, bufs.into_iter().map(compress).collect())
    };
    // A CSV file starts with its header (UTF-8 with a BOM, as the portal writes it).
    let headers: Vec<Vec<u8>> = (0..slots)
        .map(|slot| match o.format {
            Format::PortalCsv => compress(write::portal_csv_header(PORTAL_HEADERS[slot])),
            _ => Vec::new(),
        })
        .collect();
    // Render a window of chunks in parallel while the previous window is written.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(usize, Vec<Vec<u8>>)>>(1);
    let written = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let done = |buf: Vec<u8>| {
                if !o.gzip {
                    recycle(buf);
                }
            };
            write_days(&paths, &headers, rx, &done)
        });
        for w in jobs.chunks(window) {
            if tx.send(w.par_iter().map(render).collect()).is_err() {
                break;
            }
        }
        drop(tx);
        writer.join()
    });
    let bytes = match written {
        Ok(result) => result?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    summary.bytes += bytes;
    summary.files += paths.len();
    summary.signins += per_day.iter().sum::<usize>() as u64;
    Ok(summary)
}

/// One chunk of a day's sign-ins: its random stream and its times.
type Job = (usize, Rng, Vec<i64>);

/// Every chunk of every day, in output order, each with its own random stream (so the result
/// does not depend on scheduling).
fn jobs(rng: &Rng, o: &Options, per_day: &[usize]) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (day, count) in per_day.iter().enumerate() {
        let date = o.start + Duration::days(day as i64);
        let day_rng = rng.fork(day as u64 + 1);
        let times = day_times(&mut day_rng.fork(0), date, *count);
        for (c, chunk) in times.chunks(CHUNK).enumerate() {
            jobs.push((day, day_rng.fork(c as u64 + 1), chunk.to_vec()));
        }
    }
    jobs
}

/// Writes rendered chunks, in order, to their day's files (`headers.len()` per day, each
/// starting with its header); every day gets its files (maybe empty but for the header).
/// Written chunks are handed to `recycle`.
fn write_days(
    paths: &[PathBuf],
    headers: &[Vec<u8>],
    rx: std::sync::mpsc::Receiver<Vec<(usize, Vec<Vec<u8>>)>>,
    recycle: &(dyn Fn(Vec<u8>) + Sync),
) -> Result<u64, GenerateError> {
    type Files = Vec<std::io::BufWriter<std::fs::File>>;
    let slots = headers.len();
    let mut bytes = 0u64;
    let mut open = |day: usize| -> Result<Files, GenerateError> {
        (0..slots)
            .map(|slot| {
                let path = &paths[day * slots + slot];
                let mut f = std::io::BufWriter::with_capacity(
                    1 << 20,
                    std::fs::File::create(path).map_err(io(path))?,
                );
                f.write_all(&headers[slot]).map_err(io(path))?;
                bytes += headers[slot].len() as u64;
                Ok(f)
            })
            .collect()
    };
    let close = |day: usize, files: Files| -> Result<(), GenerateError> {
        for (slot, mut f) in files.into_iter().enumerate() {
            f.flush().map_err(io(&paths[day * slots + slot]))?;
        }
        Ok(())
    };
    let days = paths.len() / slots.max(1);
    let mut current = 0;
    let mut files = if days > 0 { open(0)? } else { Vec::new() };
    let mut written = 0u64;
    for window in rx {
        for (day, data) in window {
            while current < day {
                close(current, std::mem::take(&mut files))?;
                current += 1;
                files = open(current)?;
            }
            for (slot, (f, chunk)) in files.iter_mut().zip(data).enumerate() {
                f.write_all(&chunk)
                    .map_err(io(&paths[day * slots + slot]))?;
                written += chunk.len() as u64;
                recycle(chunk);
            }
        }
    }
    if days > 0 {
        close(current, files)?;
    }
    for day in current + 1..days {
        close(day, open(day)?)?;
    }
    Ok(bytes + written)
}

/// The sign-ins that `generate` writes for `users`, `count` and `seed` over 7 days from
/// 2026-11-02, in memory and in the same order (for tests and benches). The tenant files go to
/// a scratch folder under the system temp dir, removed again: the model draws from the loaded
/// tenant.
pub fn sample_signins(users: usize, count: u64, seed: u64) -> Result<Vec<SignIn>, GenerateError> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let o = Options {
        users,
        days: 7,
        seed,
        signins: Some(count),
        start: Utc
            .with_ymd_and_hms(2026, 11, 2, 0, 0, 0)
            .single()
            .unwrap_or_default(),
        gzip: false,
        format: Format::Graph,
    };
    let dir = std::env::temp_dir().join(format!(
        "ca-replay-sample-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let drawn = (|| {
        prepare_folder(&dir)?;
        let (built, rng, _) = write_tenant(&dir, &o)?;
        let tenant = Tenant::load(&dir, BuildOptions::default())?;
        let model = Model::new(&built, &tenant);
        let chunks: Vec<Vec<SignIn>> = jobs(&rng, &o, &day_counts(&o))
            .par_iter()
            .map(|(_, r, times)| {
                let mut r = r.clone();
                times.iter().map(|t| model.signin(&mut r, *t)).collect()
            })
            .collect();
        Ok(chunks.into_iter().flatten().collect())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    drawn
}

/// Writes the directory files, policies, `ca-replay.toml` and the marker; returns the built
/// tenant and the random stream the sign-ins are drawn from.
fn write_tenant(
    out: &Path,
    o: &Options,
) -> Result<(tenant::Generated, Rng, Summary), GenerateError> {
    let mut rng = Rng::new(o.seed);
    let built = tenant::build(&mut rng, o.users, o.start);
    let mut summary = Summary {
        users: built.users.len(),
        ..Summary::default()
    };
    for (name, value) in &built.files {
        let path = out.join(name);
        let mut text = serde_json::to_vec_pretty(value).map_err(|e| GenerateError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        text.push(b'\n');
        write_file(&path, &text)?;
        summary.files += 1;
        summary.bytes += text.len() as u64;
    }
    let bg: Vec<&str> = built
        .users
        .iter()
        .filter(|u| u.kind == Kind::BreakGlass)
        .map(|u| u.upn.as_str())
        .collect();
    let toml = format!(
        "# Settings for this generated tenant (see the README of ca-replay).\n\
         [break_glass]\nusers = [{}]\ngroups = []\n\n\
         [locations]\n# The legacy MFA service's trusted IPs (IPv4 only).\nmfa_trusted_ips = [\"100.64.10.0/28\"]\n",
        bg.iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    write_file(&out.join("ca-replay.toml"), toml.as_bytes())?;
    write_file(&out.join(MARKER), b"written by ca-replay generate\n")?;
    Ok((built, rng, summary))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 6),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

fn prepare_folder(out: &Path) -> Result<(), GenerateError> {
    if out.exists() {
        let empty = std::fs::read_dir(out).map_err(io(out))?.next().is_none();
        if !empty && !out.join(MARKER).exists() {
            return Err(GenerateError::NotOurs(out.to_path_buf()));
        }
        for sub in ["signins", "policies"] {
            let p = out.join(sub);
            if p.exists() {
                std::fs::remove_dir_all(&p).map_err(io(&p))?;
            }
        }
    }
    for sub in ["signins", "policies"] {
        let p = out.join(sub);
        std::fs::create_dir_all(&p).map_err(io(&p))?;
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), GenerateError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(path, bytes).map_err(io(path))
}

/// Sign-ins per day: weekdays busier than weekends.
fn day_counts(o: &Options) -> Vec<usize> {
    let days = o.days.max(1) as usize;
    let weights: Vec<f64> = (0..days)
        .map(|d| {
            let wd = (o.start + Duration::days(d as i64))
                .weekday()
                .number_from_monday();
            if wd >= 6 {
                0.35
            } else {
                1.0
            }
        })
        .collect();
    let total = o.signins.unwrap_or_else(|| {
        let working: f64 = weights.iter().sum();
        (o.users as f64 * 8.0 * working) as u64
    });
    let sum: f64 = weights.iter().sum();
    let mut counts: Vec<usize> = weights
        .iter()
        .map(|w| (total as f64 * w / sum) as usize)
        .collect();
    let assigned: usize = counts.iter().sum();
    if let Some(last) = counts.last_mut() {
        *last += (total as usize).saturating_sub(assigned);
    }
    counts
}

/// Sorted times in one day, denser in working hours (UTC+1 office day).
fn day_times(r: &mut Rng, date: DateTime<Utc>, count: usize) -> Vec<i64> {
    const HOURS: [f64; 24] = [
        0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.8, 1.6, 2.4, 2.6, 2.5, 2.3, 2.0, 2.4, 2.5, 2.3, 2.0, 1.5,
        1.0, 0.8, 0.7, 0.5, 0.4, 0.3,
    ];
    let base = date.timestamp();
    let mut t: Vec<i64> = (0..count)
        .map(|_| base + r.weighted(&HOURS) as i64 * 3600 + r.below(3600) as i64)
        .collect();
    t.sort_unstable();
    t
}

struct App {
    app_id: &'static str,
    app_name: &'static str,
    resource_id: &'static str,
    resource_name: &'static str,
    client: ClientKind,
}

#[derive(Clone, Copy, PartialEq)]
enum ClientKind {
    Browser,
    Native,
}

const APPS: [App; 9] = [
    App {
        app_id: "5d661950-3475-41cd-a2c3-d671a3162bc1",
        app_name: "Microsoft Outlook",
        resource_id: "00000002-0000-0ff1-ce00-000000000000",
        resource_name: "Office 365 Exchange Online",
        client: ClientKind::Native,
    },
    App {
        app_id: "00000002-0000-0ff1-ce00-000000000000",
        app_name: "Office 365 Exchange Online",
        resource_id: "00000002-0000-0ff1-ce00-000000000000",
        resource_name: "Office 365 Exchange Online",
        client: ClientKind::Browser,
    },
    App {
        app_id: "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
        app_name: "Microsoft Teams",
        resource_id: "00000003-0000-0ff1-ce00-000000000000",
        resource_name: "Office 365 SharePoint Online",
        client: ClientKind::Native,
    },
    App {
        app_id: "00000003-0000-0ff1-ce00-000000000000",
        app_name: "Office 365 SharePoint Online",
        resource_id: "00000003-0000-0ff1-ce00-000000000000",
        resource_name: "Office 365 SharePoint Online",
        client: ClientKind::Browser,
    },
    App {
        app_id: "ab9b8c07-8f02-4f72-87fa-80105867a763",
        app_name: "OneDrive SyncEngine",
        resource_id: "00000003-0000-0ff1-ce00-000000000000",
        resource_name: "Office 365 SharePoint Online",
        client: ClientKind::Native,
    },
    App {
        app_id: "4765445b-32c6-49b0-83e6-1d93765276ca",
        app_name: "OfficeHome",
        resource_id: "00000003-0000-0000-c000-000000000000",
        resource_name: "Microsoft Graph",
        client: ClientKind::Browser,
    },
    App {
        app_id: "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
        app_name: "Azure Portal",
        resource_id: "797f4846-ba00-4fd7-ba43-dac1f8f63013",
        resource_name: "Windows Azure Service Management API",
        client: ClientKind::Browser,
    },
    App {
        app_id: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        app_name: "Microsoft Azure CLI",
        resource_id: "797f4846-ba00-4fd7-ba43-dac1f8f63013",
        resource_name: "Windows Azure Service Management API",
        client: ClientKind::Native,
    },
    App {
        app_id: "8f3b2c10-6d4e-4a5b-9c7d-1e2f3a4b5c6d",
        app_name: "Contoso Expenses",
        resource_id: "8f3b2c10-6d4e-4a5b-9c7d-1e2f3a4b5c6d",
        resource_name: "Contoso Expenses",
        client: ClientKind::Browser,
    },
];
const APP_WEIGHTS: [f64; 9] = [22.0, 6.0, 24.0, 9.0, 12.0, 8.0, 1.5, 0.8, 3.0];
const LEGACY: [&str; 5] = [
    "Exchange ActiveSync",
    "IMAP4",
    "POP3",
    "Authenticated SMTP",
    "Exchange Web Services",
];
const TRAVEL: [(&str, &str); 6] = [
    ("DE", "Munich"),
    ("GB", "London"),
    ("FR", "Paris"),
    ("US", "New York"),
    ("ES", "Madrid"),
    ("BE", "Brussels"),
];

/// `s` interned, once per thread: a look-up by address instead of hashing the text under the
/// interner's lock (the model sets some 30 such fields per sign-in).
fn sym(s: &'static str) -> Ustr {
    thread_local! {
        static SYMS: std::cell::RefCell<rustc_hash::FxHashMap<(usize, usize), Ustr>> =
            Default::default();
    }
    SYMS.with(|m| {
        *m.borrow_mut()
            .entry((s.as_ptr() as usize, s.len()))
            .or_insert_with(|| Ustr::from(s))
    })
}

/// A generated user's text as the sign-ins record it, interned once.
struct UserSyms {
    id: Ustr,
    upn: Ustr,
    display_name: Ustr,
    home_tenant: Ustr,
    /// The laptop's device id and display name (empty when it is not registered).
    laptop: (Ustr, Ustr),
    /// The phone's device id and display name (empty when it is not registered).
    phone: (Ustr, Ustr),
}

impl UserSyms {
    fn new(u: &GenUser) -> UserSyms {
        UserSyms {
            id: Ustr::from(&u.id),
            upn: Ustr::from(&u.upn),
            display_name: Ustr::from(&u.display_name),
            home_tenant: Ustr::from(&u.home_tenant),
            laptop: u
                .laptop
                .as_ref()
                .map(|l| {
                    let name = if l.device_id.is_empty() {
                        Ustr::default()
                    } else {
                        Ustr::from(&l.name)
                    };
                    (Ustr::from(&l.device_id), name)
                })
                .unwrap_or_default(),
            phone: match &u.phone {
                Some((_, Some((id, _)))) => (
                    Ustr::from(id),
                    Ustr::from(&format!("{}'s phone", u.display_name)),
                ),
                _ => Default::default(),
            },
        }
    }
}

/// Buckets of `Model::guide`.
const GUIDE: usize = 4096;

/// Operating systems of sign-ins from unknown devices.
const UNKNOWN_OS: [&str; 6] = [
    "Windows10",
    "MacOs",
    "Ios 17.6.1",
    "Android 14",
    "Linux",
    "",
];

/// Everything a chunk needs to draw sign-ins: read-only, shared by the threads.
struct Model<'a> {
    users: &'a [GenUser],
    user_syms: Vec<UserSyms>,
    cumulative: Vec<f64>,
    /// The service principals' ids and names, interned.
    sp_syms: Vec<(Ustr, Ustr)>,
    /// `GUIDE + 1` bucket edges over `cumulative` (0 to the total), each with
    /// `cumulative.partition_point(|c| *c <= edge)`: where `pick_user` starts and ends its search.
    guide: Vec<(f64, usize)>,
    /// An empty sign-in, cloned for each new one (`SignIn::default` interns every empty field).
    blank: SignIn,
    /// `Platform::detect` of the (operating system, user agent) pairs the model writes.
    platforms: rustc_hash::FxHashMap<(Ustr, Ustr), Platform>,
    tenant: &'a Tenant,
    clocks: std::collections::HashMap<String, i64>,
    /// Per policy of the set: its id (lower-cased), name and grant names as the log records
    /// them, interned once rather than for every sign-in.
    recorded: Vec<(Ustr, Ustr, Vec<Ustr>)>,
}

impl<'a> Model<'a> {
    fn new(built: &'a tenant::Generated, tenant: &'a Tenant) -> Model<'a> {
        let mut acc = 0.0;
        let cumulative: Vec<f64> = built
            .users
            .iter()
            .map(|u| {
                acc += u.activity;
                acc
            })
            .collect();
        // Every operating system and user agent the model can write, for `platforms`.
        let mut systems: Vec<&str> = UNKNOWN_OS.to_vec();
        for u in &built.users {
            systems.extend(u.laptop.as_ref().map(|l| l.os));
            systems.extend(u.phone.as_ref().map(|(os, _)| *os));
        }
        let mut platforms = rustc_hash::FxHashMap::default();
        for os in systems {
            for agent in ["", user_agent(os)] {
                platforms
                    .entry((Ustr::from(os), Ustr::from(agent)))
                    .or_insert_with(|| Platform::detect(os, agent));
            }
        }
        let total = cumulative.last().copied().unwrap_or(1.0);
        let guide = (0..=GUIDE)
            .map(|b| {
                let edge = if b == GUIDE {
                    f64::INFINITY
                } else {
                    total * b as f64 / GUIDE as f64
                };
                (edge, cumulative.partition_point(|c| *c <= edge))
            })
            .collect();
        Model {
            users: &built.users,
            guide,
            user_syms: built.users.iter().map(UserSyms::new).collect(),
            cumulative,
            sp_syms: built
                .service_principals
                .iter()
                .map(|(id, name)| (Ustr::from(id), Ustr::from(name)))
                .collect(),
            blank: SignIn::default(),
            platforms,
            tenant,
            clocks: Default::default(),
            recorded: tenant
                .set
                .policies
                .iter()
                .map(|p| {
                    (
                        crate::signin::lower_sym(&p.id),
                        Ustr::from(&p.display_name),
                        crate::signin::syms(grant_names(p)),
                    )
                })
                .collect(),
        }
    }

    /// A user, by activity: the user and its interned text.
    fn pick_user(&self, r: &mut Rng) -> (&'a GenUser, &UserSyms) {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = r.unit() * total;
        // `cumulative.partition_point(|c| *c <= x)`, searched only between the guide's bounds
        // for x's bucket (the same index: the guide holds that search's result at each bucket
        // edge, and the search is monotonic in x).
        let b = ((x / total * GUIDE as f64) as usize).min(GUIDE - 1);
        let (lo, hi) = match (self.guide.get(b), self.guide.get(b + 1)) {
            (Some(&(edge_lo, lo)), Some(&(edge_hi, hi))) if edge_lo <= x && x < edge_hi => (lo, hi),
            _ => (0, self.cumulative.len()),
        };
        let i =
            (lo + self.cumulative[lo..hi].partition_point(|c| *c <= x)).min(self.users.len() - 1);
        (&self.users[i], &self.user_syms[i])
    }

    /// One sign-in at time `t`: an attempt, then what enforcement made of it.
    fn signin(&self, r: &mut Rng, t: i64) -> SignIn {
        let mut s = if r.chance(0.035) {
            self.workload_signin(r)
        } else {
            self.user_signin(r)
        };
        s.id = r.guid();
        s.correlation_id = r.guid();
        s.created_at = Utc.timestamp_opt(t, 0).single().unwrap_or_default();
        s.client_app = ClientApp::from_client_app_used(&s.client_app_used);
        s.platform = match self
            .platforms
            .get(&(s.device.operating_system, s.user_agent))
        {
            Some(p) => *p,
            None => Platform::detect(&s.device.operating_system, &s.user_agent),
        };
        self.enforce(r, &mut s);
        s
    }

    fn workload_signin(&self, r: &mut Rng) -> SignIn {
        let (sp, name) = *r.pick(&self.sp_syms);
        let managed = r.chance(0.2);
        SignIn {
            event_type: if managed {
                EventType::ManagedIdentity
            } else {
                EventType::ServicePrincipal
            },
            service_principal_id: sp,
            app_id: sp,
            app_display_name: name,
            resource_id: sym("00000003-0000-0000-c000-000000000000"),
            resource_display_name: sym("Microsoft Graph"),
            resource_tenant_id: sym(TENANT_ID),
            home_tenant_id: sym(TENANT_ID),
            ip_address: Some(IpAddr::V4(Ipv4Addr::new(
                20,
                50,
                r.below(255) as u8,
                1 + r.below(250) as u8,
            ))),
            country: sym("NL"),
            ..self.blank.clone()
        }
    }

    fn user_signin(&self, r: &mut Rng) -> SignIn {
        let (u, us) = self.pick_user(r);
        let mut s = SignIn {
            user_id: us.id,
            user_principal_name: us.upn,
            user_display_name: us.display_name,
            home_tenant_id: us.home_tenant,
            resource_tenant_id: sym(TENANT_ID),
            user_type: if matches!(u.kind, Kind::Guest | Kind::InternalGuest) {
                sym("guest")
            } else {
                sym("member")
            },
            cross_tenant_access_type: if matches!(u.kind, Kind::Guest | Kind::ExternalMember) {
                sym("b2bCollaboration")
            } else {
                sym("none")
            },
            ..self.blank.clone()
        };
        // What and how: a legacy protocol tail, mostly from service accounts.
        let legacy_p = if u.kind == Kind::Service { 0.45 } else { 0.01 };
        let app = if r.chance(legacy_p) {
            s.client_app_used = sym(LEGACY[r.below(LEGACY.len())]);
            &APPS[0]
        } else {
            let mut i = r.weighted(&APP_WEIGHTS);
            if matches!(i, 6 | 7)
                && !matches!(u.kind, Kind::Admin | Kind::BreakGlass)
                && r.chance(0.8)
            {
                i = 3;
            }
            let a = &APPS[i];
            s.client_app_used = match a.client {
                ClientKind::Browser => sym("Browser"),
                ClientKind::Native => sym("Mobile Apps and Desktop clients"),
            };
            a
        };
        s.app_id = sym(app.app_id);
        s.app_display_name = sym(app.app_name);
        s.resource_id = sym(app.resource_id);
        s.resource_display_name = sym(app.resource_name);
        // Security info registration, mostly by users who have not registered yet.
        if r.chance(if u.registered { 0.002 } else { 0.04 }) {
            s.auth_context = vec![sym("urn:user:registersecurityinfo")];
            s.app_id = sym("19db86c3-b2b9-44cc-b339-36da233a3be2");
            s.app_display_name = sym("My Signins");
            s.client_app_used = sym("Browser");
        }

        // Device: the corporate laptop, the phone, or an unknown browser.
        let on_phone = s.client_app_used == "Mobile Apps and Desktop clients" && r.chance(0.45)
            || u.laptop.is_none() && r.chance(0.5);
        s.device = match (&u.laptop, &u.phone, on_phone) {
            (_, Some((os, reg)), true) => Device {
                device_id: us.phone.0,
                display_name: us.phone.1,
                operating_system: sym(os),
                browser: sym(if os.starts_with("Ios") {
                    "Mobile Safari"
                } else {
                    "Chrome Mobile 128.0"
                }),
                is_compliant: Some(reg.as_ref().is_some_and(|(_, c)| *c)),
                is_managed: Some(reg.as_ref().is_some_and(|(_, c)| *c)),
                trust_type: sym(if reg.is_some() {
                    "Azure AD registered"
                } else {
                    ""
                }),
            },
            (Some(l), _, _) if r.chance(0.9) => Device {
                device_id: us.laptop.0,
                display_name: us.laptop.1,
                operating_system: sym(l.os),
                browser: sym(if l.os == "MacOs" {
                    "Safari 17.6"
                } else {
                    "Edge 130.0.0"
                }),
                is_compliant: Some(l.compliant),
                is_managed: Some(l.compliant),
                trust_type: sym(l.trust_type),
            },
            _ => Device {
                operating_system: sym(UNKNOWN_OS[r.below(UNKNOWN_OS.len())]),
                browser: sym("Chrome 130.0.0"),
                is_compliant: Some(false),
                is_managed: Some(false),
                ..self.blank.device.clone()
            },
        };
        if s.client_app_used == "Browser" {
            s.user_agent = sym(user_agent(&s.device.operating_system));
        }

        // Where: office, VPN, home, travel, and a rare sign-in from a blocked country.
        let where_ = r.weighted(&[55.0, 8.0, 25.0, 10.0, 0.2]);
        let (ip, country, city) = match where_ {
            0 => {
                let o = &OFFICES[u.office];
                let [a, b, c] = o.ip_base;
                if u.office == 0 && r.chance(0.15) {
                    (
                        IpAddr::V6(Ipv6Addr::new(
                            0x2001,
                            0xdb8,
                            0x100,
                            0,
                            0,
                            0,
                            0,
                            1 + r.below(9000) as u16,
                        )),
                        o.country,
                        o.city,
                    )
                } else {
                    (
                        IpAddr::V4(Ipv4Addr::new(a, b, c, 1 + r.below(250) as u8)),
                        o.country,
                        o.city,
                    )
                }
            }
            1 => (
                IpAddr::V4(Ipv4Addr::new(100, 64, 10, 1 + r.below(14) as u8)),
                "NL",
                "Amsterdam",
            ),
            2 => (
                IpAddr::V4(Ipv4Addr::new(
                    84 + r.below(8) as u8,
                    r.below(255) as u8,
                    r.below(255) as u8,
                    1 + r.below(250) as u8,
                )),
                OFFICES[u.office].country,
                OFFICES[u.office].city,
            ),
            3 => {
                let (c, city) = *r.pick(&TRAVEL);
                (
                    IpAddr::V4(Ipv4Addr::new(
                        145 + r.below(40) as u8,
                        r.below(255) as u8,
                        r.below(255) as u8,
                        1 + r.below(250) as u8,
                    )),
                    c,
                    city,
                )
            }
            _ => (
                IpAddr::V4(Ipv4Addr::new(5, 160, r.below(255) as u8, 9)),
                *r.pick(&["IR", "RU"]),
                "",
            ),
        };
        s.ip_address = Some(ip);
        s.country = sym(country);
        let _ = city;

        // Interactive or a token refresh; risk; MFA already in the session; failures.
        let interactive = r.chance(if u.kind == Kind::Service { 0.9 } else { 0.32 });
        s.event_type = if interactive {
            EventType::InteractiveUser
        } else {
            EventType::NonInteractiveUser
        };
        s.is_interactive = interactive;
        s.sign_in_risk = Some(match r.weighted(&[985.0, 9.0, 4.5, 1.5]) {
            0 => RiskLevel::None,
            1 => RiskLevel::Low,
            2 => RiskLevel::Medium,
            _ => RiskLevel::High,
        });
        if where_ == 4 {
            s.sign_in_risk = Some(RiskLevel::High);
        }
        s.risk_level_aggregated = s.sign_in_risk;
        // (`client_app` is derived later, in `signin`: read the logged client here.)
        let legacy = ClientApp::from_client_app_used(&s.client_app_used).is_legacy();
        s.mfa_satisfied = u.registered && !legacy && r.chance(0.35);
        s.authentication_methods = if s.mfa_satisfied {
            vec![sym("Previously satisfied")]
        } else {
            vec![sym("Password")]
        };
        if r.chance(0.03) {
            s.error_code = if r.chance(0.9) { 50126 } else { 50053 };
            s.mfa_satisfied = false;
            s.authentication_methods.clear();
        }
        s
    }

    /// Applies the enabled policies to an attempt, then records every policy's result.
    fn enforce(&self, r: &mut Rng, s: &mut SignIn) {
        let set = &self.tenant.set;
        let env = Env {
            dir: &self.tenant.dir,
            set,
            apps: &self.tenant.apps,
            registration_clocks: &self.clocks,
        };
        if engine::not_evaluated(s).is_some() {
            s.failure_reason = sym(failure_text(s.error_code));
            return;
        }
        let evals = |s: &SignIn| -> Vec<Option<engine::Evaluation>> {
            let mut e = Vec::with_capacity(set.policies.len());
            crate::replay::evaluate_set(&env, &Facts::prepare(&env, s, false), &mut e);
            e
        };
        let mut e = evals(s);
        let outcome = combine(set, &e, SetKind::Current);
        match outcome.impact {
            Impact::Blocked => s.error_code = 53003,
            Impact::MfaPrompt | Impact::PasswordChange if r.chance(0.93) => {
                s.mfa_satisfied = true;
                s.authentication_methods = vec![sym("Password"), sym("Mobile app notification")];
                // What the engine reads changed: the MFA claim, which only grant controls look
                // at. So a policy whose conditions did not match still does not apply; the
                // others are evaluated again. (The new error codes are not first-factor
                // failures, and no condition reads them.)
                let f = Facts::prepare(&env, s, false);
                for (p, ev) in set.policies.iter().zip(e.iter_mut()) {
                    if let Some(ev) = ev.as_mut().filter(|ev| ev.applies != Some(false)) {
                        engine::evaluate_into(&env, p, &f, ev);
                    }
                }
            }
            Impact::MfaPrompt | Impact::PasswordChange => s.error_code = 500121,
            Impact::InteractiveReauth => s.error_code = 50076,
            Impact::MfaRegistration => s.error_code = 50079,
            _ => {}
        }
        debug_assert!(
            e == evals(s),
            "evaluating again only where the sign-in's change can matter missed a difference"
        );
        s.failure_reason = sym(failure_text(s.error_code));
        let ca_failed = matches!(s.error_code, 53003 | 500121 | 50076 | 50079);
        s.authentication_requirement = if s.mfa_satisfied && s.error_code == 0 {
            sym("multiFactorAuthentication")
        } else {
            sym("singleFactorAuthentication")
        };
        for ((p, ev), (id, name, grant)) in set.policies.iter().zip(&e).zip(&self.recorded) {
            if p.kind != crate::policy::compiled::PolicyKind::ConditionalAccess {
                continue;
            }
            let result = match (p.state, ev) {
                (PolicyState::Disabled, _) | (_, None) => continue,
                (PolicyState::Enabled, Some(ev)) => match ev.impact {
                    Impact::NotApplied => "notApplied",
                    Impact::Satisfied | Impact::RegistrationNudge | Impact::Indeterminate => {
                        "success"
                    }
                    _ if ca_failed => "failure",
                    _ => "success",
                },
                (_, Some(ev)) if ev.impact == Impact::Indeterminate => "reportOnlyNotApplied",
                (_, Some(ev)) => ev.impact.result_word(),
            };
            let grants: Vec<Ustr> = if result.ends_with("otApplied") {
                Vec::new()
            } else {
                grant.clone()
            };
            s.applied_policies.push(AppliedPolicy {
                id: *id,
                display_name: *name,
                result: sym(result),
                enforced_grant_controls: grants,
                conditions_satisfied: None,
                conditions_not_satisfied: None,
            });
        }
    }
}

fn grant_names(p: &crate::policy::compiled::CompiledPolicy) -> Vec<String> {
    use crate::policy::compiled::Control;
    let mut out = Vec::new();
    if p.grant.block {
        out.push("Block".to_owned());
    }
    for c in &p.grant.controls {
        out.push(
            match c {
                Control::Mfa => "Mfa",
                Control::CompliantDevice => "RequireCompliantDevice",
                Control::DomainJoinedDevice => "RequireDomainJoinedDevice",
                Control::PasswordChange => "PasswordChange",
                _ => "Other",
            }
            .to_owned(),
        );
    }
    out
}

fn failure_text(code: i64) -> &'static str {
    match code {
        0 => "Other.",
        50126 => "Error validating credentials due to invalid username or password.",
        50053 => "The account is locked, you've tried to sign in too many times with an incorrect user ID or password.",
        53003 => "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
        500121 => "Authentication failed during strong authentication request.",
        50076 => "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access.",
        50079 => "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access.",
        _ => "Other.",
    }
}

fn user_agent(os: &str) -> &'static str {
    if os.starts_with("Ios") {
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1"
    } else if os.starts_with("Android") {
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Mobile Safari/537.36"
    } else if os == "MacOs" {
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15"
    } else if os == "Linux" {
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
    } else {
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn scratch() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ca-replay-generate-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn options(seed: u64) -> Options {
        Options {
            users: 60,
            days: 3,
            seed,
            signins: Some(2500),
            start: Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap(),
            gzip: true,
            format: Format::Graph,
        }
    }

    fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out: Vec<(PathBuf, Vec<u8>)> = crate::source::files_under(dir)
            .unwrap()
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p.strip_prefix(dir).unwrap().to_path_buf(), bytes)
            })
            .collect();
        out.sort();
        out
    }

    /// A generated tenant, written once for the tests that draw sign-ins from it.
    fn shared() -> &'static (tenant::Generated, Tenant) {
        static T: std::sync::OnceLock<(tenant::Generated, Tenant)> = std::sync::OnceLock::new();
        T.get_or_init(|| {
            let dir = scratch();
            generate(&dir, &options(3)).unwrap();
            let built = tenant::build(&mut Rng::new(3), 60, options(3).start);
            let tenant = Tenant::load(&dir, BuildOptions::default()).unwrap();
            let _ = std::fs::remove_dir_all(&dir);
            (built, tenant)
        })
    }

    fn read_back(s: &SignIn, write: fn(&SignIn, &mut Vec<u8>)) -> SignIn {
        let mut buf = Vec::new();
        write(s, &mut buf);
        let text = String::from_utf8(buf).unwrap();
        crate::ingest::graph::parse_signin_text(&text, None)
            .unwrap_or_else(|e| panic!("{e:?} in {text}"))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Generated sign-ins written in each format ca-replay writes read back as the same `SignIn`.
        #[test]
        fn written_formats_read_back_equal(seed in proptest::prelude::any::<u64>()) {
            let (built, tenant) = shared();
            let model = Model::new(built, tenant);
            let mut r = Rng::new(seed);
            for i in 0..100 {
                let s = model.signin(&mut r, 1_793_000_000 + i);
                proptest::prop_assert_eq!(&read_back(&s, write::signin_json), &s);
                proptest::prop_assert_eq!(&read_back(&s, write::diagnostic_json), &s);
                let mut row = Vec::new();
                write::log_analytics_json(&s, &mut row);
                let row: serde_json::Value = serde_json::from_slice(&row).unwrap();
                proptest::prop_assert_eq!(
                    &crate::ingest::log_analytics::read_json(row).unwrap(),
                    &s
                );
            }
        }
    }

    /// The sign-ins have the mix the sample promises: MFA done, blocks, guests, failures.
    #[test]
    fn signins_have_a_realistic_mix() {
        let (built, tenant) = shared();
        let model = Model::new(built, tenant);
        let mut r = Rng::new(99);
        let all: Vec<SignIn> = (0..3000)
            .map(|i| model.signin(&mut r, 1_793_000_000 + i))
            .collect();
        let share = |f: &dyn Fn(&SignIn) -> bool| all.iter().filter(|s| f(s)).count();
        let mfa = share(&|s| s.mfa_satisfied);
        let blocked = share(&|s| s.error_code == 53003);
        let guests = share(&|s| s.user_type == "guest");
        let wrong_password = share(&|s| s.error_code == 50126);
        let legacy = share(&|s| s.client_app.is_legacy());
        let non_interactive = share(&|s| s.event_type == EventType::NonInteractiveUser);
        assert!(
            mfa > 600 && blocked > 10 && guests > 30 && wrong_password > 30 && legacy > 10,
            "{mfa} {blocked} {guests} {wrong_password} {legacy}"
        );
        assert!(non_interactive > 1500, "{non_interactive}");
    }

    /// The same options write the same bytes; another seed writes other sign-ins.
    #[test]
    fn output_is_deterministic_per_seed() {
        let (a, b, c) = (scratch(), scratch(), scratch());
        let sa = generate(&a, &options(5)).unwrap();
        generate(&b, &options(5)).unwrap();
        generate(&c, &options(6)).unwrap();
        assert_eq!(sa.signins, 2500);
        assert_eq!(files(&a), files(&b));
        assert_ne!(files(&a), files(&c));
        for d in [a, b, c] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    /// The same tenant written as Graph JSON, as diagnostic-settings records and as Log
    /// Analytics rows reads the same.
    #[test]
    fn graph_diagnostic_and_log_analytics_files_read_the_same() {
        use crate::ingest::{read_signins, IngestOptions};
        let (a, b, c) = (scratch(), scratch(), scratch());
        generate(&a, &options(8)).unwrap();
        let read = |d: &Path| read_signins(&[d.join("signins")], IngestOptions::default()).unwrap();
        let (sa, ra) = read(&a);
        assert!(ra.skipped.is_empty());
        assert_eq!(sa.len(), 2500);
        for (dir, format, stem) in [
            (&b, Format::Diagnostic, "diagnostic-"),
            (&c, Format::LogAnalytics, "loganalytics-"),
        ] {
            let o = Options {
                format,
                gzip: false,
                ..options(8)
            };
            generate(dir, &o).unwrap();
            let (sb, rb) = read(dir);
            assert!(
                rb.skipped.is_empty(),
                "{format:?}: {:?}",
                rb.skipped.first()
            );
            assert!(sa == sb, "{format:?} differs from Graph JSON");
            assert!(files(dir)
                .iter()
                .all(|(p, _)| !p.starts_with("signins") || p.to_string_lossy().contains(stem)));
        }
        for d in [a, b, c] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    /// The portal's CSV downloads read back as the Graph JSON sign-ins, less what the CSV
    /// cannot carry; each kind of sign-in in its own file, gzipped or not.
    #[test]
    fn portal_csv_files_read_as_graph_less_what_csv_cannot_carry() {
        use crate::ingest::{read_signins, IngestOptions};
        let (a, b) = (scratch(), scratch());
        generate(&a, &options(9)).unwrap();
        generate(
            &b,
            &Options {
                format: Format::PortalCsv,
                ..options(9)
            },
        )
        .unwrap();
        let read = |d: &Path| read_signins(&[d.join("signins")], IngestOptions::default()).unwrap();
        let ((graph, _), (csv, report)) = (read(&a), read(&b));
        assert!(report.skipped.is_empty(), "{:?}", report.skipped.first());
        assert!(report.notes.iter().any(|n| n.contains("per-policy")));
        assert_eq!(graph.len(), csv.len());
        // What CSV_CANNOT_CARRY lists, and what follows from it.
        let carried = |s: &SignIn| {
            let mut s = s.clone();
            s.applied_policies.clear();
            s.audiences.clear();
            s.auth_context.clear();
            s.authentication_methods.clear();
            s.device.display_name = Ustr::default();
            s.sign_in_risk = None;
            s.risk_level_aggregated = None;
            // The workload downloads have no authentication columns at all.
            if s.event_type.is_workload() {
                s.authentication_requirement = Ustr::default();
            }
            s
        };
        // The files split sign-ins by kind: compare by id.
        let by_id: std::collections::HashMap<&str, &SignIn> =
            csv.iter().map(|s| (s.id.as_str(), s)).collect();
        let mut differ = 0;
        for g in &graph {
            let Some(c) = by_id.get(g.id.as_str()) else {
                panic!("{} is not in the CSV files", g.id);
            };
            if carried(g) != carried(c) {
                differ += 1;
                if differ == 1 {
                    eprintln!("graph: {:#?}\ncsv: {:#?}", carried(g), carried(c));
                }
            }
        }
        assert_eq!(differ, 0, "of {}", graph.len());
        let names: Vec<String> = files(&b)
            .iter()
            .filter_map(|(p, _)| p.strip_prefix("signins").ok())
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        for kind in [
            "Interactive",
            "NonInteractive",
            "ServicePrincipal",
            "ManagedIdentity",
        ] {
            assert!(
                names.contains(&format!("{kind}SignIns_2026-11-02_2026-11-03.csv.gz")),
                "{names:?}"
            );
        }
        for d in [a, b] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    /// A folder that `generate` did not write is never overwritten.
    #[test]
    fn refuses_a_foreign_folder() {
        let dir = scratch();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        assert!(matches!(
            generate(&dir, &options(1)),
            Err(GenerateError::NotOurs(_))
        ));
        assert_eq!(
            std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
            "mine"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
