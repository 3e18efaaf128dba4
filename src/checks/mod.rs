//! Checks that protect the tenant (issue: break-glass, exclusions, CI gates). Each check reads
//! the tenant and the replay and returns findings the reports print.

pub mod breakglass;
pub mod diff;
pub mod gates;
