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

/// `ca-replay explain` streams the sign-ins: it prints exactly the text of the sign-in found
/// among all of them held in memory (the MFA registration clocks from every file), and an
/// unknown id is an error that counts every sign-in read.
#[test]
fn the_streaming_command_explains_as_the_held_log_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/contoso");
    let tenant = Tenant::load(&root, BuildOptions::default()).unwrap();
    let (signins, _) = read_signins(&[root.join("signins")], IngestOptions::default()).unwrap();
    let run = |id: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ca-replay"))
            .args(["explain", "--tenant"])
            .arg(&root)
            .args(["--signin", id])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    // A sign-in the MFA registration policy answers by its clock (the grace or its end).
    let clocks = ca_replay::replay::registration_clocks(&tenant, &signins);
    let registering = signins
        .iter()
        .find(|s| {
            let text = explain::text_with_clocks(&tenant, &clocks, s);
            text.contains("registration grace")
        })
        .unwrap();
    for s in [
        &signins[0],
        &signins[signins.len() / 2],
        registering,
        &signins[signins.len() - 1],
    ] {
        let out = run(&s.id);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = explain::text(&tenant, &signins, explain::find(&signins, &s.id).unwrap());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "sign-in {}",
            s.id
        );
    }
    let out = run("no-such-sign-in");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("({} sign-ins read)", signins.len())),
        "{err}"
    );
}
