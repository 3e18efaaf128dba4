//! Pseudonymizing what the report writers read (`run --pseudonymize`), after the replay and
//! before the writers: the writers then print pseudonyms without knowing it.
//!
//! In: a `Pseudonymizer` that has seen the run's directory, config and sign-ins, and the
//! writers' inputs. Out: the same inputs, changed in place: the replay's disagreements (their
//! users and reasons) and sampled sign-ins, the ingest report's
//! diagnostics (raw values become `value-…`, quoted literals in the reason too, file paths
//! relative to the tenant or bare names), its notes, the policies' display names, and the
//! explained samples of `report.html`. The summary (exclusion entries, warnings, break-glass
//! findings) goes through the pseudonymizer as a whole in `report::render`.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::Prepared;
use crate::ingest::{Diagnostic, IngestReport};
use crate::privacy::{PrivacyError, Pseudonymizer};
use crate::replay::Replay;
use crate::tenant::Tenant;

pub fn apply(
    pz: &mut Pseudonymizer,
    tenant: &mut Tenant,
    ingest: &mut IngestReport,
    replay: &mut Replay,
    prepared: &mut Prepared,
) -> Result<(), PrivacyError> {
    for d in &mut replay.disagreements {
        if let Cow::Owned(t) = pz.text(&d.reason)? {
            d.reason = t;
        }
        // As `Pseudonymizer::signin` does for the sign-in's user fields.
        let who = pz.user(&d.user_id, &d.user_principal_name, "")?;
        for f in [&mut d.user_id, &mut d.user_principal_name] {
            if !f.trim().is_empty() {
                f.clone_from(&who);
            }
        }
    }
    // The samples' sign-ins are only explained (`prepared.samples`), never printed raw.
    for s in replay.samples.values_mut() {
        pz.signin(s)?;
    }
    self::ingest(pz, &tenant.root, ingest)?;
    for p in &mut tenant.set.policies {
        if let Cow::Owned(t) = pz.text(&p.display_name)? {
            p.display_name = t;
        }
    }
    for s in &mut prepared.samples {
        if let Cow::Owned(t) = pz.text(&s.text)? {
            s.text = t;
        }
    }
    Ok(())
}

/// What `diff` reports, in place (`diff --pseudonymize`), after the comparison and before the
/// writers: the changed users (id and label become the user's pseudonym; re-sorted so that
/// the order does not follow the original labels), the break-glass accounts and findings,
/// policy names, the two sides' labels, the warnings, and the ingest report as for `run`.
/// The gates are checked afterwards, from the pseudonymized findings.
pub fn diff(
    pz: &mut Pseudonymizer,
    root: &Path,
    d: &mut crate::checks::diff::Diff,
    ingest: &mut IngestReport,
) -> Result<(), PrivacyError> {
    fn text(pz: &mut Pseudonymizer, s: &mut String) -> Result<(), PrivacyError> {
        if let Cow::Owned(t) = pz.text(s)? {
            *s = t;
        }
        Ok(())
    }
    for s in [&mut d.tenant, &mut d.base_label, &mut d.head_label] {
        text(pz, s)?;
    }
    for p in &mut d.policies {
        text(pz, &mut p.name)?;
    }
    for v in [&mut d.enforced, &mut d.proposed] {
        for p in &mut v.by_policy {
            text(pz, &mut p.name)?;
        }
    }
    for u in &mut d.changed_users {
        let who = if u.user_id.trim().is_empty() {
            pz.text(&u.label)?.into_owned()
        } else {
            pz.user_id(&u.user_id)?
        };
        if !u.user_id.trim().is_empty() {
            u.user_id.clone_from(&who);
        }
        u.label = who;
        for p in &mut u.policies {
            text(pz, p)?;
        }
    }
    crate::checks::diff::sort_users(&mut d.changed_users);
    let bg = &mut d.break_glass;
    for a in &mut bg.accounts {
        text(pz, a)?;
    }
    let findings = bg
        .new_in_head
        .iter_mut()
        .chain(bg.fixed_in_head.iter_mut())
        .chain(bg.changed.iter_mut().flat_map(|(b, h)| [b, h]));
    for f in findings {
        text(pz, &mut f.account)?;
        text(pz, &mut f.policy)?;
        text(pz, &mut f.what)?;
    }
    for w in &mut d.warnings {
        text(pz, w)?;
    }
    d.pseudonymized = true;
    self::ingest(pz, root, ingest)
}

