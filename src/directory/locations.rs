//! Named locations (`ipNamedLocation`, `countryNamedLocation`, `compliantNetworkNamedLocation`)
//! and the IP look-ups the engine makes millions of times.
//!
//! In: Graph `namedLocation` objects. Out: per location a sorted, merged table of address ranges
//! (binary search), the country set, and `isTrusted` (entra-semantics.md §2.2 "Locations", §6.7).
//! CIDRs are masked before use: Microsoft's own example `12.34.221.11/22` is not network-aligned.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationKind {
    Ip {
        trusted: bool,
        v4: Vec<(u32, u32)>,
        v6: Vec<(u128, u128)>,
    },
    Country {
        countries: BTreeSet<String>,
        /// The same countries interned: the engine tests a sign-in's (interned) country with
        /// one hash probe on its precomputed hash, not string comparisons down a tree.
        symbols: ustr::UstrSet,
        include_unknown: bool,
        /// `authenticatorAppGps` cannot be replayed from logs.
        gps: bool,
    },
    /// Traffic through the tenant's Global Secure Access (compliant network).
    CompliantNetwork,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedLocation {
    pub id: String,
    pub display_name: String,
    pub kind: LocationKind,
}

/// A problem in one named location object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationProblem {
    pub index: usize,
    pub message: String,
}

impl NamedLocation {
    /// Parses one Graph named location. The type comes from `@odata.type`, or from the
    /// `locationType` field some hand-written files use, or from which fields are present.
    pub fn from_json(v: &Value, fallback_id: &str) -> Result<NamedLocation, String> {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        let id = match s("id") {
            id if !id.is_empty() => id,
            _ => fallback_id.to_owned(),
        };
        let display_name = s("displayName");
        let ty = [s("@odata.type"), s("locationType")]
            .into_iter()
            .find(|t| !t.is_empty())
            .unwrap_or_default()
            .trim_start_matches("#microsoft.graph.")
            .to_ascii_lowercase();
        let ty = if ty.is_empty() {
            if v.get("ipRanges").is_some() {
                "ipnamedlocation".to_owned()
            } else if v.get("countriesAndRegions").is_some() {
                "countrynamedlocation".to_owned()
            } else {
                return Err(format!(
                    "named location `{id}` has no `@odata.type` and neither `ipRanges` nor `countriesAndRegions`"
                ));
            }
        } else {
            ty
        };
        let kind = match ty.as_str() {
            "ipnamedlocation" => {
                let trusted = bool_of(v.get("isTrusted"));
                let mut v4 = Vec::new();
                let mut v6 = Vec::new();
                let ranges = v.get("ipRanges").and_then(Value::as_array);
                for (i, r) in ranges.into_iter().flatten().enumerate() {
                    let text = r
                        .get("cidrAddress")
                        .and_then(Value::as_str)
                        .or_else(|| r.as_str())
                        .unwrap_or("");
                    let net = parse_cidr(text).map_err(|e| {
                        format!("named location `{id}` ipRanges[{i}]: `{text}` {e}")
                    })?;
                    match net {
                        IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                        IpNet::V6(n) => {
                            v6.push((u128::from(n.network()), u128::from(n.broadcast())))
                        }
                    }
                }
                LocationKind::Ip {
                    trusted,
                    v4: merge(v4),
                    v6: merge(v6),
                }
            }
            "countrynamedlocation" => {
                let countries: BTreeSet<String> = v
                    .get("countriesAndRegions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|c| c.trim().to_ascii_uppercase())
                    .collect();
                let symbols = countries.iter().map(|c| ustr::Ustr::from(c)).collect();
                let gps = s("countryLookupMethod").eq_ignore_ascii_case("authenticatorAppGps");
                LocationKind::Country {
                    countries,
                    symbols,
                    include_unknown: bool_of(v.get("includeUnknownCountriesAndRegions")),
                    gps,
                }
            }
            "compliantnetworknamedlocation" => LocationKind::CompliantNetwork,
            other => return Err(format!("named location `{id}` has unknown type `{other}`")),
        };
        Ok(NamedLocation {
            id,
            display_name,
            kind,
        })
    }

    pub fn is_trusted(&self) -> bool {
        matches!(self.kind, LocationKind::Ip { trusted: true, .. })
            || matches!(self.kind, LocationKind::CompliantNetwork)
    }
}

fn bool_of(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Parses a CIDR (or a bare address as a /32 or /128) and masks the host bits.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = IpNet::from_str(text) {
        return Ok(net.trunc());
    }
    match IpAddr::from_str(text) {
        Ok(ip) => Ok(IpNet::from(ip)),
        Err(_) => Err("is not a CIDR range".to_owned()),
    }
}

fn merge<T: Ord + Copy + num_succ::Succ>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        if let Some(last) = out.last_mut() {
            if start <= last.1.succ_saturating() {
                if end > last.1 {
                    last.1 = end;
                }
                continue;
            }
        }
        out.push((start, end));
    }
    out
}

