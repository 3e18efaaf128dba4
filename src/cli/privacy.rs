//! `--pseudonymize` and `--pseudonym-map` for `run` and `diff` (see `crate::privacy`): the key
//! checked before the long part of a command, printed lines pseudonymized, and the mapping
//! written apart from the reports.

use std::borrow::Cow;
use std::path::Path;

use anyhow::Context;

use super::PrivacyArgs;
use crate::config::Config;
use crate::privacy::{Key, Pseudonymizer};

/// The key when pseudonymization is on (the flag, or `[privacy] pseudonymize = true`): an
/// error when `CA_REPLAY_PSEUDONYM_KEY` is missing or short, or when `--pseudonym-map` is
/// given without pseudonymization.
pub(super) fn key(a: &PrivacyArgs, config: &Config) -> anyhow::Result<Option<Key>> {
    let on = a.pseudonymize || config.privacy.pseudonymize;
    if a.pseudonym_map.is_some() && !on {
        anyhow::bail!(
            "--pseudonym-map needs pseudonymization\nhint: add --pseudonymize, or `[privacy] pseudonymize = true` in ca-replay.toml"
        );
    }
    Ok(if on { Some(Key::from_env()?) } else { None })
}

/// A line for stderr: pseudonymized when the command is.
pub(super) fn shown<'a>(
    pz: &mut Option<Pseudonymizer>,
    line: &'a str,
) -> anyhow::Result<Cow<'a, str>> {
    Ok(match pz {
        Some(pz) => pz.text(line)?,
        None => line.into(),
    })
}

/// Writes the pseudonym mapping to `--pseudonym-map`; refuses to replace one of the report
/// files (`reports`, in `out`) and warns when the file is inside the report folder (sharing the
/// folder would share it).
pub(super) fn write_mapping(
    map: &Path,
    out: &Path,
    reports: &[&str],
    pz: &Pseudonymizer,
) -> anyhow::Result<()> {
    let folder = |p: &Path| {
        let p = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        p.canonicalize().ok()
    };
    let map_dir = folder(map.parent().unwrap_or(Path::new(".")));
    let out_dir = folder(out);
    let inside = match (&map_dir, &out_dir) {
        (Some(m), Some(o)) => m.starts_with(o),
        _ => false,
    };
    if inside {
        let name = map.file_name().and_then(|n| n.to_str()).unwrap_or("");
        anyhow::ensure!(
            !(map_dir == out_dir && reports.contains(&name)),
            "--pseudonym-map `{}` would replace a report file\nhint: write the mapping outside the report folder",
            map.display()
        );
        eprintln!(
            "warning: the pseudonym mapping `{}` is inside the report folder: whoever gets the folder can undo the pseudonyms",
            map.display()
        );
    }
    crate::report::write_atomic(map, &pz.mapping_csv())
        .with_context(|| format!("writing the pseudonym mapping `{}`", map.display()))?;
    eprintln!(
        "pseudonym mapping ({} pseudonyms) in {}",
        pz.len(),
        map.display()
    );
    Ok(())
}
