//! The real policy sets of `../shared/fixtures/policies/` (public data, read in place, never
//! copied): every set loads, and every finding validation reports on them is in a snapshot that
//! was checked by hand. Skipped with a notice where `../shared` is absent (a user's clone).

use std::path::{Path, PathBuf};

use ca_replay::directory::Directory;
use ca_replay::policy::{self, BuildOptions, PolicySet};

fn fixtures() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/policies");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "notice: {} is absent; the fixture policy tests are skipped",
            p.display()
        );
        None
    }
}

/// Every finding of one set, one line each, with paths relative to the set's folder.
fn findings_of(set: &Path) -> String {
    let (loaded, mut findings) = policy::load_policies(set)
        .unwrap_or_else(|e| panic!("{} does not load: {e}", set.display()));
    let mut dir = Directory::new();
    dir.finish();
    let built = PolicySet::build(&loaded, Vec::new(), &mut dir, BuildOptions::default());
    findings.extend(built.findings);
    let mut lines: Vec<String> = findings
        .iter()
        .map(|f| {
            let mut f = f.clone();
            let base = if set.is_file() {
                set.parent().unwrap_or(set)
            } else {
                set
            };
            f.file = f.file.strip_prefix(base).unwrap_or(&f.file).to_path_buf();
            f.to_string()
        })
        .collect();
    lines.sort();
    format!(
        "{} policies loaded, {} findings\n{}\n",
        loaded.len(),
        lines.len(),
        lines.join("\n")
    )
}

macro_rules! fixture_set {
    ($test:ident, $folder:literal) => {
        #[test]
        fn $test() {
            let Some(root) = fixtures() else { return };
            let text = findings_of(&root.join($folder));
            insta::assert_snapshot!(stringify!($test), text);
        }
    };
}

fixture_set!(conditional_access_baseline, "ConditionalAccessBaseline");
fixture_set!(alex_filipin, "AlexFilipin-ConditionalAccess");
fixture_set!(nis2, "nis2-conditional-access-policies");
// ScubaGear's three files are separate exports of one tenant: each is its own set.
fixture_set!(
    scuba_gear_create_report,
    "ScubaGear/CreateReportStubs.conditional_access_policies.json"
);
fixture_set!(
    scuba_gear_run_rego,
    "ScubaGear/RunRegoStubs.conditional_access_policies.json"
);
fixture_set!(
    scuba_gear_sample_reports,
    "ScubaGear/SampleReports.conditional_access_policies.json"
);
fixture_set!(azure_samples, "azure-ad-conditional-access-apis");
fixture_set!(fortigi, "Fortigi-ConditionalAccess");
