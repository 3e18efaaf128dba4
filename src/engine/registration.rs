//! Per-user state of the legacy MFA registration policy: the 14-day clock starts at the user's
//! first in-scope interactive sign-in at or after the policy's start (entra-semantics.md §4.1;
//! design.md). Computed as a minimum over sign-ins, so it is independent of order and chunking.

use std::collections::HashMap;

use super::{evaluate, Env, Facts};
use crate::policy::PolicyKind;
use crate::signin::SignIn;

pub const GRACE_MILLIS: i64 = 14 * 24 * 3600 * 1000;

/// Adds the sign-ins' contribution to the clocks (user id lower-cased → first prompt, ms).
/// `env.registration_clocks` is not read here.
pub fn accumulate(env: &Env, signins: &[SignIn], clocks: &mut HashMap<String, i64>) {
    let Some(policy) = env
        .set
        .policies
        .iter()
        .find(|p| p.kind == PolicyKind::LegacyMfaRegistration)
    else {
        return;
    };
    for s in signins {
        if !s.is_interactive || s.first_factor_failed() {
            continue;
        }
        let f = Facts::prepare(env, s, false);
        if f.registration.is_some_and(|r| r.is_mfa_registered) {
            continue;
        }
        if evaluate(env, policy, &f).applies == Some(true) {
            let t = s.millis();
            clocks
                .entry(s.user_id.to_ascii_lowercase())
                .and_modify(|x| *x = (*x).min(t))
                .or_insert(t);
        }
    }
}
