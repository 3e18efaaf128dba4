//! Command-line interface: clap definitions here, one file per subcommand. Exit codes are a type:
//! 0 ok, 1 a gate crossed (or blocking findings for `validate`), 2 error.

pub mod ci;
pub mod convert;
pub mod diff;
pub mod explain;
pub mod generate;
pub mod lint;
mod privacy;
pub mod run;
pub mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Ok = 0,
    Gate = 1,
    Error = 2,
}

#[derive(Debug, Parser)]
#[command(
    name = "ca-replay",
    version,
    about = "Replay Entra ID sign-ins against candidate Conditional Access policies",
    after_help = "Exit codes: 0 ok; 1 a gate crossed (run: a [gates] limit of ca-replay.toml or a gate flag; validate and lint: an error-level finding); 2 error (bad input, unreadable files, bad arguments)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a tenant's sign-ins against its policies and write reports.
    Run(Box<RunArgs>),
    /// Load and validate a tenant's policies; print every finding.
    Validate(ValidateArgs),
    /// The static checks, without sign-ins: policy validation, break-glass exclusions and a
    /// synthetic sweep of their possible sign-ins. Exits 1 on any error-level finding.
    Lint(LintArgs),
    /// Write a realistic synthetic tenant (directory, template policies, sign-ins).
    Generate(GenerateArgs),
    /// Show one sign-in against every policy: which condition decided, which exclusion fired,
    /// which control is missing.
    Explain(ExplainArgs),
    /// Convert sign-in exports into one Parquet or Arrow IPC file (the fast path for `run`).
    Convert(ConvertArgs),
    /// What a policy change does: replay base and head policies over the same sign-ins and
    /// write diff.md (for a pull request), diff.json and diff.html.
    Diff(Box<DiffArgs>),
}

#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    /// The policies before the change: a folder, or a git revision `REV:PATH` (PATH from the
    /// repository's root, e.g. `origin/main:policies`) or `REV` (the head folder's path at REV),
    /// resolved in the head folder's repository.
    #[arg(long, value_name = "DIR_OR_GIT_REV")]
    pub base: String,
    /// The policies after the change (default: the tenant's policies/).
    #[arg(long, value_name = "DIR")]
    pub head: Option<PathBuf>,
    /// The tenant folder: directory files, signins/, identityProtection.json, ca-replay.toml.
    #[arg(long, default_value = "sample_data/contoso")]
    pub tenant: PathBuf,
    /// The report folder (default: `reports/diff-<tenant>-<date of the newest sign-in>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Extra sign-in files or folders (in addition to the tenant's signins/).
    #[arg(long = "signins")]
    pub signins: Vec<PathBuf>,
    /// Accept policy fields ca-replay does not evaluate, as warnings carried into the reports.
    #[arg(long)]
    pub allow_unsupported: bool,
    /// Stop at the first sign-in record that cannot be read.
    #[arg(long)]
    pub strict: bool,
    /// Stop when more than N sign-in records cannot be read (default: read on, count them).
    #[arg(long, value_name = "N")]
    pub max_bad_rows: Option<usize>,
    /// Replay only sign-ins at or after this time (YYYY-MM-DD is midnight UTC, or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Replay only sign-ins before this time (YYYY-MM-DD is midnight UTC, or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// No progress bars (they are only drawn when stderr is a terminal anyway).
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub gates: GateArgs,
    #[command(flatten)]
    pub privacy: PrivacyArgs,
}