/// A path as a pseudonymized report shows it: relative to the tenant folder, else its file
/// name alone (a home folder's name says who ran it).
fn shown(root: &Path, p: &Path) -> PathBuf {
    match p.strip_prefix(root) {
        Ok(rel) => rel.to_path_buf(),
        Err(_) => p.file_name().map(PathBuf::from).unwrap_or_default(),
    }
}

fn path_text(pz: &mut Pseudonymizer, root: &Path, p: &Path) -> Result<PathBuf, PrivacyError> {
    let shown = shown(root, p);
    let text = shown.to_string_lossy();
    Ok(PathBuf::from(pz.text(&text)?.into_owned()))
}

/// The ingest report: file paths, the skipped records' values and reasons, the notes.
pub fn ingest(
    pz: &mut Pseudonymizer,
    root: &Path,
    ingest: &mut IngestReport,
) -> Result<(), PrivacyError> {
    for (p, _) in &mut ingest.files {
        *p = path_text(pz, root, p)?;
    }
    for d in &mut ingest.skipped {
        *d = diagnostic(pz, root, d)?;
    }
    let notes = std::mem::take(&mut ingest.notes);
    for n in notes {
        ingest.notes.insert(pz.text(&n)?.into_owned());
    }
    Ok(())
}

/// One unreadable record's diagnostic, pseudonymized: the raw value as `value-…`, quoted
/// literals in the reason too, the path relative to the tenant folder (or the bare file name).
pub fn diagnostic(
    pz: &mut Pseudonymizer,
    root: &Path,
    d: &Diagnostic,
) -> Result<Diagnostic, PrivacyError> {
    let why = quoted_values(pz, &d.why)?;
    Ok(Diagnostic {
        file: path_text(pz, root, &d.file)?,
        record: d.record,
        line: d.line,
        field: pz.text(&d.field)?.into_owned(),
        value: if d.value.is_empty() {
            String::new()
        } else {
            pz.value(&d.value)?
        },
        why: pz.text(&why)?.into_owned(),
    })
}

/// A reason with each double-quoted literal (how serde quotes the value it could not read:
/// `invalid type: string "…", expected …`) replaced by the literal's `value-…` pseudonym.
fn quoted_values(pz: &mut Pseudonymizer, why: &str) -> Result<String, PrivacyError> {
    let mut out = String::with_capacity(why.len());
    let mut rest = why;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        // The closing quote, skipping escaped ones.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else {
            // An unclosed quote: the rest is the literal.
            out.push_str(&pz.value(rest)?);
            return Ok(out);
        };
        out.push_str(&pz.value(&rest[..end])?);
        out.push('"');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::{Key, MIN_KEY_BYTES};

    #[test]
    fn quoted_literals_and_paths_are_hidden() {
        let mut pz = Pseudonymizer::builder(Key::new(vec![7; MIN_KEY_BYTES]).unwrap())
            .build()
            .unwrap();
        let t = quoted_values(
            &mut pz,
            r#"invalid type: string "alice@x.com \"q\"", expected a boolean; "open"#,
        )
        .unwrap();
        assert!(!t.contains("alice") && !t.contains("open"), "{t}");
        assert!(t.starts_with("invalid type: string \"value-"), "{t}");
        assert!(t.contains("\", expected a boolean; \"value-"), "{t}");
        let root = Path::new("/t/contoso");
        assert_eq!(
            shown(root, Path::new("/t/contoso/signins/a.json")),
            Path::new("signins/a.json")
        );
        assert_eq!(
            shown(root, Path::new("/home/alice/x.json")),
            Path::new("x.json")
        );
    }
}
