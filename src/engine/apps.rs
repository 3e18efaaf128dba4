//! Well-known application ids behind the `Office365` and `MicrosoftAdminPortals` bundles and the
//! approved-client-app / app-protection grants. Microsoft publishes names only for the bundles
//! (entra-semantics.md §1.5, §8 item 1), so these tables are ca-replay's, overridable with
//! `[app_bundles]` in `ca-replay.toml`; a resource whose membership the tables cannot settle is
//! reported as unknown, never guessed.

use std::collections::HashSet;

/// App-id sets looked up per sign-in (FxHash; see `directory::FastMap`).
pub type FastSet<T> = HashSet<T, rustc_hash::FxBuildHasher>;

use crate::policy::Bundle;

/// Resource app ids of Office 365 services (`reference-office-365-application-contents.md` lists
/// the services by name; these ids are the first-party apps behind the names).
pub const OFFICE365: &[(&str, &str)] = &[
    (
        "00000002-0000-0ff1-ce00-000000000000",
        "Office 365 Exchange Online",
    ),
    (
        "00000003-0000-0ff1-ce00-000000000000",
        "Office 365 SharePoint Online",
    ),
    (
        "00000004-0000-0ff1-ce00-000000000000",
        "Skype for Business Online",
    ),
    ("00000005-0000-0ff1-ce00-000000000000", "Office 365 Yammer"),
    (
        "00000006-0000-0ff1-ce00-000000000000",
        "Microsoft Office 365 Portal",
    ),
    (
        "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe",
        "Microsoft Teams Services",
    ),
    ("c9a559d2-7aab-4f13-a6ed-e7e9c52aec87", "Microsoft Forms"),
    ("09abbdfd-ed23-44ee-a2d9-a627aa1c90f3", "Microsoft Planner"),
    (
        "2634dd23-5e5a-431c-81ca-11710d9079f4",
        "Microsoft Stream Service",
    ),
    (
        "66a88757-258c-4c72-893c-3e8bed4d6899",
        "Office 365 Search Service",
    ),
    ("905fcf26-4eb7-48a0-9ff0-8dcc7194b5ba", "Sway"),
    (
        "95de633a-083e-42f5-b444-a4295d8e9314",
        "Microsoft Whiteboard Services",
    ),
];

/// Resource app ids of the admin portals (`concept-conditional-access-cloud-apps.md`).
pub const ADMIN_PORTALS: &[(&str, &str)] = &[
    ("c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Azure Portal"),
    (
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",
        "Windows Azure Service Management API",
    ),
    (
        "00000006-0000-0ff1-ce00-000000000000",
        "Microsoft Office 365 Portal",
    ),
    (
        "80ccca67-54bd-44ab-8625-4b79c4dc7775",
        "Microsoft 365 Security and Compliance Center",
    ),
    (
        "5926fc8e-304e-4f59-8bed-58ca97cc39a4",
        "Microsoft Intune portal extension",
    ),
];

/// Display-name prefixes of services in the published Office 365 list: a resource with such a
/// name but an id missing from the table has unknown membership.
const OFFICE365_NAMES: &[&str] = &[
    "office 365",
    "microsoft teams",
    "sharepoint",
    "exchange",
    "onedrive",
    "microsoft forms",
    "microsoft planner",
    "microsoft stream",
    "skype",
    "sway",
    "yammer",
    "viva",
    "microsoft to-do",
    "microsoft whiteboard",
    "outlook",
];
const ADMIN_NAMES: &[&str] = &[
    "azure portal",
    "microsoft 365 admin",
    "exchange admin",
    "microsoft entra admin",
    "intune admin",
    "microsoft 365 defender",
    "microsoft defender portal",
    "microsoft purview",
    "teams admin",
];

/// Client app ids that satisfy "Require approved client app" (Microsoft's published list; the
/// common ones).
pub const APPROVED_CLIENT_APPS: &[(&str, &str)] = &[
    ("27922004-5251-4030-b22d-91ecd9a37ea4", "Outlook Mobile"),
    ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams"),
    (
        "ab9b8c07-8f02-4f72-87fa-80105867a763",
        "OneDrive SyncEngine",
    ),
    ("af124e86-4e96-495a-b70a-90f90ab96707", "OneDrive iOS App"),
    ("d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Office"),
    (
        "0922ef46-e1b9-4f7e-9134-8a8ce9e3d4ab",
        "Microsoft Edge (mobile)",
    ),
    ("ecd6b820-32c2-49b6-98a6-444530e5a77a", "Microsoft Edge"),
    (
        "4813382a-8fa7-425e-ab75-3b753aab3abb",
        "Microsoft Authenticator App",
    ),
    ("872cd9fa-d31f-45e0-9eab-6e460a02d1f1", "Visual Studio"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Member,
    NotMember,
    Unknown,
}

/// The app tables in force for a run: built-ins plus `[app_bundles]` additions.
#[derive(Debug, Clone)]
pub struct AppTables {
    pub office365: FastSet<String>,
    pub admin_portals: FastSet<String>,
    pub approved_client_apps: FastSet<String>,
}

impl Default for AppTables {
    fn default() -> Self {
        let set = |t: &[(&str, &str)]| t.iter().map(|(id, _)| id.to_string()).collect();
        AppTables {
            office365: set(OFFICE365),
            admin_portals: set(ADMIN_PORTALS),
            approved_client_apps: set(APPROVED_CLIENT_APPS),
        }
    }
}

impl AppTables {
    pub fn membership(&self, bundle: Bundle, resource_id: &str, resource_name: &str) -> Membership {
        let (ids, names) = match bundle {
            Bundle::Office365 => (&self.office365, OFFICE365_NAMES),
            Bundle::MicrosoftAdminPortals => (&self.admin_portals, ADMIN_NAMES),
        };
        if ids.contains(resource_id) {
            return Membership::Member;
        }
        // Case-insensitive prefix test without allocating (the engine calls this per policy).
        let name = resource_name.as_bytes();
        if names
            .iter()
            .any(|n| name.len() >= n.len() && name[..n.len()].eq_ignore_ascii_case(n.as_bytes()))
        {
            Membership::Unknown
        } else {
            Membership::NotMember
        }
    }
}