/// Pseudonymized reports (`crate::privacy`), for `run` and `diff`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PrivacyArgs {
    /// Replace UPNs, user ids, names, IP addresses and device ids in every report (and in what
    /// the command prints) by keyed hashes; the key comes from CA_REPLAY_PSEUDONYM_KEY (at
    /// least 32 bytes). Also `[privacy] pseudonymize = true` in ca-replay.toml.
    #[arg(long, help_heading = "Privacy")]
    pub pseudonymize: bool,
    /// With pseudonymization: write the mapping (pseudonym, kind, original) to this CSV file.
    /// Keep it apart from the reports: it undoes the pseudonymization.
    #[arg(long, value_name = "FILE", help_heading = "Privacy")]
    pub pseudonym_map: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ExplainArgs {
    /// The sign-in's id (or its correlation id).
    #[arg(long)]
    pub signin: String,
    /// The tenant folder.
    #[arg(long, default_value = "sample_data/contoso")]
    pub tenant: PathBuf,
    /// Extra sign-in files or folders (in addition to the tenant's signins/).
    #[arg(long = "signins")]
    pub signins: Vec<PathBuf>,
    /// Count unsupported fields as warnings.
    #[arg(long)]
    pub allow_unsupported: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ConvertArgs {
    /// Sign-in files or folders, in any format `run` reads.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The file to write: `.parquet`, or `.arrow` / `.arrows` / `.ipc` for Arrow IPC.
    #[arg(long)]
    pub out: PathBuf,
    /// Stop at the first sign-in record that cannot be read.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Users in the directory (at least 20).
    #[arg(long, default_value_t = 300)]
    pub users: usize,
    /// Days of sign-ins.
    #[arg(long, default_value_t = 21)]
    pub days: u32,
    /// Random seed: the same options and seed give byte-identical output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Total sign-ins (default: about 8 per user per working day).
    #[arg(long)]
    pub signins: Option<u64>,
    /// First day, YYYY-MM-DD (UTC).
    #[arg(long, default_value = "2026-11-02")]
    pub start: chrono::NaiveDate,
    /// Compress sign-in files (gzip).
    #[arg(long)]
    pub gzip: bool,
    /// Sign-in file format: Graph NDJSON as exported, diagnostic-settings records, Log
    /// Analytics rows, the admin center's CSV downloads, or ca-replay's own Parquet or Arrow IPC
    /// (what `convert` makes; `--gzip` does not apply).
    #[arg(long, value_enum, default_value_t = SigninFormatArg::Graph)]
    pub format: SigninFormatArg,
    /// The tenant folder to write (new, empty, or written by an earlier `generate`).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SigninFormatArg {
    /// Graph `signIn` JSON, NDJSON per day.
    #[default]
    Graph,
    /// Diagnostic-settings records (`properties` holds the sign-in), as a storage account keeps them.
    Diagnostic,
    /// ca-replay's own Parquet schema, one file per day.
    Parquet,
    /// The same schema as Arrow IPC.
    Arrow,
    /// Log Analytics `SigninLogs` / `AADNonInteractiveUserSignInLogs` rows as a query export
    /// writes them (NDJSON, dynamic columns as JSON text).
    LogAnalytics,
    /// The admin center's CSV downloads, one per day and kind (`InteractiveSignIns_…`, …);
    /// they lack what CSV cannot carry, such as per-policy results.
    PortalCsv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DetailsArg {
    /// Rows whose impact is not `not_applied`.
    #[default]
    Applied,
    /// Every evaluated (sign-in, policy) pair.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DetailsCsvArg {
    /// While its rows fit in a spreadsheet (1,048,575 below the header); past that, not at all
    /// (the report says so; details.parquet holds every row).
    #[default]
    Auto,
    /// Whatever its length.
    Always,
    /// Never (details.parquet only).
    Never,
}

impl From<DetailsCsvArg> for crate::report::details::CsvWhen {
    fn from(a: DetailsCsvArg) -> Self {
        match a {
            DetailsCsvArg::Auto => Self::Auto,
            DetailsCsvArg::Always => Self::Always,
            DetailsCsvArg::Never => Self::Never,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The tenant folder (policies/, signins/, directory files, ca-replay.toml).
    #[arg(long, default_value = "sample_data/contoso")]
    pub tenant: PathBuf,
    /// This run's report folder (default: `<reports-dir>/<run-name>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The folder that holds one sub-folder per run (when --out is not given).
    #[arg(long, default_value = "reports")]
    pub reports_dir: PathBuf,
    /// This run's folder name under --reports-dir (default: the tenant folder's name and the
    /// date of the newest sign-in, e.g. `contoso-2026-11-22`).
    #[arg(long)]
    pub run_name: Option<String>,
    /// Which (sign-in, policy) rows go into details.csv and details.parquet.
    #[arg(long, value_enum, default_value_t = DetailsArg::Applied)]
    pub details: DetailsArg,
    /// When details.csv is written (details.parquet always is).
    #[arg(long, value_enum, default_value_t = DetailsCsvArg::Auto)]
    pub details_csv: DetailsCsvArg,
    /// Accept policy fields ca-replay does not evaluate, as warnings carried into every report.
    #[arg(long)]
    pub allow_unsupported: bool,
    /// Stop at the first sign-in record that cannot be read.
    #[arg(long)]
    pub strict: bool,
    /// Replay only sign-ins at or after this time (YYYY-MM-DD is midnight UTC, or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Replay only sign-ins before this time (YYYY-MM-DD is midnight UTC, or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Stop when more than N sign-in records cannot be read (default: read on, count them).
    #[arg(long, value_name = "N")]
    pub max_bad_rows: Option<usize>,
    /// Extra sign-in files or folders (in addition to the tenant's signins/).
    #[arg(long = "signins")]
    pub signins: Vec<PathBuf>,
    /// Replay only these policies (id, display name, or the part of the name before a colon,
    /// e.g. `CA010`); repeatable. The others are left out of both sets.
    #[arg(long = "policy", value_name = "ID|NAME")]
    pub policies: Vec<String>,
    /// No progress bars (they are only drawn when stderr is a terminal anyway).
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub privacy: PrivacyArgs,
    #[command(flatten)]
    pub gates: GateArgs,
}

/// CI gates: each flag overrides the same key of `[gates]` in `ca-replay.toml`. Crossing any
/// gate exits 1 (after every report is written).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GateArgs {
    /// Exit 1 when more than N users would be newly blocked.
    #[arg(long, value_name = "N", help_heading = "Gates")]
    pub max_new_blocked_users: Option<u64>,
    /// Exit 1 when more than N users would be newly prompted for MFA.
    #[arg(long, value_name = "N", help_heading = "Gates")]
    pub max_new_prompted_users: Option<u64>,
    /// Exit 1 when more than N users would be newly sent to register for MFA.
    #[arg(long, value_name = "N", help_heading = "Gates")]
    pub max_new_registering_users: Option<u64>,
    /// Exit 1 on any break-glass error (an account could be locked out, or none is configured).
    #[arg(long, help_heading = "Gates")]
    pub break_glass_gate: bool,
    /// Exit 1 when ca-replay agrees with Entra's recorded verdicts on less than this share of
    /// (sign-in, policy) pairs (0 to 1; 0.99 is 99%).
    #[arg(long, value_name = "SHARE", value_parser = parse_share, help_heading = "Gates")]
    pub min_agreement: Option<f64>,
    /// Also write the gates as JUnit XML (one test case per gate) to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Gates")]
    pub junit: Option<PathBuf>,
}

impl GateArgs {
    /// The gates of `ca-replay.toml` with these flags laid over them.
    pub fn apply(&self, gates: &mut crate::config::Gates) {
        if let Some(n) = self.max_new_blocked_users {
            gates.max_new_blocked_users = Some(n);
        }
        if let Some(n) = self.max_new_prompted_users {
            gates.max_new_prompted_users = Some(n);
        }
        if let Some(n) = self.max_new_registering_users {
            gates.max_new_registering_users = Some(n);
        }
        if self.break_glass_gate {
            gates.break_glass = Some(true);
        }
        if let Some(a) = self.min_agreement {
            gates.min_agreement = Some(a);
        }
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(a) if (0.0..=1.0).contains(&a) => Ok(a),
        _ => Err(format!(
            "`{s}` is not a share between 0 and 1 (0.99 is 99%)"
        )),
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct LintArgs {
    /// The tenant folder (its sign-ins are not read).
    #[arg(long, default_value = "sample_data/contoso")]
    pub tenant: PathBuf,
    /// Count unsupported fields as warnings.
    #[arg(long)]
    pub allow_unsupported: bool,
    /// Also write every check as JUnit XML (one test case per check) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// The tenant folder.
    #[arg(long, default_value = "sample_data/contoso")]
    pub tenant: PathBuf,
    /// Count unsupported fields as warnings.
    #[arg(long)]
    pub allow_unsupported: bool,
}

/// A time on the command line: a date (midnight UTC) or an RFC 3339 timestamp.
fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| format!("`{s}` is neither YYYY-MM-DD nor an RFC 3339 time"))
}

/// Runs the CLI; errors are printed by the caller.
pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Run(a)) => run::run(&a),
        Some(Command::Validate(a)) => validate::validate(&a),
        Some(Command::Lint(a)) => lint::lint(&a),
        Some(Command::Generate(a)) => generate::generate(&a),
        Some(Command::Explain(a)) => explain::explain(&a),
        Some(Command::Convert(a)) => convert::convert(&a),
        Some(Command::Diff(a)) => diff::diff(&a),
        None => run::run(&RunArgs::parse_from(["run"])),
    }
}

impl RunArgs {
    fn parse_from<I: IntoIterator<Item = &'static str>>(args: I) -> RunArgs {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            a: RunArgs,
        }
        Only::parse_from(args).a
    }
}