mod num_succ {
    pub trait Succ {
        fn succ_saturating(self) -> Self;
    }
    impl Succ for u32 {
        fn succ_saturating(self) -> Self {
            self.saturating_add(1)
        }
    }
    impl Succ for u128 {
        fn succ_saturating(self) -> Self {
            self.saturating_add(1)
        }
    }
}

fn in_ranges<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
    // Ranges are sorted and disjoint: find the last range starting at or before x.
    let i = ranges.partition_point(|r| r.0 <= x);
    i > 0 && x <= ranges[i - 1].1
}

/// Whether an address falls in IPv4 / IPv6 range tables.
pub fn ip_in(v4: &[(u32, u32)], v6: &[(u128, u128)], ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => in_ranges(v4, u32::from(a)),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(m) => in_ranges(v4, u32::from(m)),
            None => in_ranges(v6, u128::from(a)),
        },
    }
}

/// A range table built from CIDR strings (the legacy MFA trusted IPs of `ca-replay.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpTable {
    pub v4: Vec<(u32, u32)>,
    pub v6: Vec<(u128, u128)>,
}

impl IpTable {
    pub fn from_cidrs<'a>(cidrs: impl IntoIterator<Item = &'a str>) -> Result<IpTable, String> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for c in cidrs {
            match parse_cidr(c).map_err(|e| format!("`{c}` {e}"))? {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        Ok(IpTable {
            v4: merge(v4),
            v6: merge(v6),
        })
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip_in(&self.v4, &self.v6, ip)
    }
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_unaligned_cidr_like_microsofts_example() {
        let loc = NamedLocation::from_json(
            &json!({"@odata.type":"#microsoft.graph.ipNamedLocation","id":"x","isTrusted":true,
                    "ipRanges":[{"cidrAddress":"12.34.221.11/22"},{"cidrAddress":"2001:0:9d38:90d6:0:0:0:0/63"}]}),
            "f",
        )
        .unwrap();
        let LocationKind::Ip { v4, v6, trusted } = &loc.kind else {
            panic!("not ip")
        };
        assert!(trusted);
        assert!(ip_in(v4, v6, "12.34.220.1".parse().unwrap()));
        assert!(ip_in(v4, v6, "12.34.223.255".parse().unwrap()));
        assert!(!ip_in(v4, v6, "12.34.224.0".parse().unwrap()));
        assert!(ip_in(v4, v6, "2001:0:9d38:90d7::1".parse().unwrap()));
        assert!(!ip_in(v4, v6, "2001:0:9d38:90d8::1".parse().unwrap()));
        assert!(ip_in(v4, v6, "::ffff:12.34.221.1".parse().unwrap()));
    }

    #[test]
    fn merges_overlapping_and_adjacent_ranges() {
        let t = IpTable::from_cidrs(["10.0.0.0/25", "10.0.0.128/25", "10.0.0.5/32", "8.0.0.0/8"])
            .unwrap();
        assert_eq!(t.v4.len(), 2);
        assert!(t.contains("10.0.0.200".parse().unwrap()));
        assert!(!t.contains("10.0.1.0".parse().unwrap()));
    }

    #[test]
    fn country_location_and_location_type_field() {
        let loc = NamedLocation::from_json(
            &json!({"locationType":"countryNamedLocation","displayName":"Bad","countriesAndRegions":["kp","IR"],
                    "includeUnknownCountriesAndRegions":"True"}),
            "NL003",
        )
        .unwrap();
        assert_eq!(loc.id, "NL003");
        let LocationKind::Country {
            countries,
            include_unknown,
            ..
        } = loc.kind
        else {
            panic!()
        };
        assert!(countries.contains("KP") && include_unknown);
    }

    #[test]
    fn bad_cidr_names_the_location_and_value() {
        let err = NamedLocation::from_json(
            &json!({"@odata.type":"#microsoft.graph.ipNamedLocation","id":"L1","ipRanges":[{"cidrAddress":"300.1.1.1/8"}]}),
            "f",
        )
        .unwrap_err();
        assert!(
            err.contains("`L1`") && err.contains("`300.1.1.1/8`"),
            "{err}"
        );
    }
}
