//! `explain` on the bundled sample tenant: a sign-in the log shows as blocked (53003) comes out
//! blocked by an enabled blocking policy in the current set, with the traces behind it.

use std::path::Path;

use ca_replay::ingest::{read_signins, IngestOptions};
use ca_replay::policy::BuildOptions;
use ca_replay::report::explain;
use ca_replay::tenant::Tenant;

#[test]
fn explains_a_blocked_sample_signin() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/contoso");
    let tenant = Tenant::load(&root, BuildOptions::default()).unwrap();
    let (signins, _) = read_signins(&[root.join("signins")], IngestOptions::default()).unwrap();
    let blocked: Vec<_> = signins
        .iter()
        .filter(|s| s.error_code == 53003)
        .take(25)
        .collect();
    assert!(!blocked.is_empty());
    for s in blocked {
        let found = explain::find(&signins, &s.id.to_uppercase()).unwrap();
        let text = explain::text(&tenant, &signins, found);
        let current = text
            .lines()
            .find(|l| l.starts_with("Current set"))
            .unwrap_or_default();
        assert!(current.contains(": blocked, decided by CA0"), "{text}");
        // Every enabled policy's own verdict is shown beside what Entra recorded for it.
        assert!(text.contains("Entra recorded: failure"), "{text}");
        assert!(
            text.contains("users: matched by includeUsers[0] all users"),
            "{text}"
        );
    }
}
