//! The change since the previous run: nightly jobs write one folder per run under one root;
//! a new run compares itself with the latest earlier `summary.json` beside its folder.
//!
//! In: this run's folder and summary. Out: `null` when there is no earlier run, else the
//! earlier run's name and window end, and for each headline number and each policy's affected
//! sign-ins the previous value, the current one and the change.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::affected::is_affected;
use crate::domain::Impact;

/// The `difference` numbers a trend follows.
pub const FOLLOWED: [&str; 5] = [
    "users_newly_blocked",
    "users_newly_registering",
    "users_newly_prompted",
    "users_newly_password_change",
    "users_newly_reauth",
];

/// The latest earlier run beside `out` (same parent folder), by the end of its window; runs
/// whose window ends after this one's are not earlier and are left out.
fn previous(out: &Path, summary: &Value) -> Option<(String, Value)> {
    let parent = out.parent()?;
    let own = out.file_name()?;
    let now_to = summary["inputs"]["to"].as_str().unwrap_or("");
    let mut best: Option<(String, String, Value)> = None;
    for entry in std::fs::read_dir(parent).ok()?.flatten() {
        let name = entry.file_name();
        if name == own {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path().join("summary.json")) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let to = v["inputs"]["to"].as_str().unwrap_or("").to_owned();
        if to.is_empty() || to.as_str() > now_to {
            continue;
        }
        let name = name.to_string_lossy().into_owned();
        let newer = best
            .as_ref()
            .is_none_or(|(bt, bn, _)| (to.as_str(), name.as_str()) > (bt.as_str(), bn.as_str()));
        if newer {
            best = Some((to, name, v));
        }
    }
    best.map(|(_, name, v)| (name, v))
}

fn change(prev: u64, now: u64) -> Value {
    json!({"previous": prev, "now": now, "change": now as i64 - prev as i64})
}

/// Affected sign-ins of one policy entry of a summary.
fn affected_signins(p: &Value) -> u64 {
    Impact::ALL
        .iter()
        .filter(|i| is_affected(**i))
        .map(|i| p["signins"][i.as_str()].as_u64().unwrap_or(0))
        .sum()
}

pub fn since_previous(out: &Path, summary: &Value) -> Value {
    let Some((name, prev)) = previous(out, summary) else {
        return Value::Null;
    };
    let mut numbers = Map::new();
    for key in FOLLOWED {
        let p = prev["difference"][key].as_u64().unwrap_or(0);
        let n = summary["difference"][key].as_u64().unwrap_or(0);
        numbers.insert(key.to_owned(), change(p, n));
    }
    let empty = Vec::new();
    let before = prev["policies"].as_array().unwrap_or(&empty);
    let policies: Vec<Value> = summary["policies"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|p| {
            let was = before.iter().find(|b| b["id"] == p["id"]);
            json!({
                "id": p["id"], "name": p["name"],
                "affected_signins": change(was.map_or(0, affected_signins), affected_signins(p)),
                "new": was.is_none(),
            })
        })
        .collect();
    json!({
        "previous_run": name,
        "previous_to": prev["inputs"]["to"],
        "difference": numbers,
        "policies": policies,
    })
}
