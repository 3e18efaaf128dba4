//! Built-in Entra role template ids and names, for readable traces ("included by role Global
//! Administrator"). Source: the "All roles" table of MicrosoftDocs `permissions-reference.md`
//! (ms.date 2021-04-20, via the tool library). Sorted by id for binary search; a role missing
//! here is shown by its id.

pub const BUILT_IN_ROLES: &[(&str, &str)] = &[
    (
        "0526716b-113d-4c15-b2c8-68e3c22b9f80",
        "Authentication Policy Administrator",
    ),
    (
        "0964bb5e-9bdb-4d7b-ac29-58e794862a40",
        "Search Administrator",
    ),
    (
        "0f971eea-41eb-4569-a71e-57bb8a3eff1e",
        "External ID User Flow Attribute Administrator",
    ),
    (
        "11648597-926c-4cf3-9c36-bcebb0ba8dcc",
        "Power Platform Administrator",
    ),
    (
        "158c047a-c907-4556-b7ef-446551a6b5f7",
        "Cloud Application Administrator",
    ),
    (
        "17315797-102d-40b4-93e0-432062caca18",
        "Compliance Administrator",
    ),
    (
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Security Administrator",
    ),
    (
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
    ),
    (
        "2b745bdf-0803-4d80-aa65-822c4493daac",
        "Office Apps Administrator",
    ),
    (
        "31392ffb-586c-42d1-9346-e59415a2cc4e",
        "Exchange Recipient Administrator",
    ),
    (
        "31e939ad-9672-4796-9c2e-873181342d2d",
        "Insights Business Leader",
    ),
    (
        "38a96431-2bdf-4b4c-8b6e-5d3d8abac1a4",
        "Desktop Analytics Administrator",
    ),
    (
        "3a2c62db-5318-420d-8d74-23affee5d9d5",
        "Intune Administrator",
    ),
    (
        "3d762c5a-1b6c-493f-843e-55a3b42923d4",
        "Teams Devices Administrator",
    ),
    (
        "3edaf663-341e-4475-9f94-5c398ef6c070",
        "B2C IEF Policy Administrator",
    ),
    (
        "44367163-eba1-44c3-98af-f5787879f96a",
        "Dynamics 365 Administrator",
    ),
    ("4a5d8f65-41da-4de4-8968-e035b65339cf", "Reports Reader"),
    (
        "4ba39ca4-527c-499a-b93d-d9b492c50246",
        "Partner Tier1 Support",
    ),
    (
        "4d6ac14f-3453-41d0-bef9-a3e0c569773a",
        "License Administrator",
    ),
    (
        "5c4f9dcd-47dc-4cf7-8c9a-9e4207cbfc91",
        "Customer LockBox Access Approver",
    ),
    ("5d6b6bb7-de71-4623-b4af-96380a352509", "Security Reader"),
    ("5f2222b1-57c3-48ba-8ad5-d4759f1fde6f", "Security Operator"),
    (
        "62e90394-69f5-4237-9190-012177145e10",
        "Global Administrator",
    ),
    (
        "644ef478-e28f-4e28-b9dc-3fdde9aa0b1f",
        "Printer Administrator",
    ),
    (
        "69091246-20e8-4a56-aa4d-066075b2a7a8",
        "Teams Administrator",
    ),
    (
        "6e591065-9bad-43ed-90f3-e9424366d2f0",
        "External ID User Flow Administrator",
    ),
    (
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Helpdesk Administrator",
    ),
    (
        "7495fdc4-34c4-4d15-a289-98788ce399fd",
        "Azure Information Protection Administrator",
    ),
    (
        "74ef975b-6605-40af-a5d2-b9539d836353",
        "Kaizala Administrator",
    ),
    (
        "75934031-6c7e-415a-99d7-48dbd49e875e",
        "Usage Summary Reports Reader",
    ),
    (
        "75941009-915a-4869-abe7-691bff18279e",
        "Skype for Business Administrator",
    ),
    (
        "7698a772-787b-4ac8-901f-60d6b08affd2",
        "Cloud Device Administrator",
    ),
    (
        "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b",
        "Message Center Reader",
    ),
    (
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        "Privileged Authentication Administrator",
    ),
    (
        "8329153b-31d0-4727-b945-745eb3bc5f31",
        "Domain Name Administrator",
    ),
    ("8835291a-918c-4fd7-a9ce-faa49f0cf7d9", "Search Editor"),
    ("88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "Directory Readers"),
    (
        "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",
        "Hybrid Identity Administrator",
    ),
    ("9360feb5-f418-4baa-8175-e2a00bac4301", "Directory Writers"),
    ("95e79109-95c0-4d8e-aee3-d01accf2d47b", "Guest Inviter"),
    (
        "966707d0-3269-4727-9be2-8c3a10f19b9d",
        "Password Administrator",
    ),
    (
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Application Administrator",
    ),
    (
        "9c6df0f2-1e7c-4dc3-b195-66dfbd24aa8f",
        "Attack Payload Author",
    ),
    (
        "9f06204d-73c1-4d4c-880a-6edb90606fd8",
        "Azure AD Joined Device Local Administrator",
    ),
    (
        "a9ea8996-122f-4c74-9520-8edcd192826c",
        "Power BI Administrator",
    ),
    (
        "aaf43236-0c0d-4d5f-883a-6955382ac081",
        "B2C IEF Keyset Administrator",
    ),
    (
        "ac16e43d-7b2d-40e0-ac05-243ff356ab5b",
        "Message Center Privacy Reader",
    ),
    (
        "b0f54661-2d74-4c50-afa3-1ec803f12efe",
        "Billing Administrator",
    ),
    (
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
        "Conditional Access Administrator",
    ),
    (
        "b5a8dcf3-09d5-43a9-a639-8e29ef291470",
        "Knowledge Administrator",
    ),
    (
        "baf37b3a-610e-45da-9e62-d9d1e5e8914b",
        "Teams Communications Administrator",
    ),
    (
        "be2f45a1-457d-42af-a067-6ec1fa63bc45",
        "External Identity Provider Administrator",
    ),
    (
        "c430b396-e693-46cc-96f3-db01bf8bb62a",
        "Attack Simulation Administrator",
    ),
    (
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",
        "Authentication Administrator",
    ),
    (
        "cf1c38e5-3621-4004-a7cb-879624dced7c",
        "Application Developer",
    ),
    (
        "d24aef57-1500-4070-84db-2666f29cf966",
        "Modern Commerce User",
    ),
    (
        "d29b2b05-8046-44ba-8758-1e26182fcf32",
        "Directory Synchronization Accounts",
    ),
    (
        "d37c8bed-0711-4417-ba38-b4abe66ce4c2",
        "Network Administrator",
    ),
    (
        "e00e864a-17c5-4a4b-9c06-f5b95a8d5bd8",
        "Partner Tier2 Support",
    ),
    (
        "e3973bdf-4987-49ae-837a-ba8e231c7286",
        "Azure DevOps Administrator",
    ),
    (
        "e6d1a23a-da11-4be4-9570-befc86d067a7",
        "Compliance Data Administrator",
    ),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
    ),
    ("e8cef6f1-e4bd-4ea8-bc07-4b8d950f4477", "Printer Technician"),
    (
        "eb1f4a8d-243a-41f0-9fbd-c7cdf6c5ef7c",
        "Insights Administrator",
    ),
    (
        "f023fd81-a637-4b56-95fd-791ac0226033",
        "Service Support Administrator",
    ),
    (
        "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
        "SharePoint Administrator",
    ),
    ("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader"),
    (
        "f70938a0-fc10-4177-9e90-2178f8765737",
        "Teams Communications Support Engineer",
    ),
    (
        "fcf91098-03e3-41a9-b5ba-6f0ec8188a12",
        "Teams Communications Support Specialist",
    ),
    (
        "fdd7a751-b60b-444a-984c-02652fe8fa1c",
        "Groups Administrator",
    ),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
];

/// The built-in role's display name for a template id (case-insensitive).
pub fn built_in_role_name(id: &str) -> Option<&'static str> {
    let id = id.trim().to_ascii_lowercase();
    BUILT_IN_ROLES
        .binary_search_by(|(k, _)| (*k).cmp(id.as_str()))
        .ok()
        .map(|i| BUILT_IN_ROLES[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_found() {
        assert!(BUILT_IN_ROLES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            built_in_role_name("62E90394-69F5-4237-9190-012177145E10"),
            Some("Global Administrator")
        );
        assert_eq!(
            built_in_role_name("00000000-0000-0000-0000-000000000000"),
            None
        );
    }
}
