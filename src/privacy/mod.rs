//! Pseudonymization (`run --pseudonymize`, `diff --pseudonymize`): user principal names,
//! user ids, display names, IP addresses and device ids become keyed hashes, so reports can be
//! shared in CI logs and tickets; the mapping back is a separate file, written only on request.
//!
//! In: a secret [`Key`] (`CA_REPLAY_PSEUDONYM_KEY`) and what the run read (directory, config,
//! sign-ins). Out: a [`Pseudonymizer`] that turns a value, a sign-in or a free text into its
//! pseudonymous form, writes the mapping CSV, and checks finished reports for leaks.
//!
//! A pseudonym is `<kind>-<16 hex digits>`: the first 64 bits of HMAC-SHA256 over a version
//! tag, the kind and the value in canonical form (ids and UPNs trimmed and lower-cased, IPs in
//! their standard text form). Kinds: `user-` (one per person: the id, every UPN spelling and the
//! display name of one user read the same), `ip-`, `device-` (id and name of one device),
//! `name-` (a display name shared by several users, or of no known user: never merged into
//! one of them) and `value-` (an unreadable record's raw value). Same key and value, same
//! pseudonym, in every run: nightly trends stay comparable. 64 bits keep the chance of any
//! collision among 10 million values near 3·10⁻⁶; a collision is still detected and is an
//! error ([`PrivacyError::Collision`]) rather than two people merged.
//!
//! Who is who: a UPN or name stands for the user whose id it was seen with (`users.json`
//! first; among sign-ins, the smallest id). A UPN seen without any id gets its own `user-`
//! pseudonym, so a run without `users.json` may name such a user differently.
//!
//! Where it is applied: `report::pseudonymize::apply` (run) and `report::pseudonymize::diff`
//! rewrite what the writers read, after the replay and before the writers; the writers'
//! output then goes through [`LeakCheck`] before anything is written. A new command does the
//! same. Use (what `run` does):
//! ```no_run
//! # fn demo(tenant: &ca_replay::tenant::Tenant, signins: &mut [ca_replay::signin::SignIn]) -> Result<(), ca_replay::privacy::PrivacyError> {
//! use ca_replay::privacy::{Key, Pseudonymizer};
//! let mut pz = Pseudonymizer::builder(Key::from_env()?)
//!     .tenant(tenant)
//!     .signins(signins)
//!     .build()?;
//! let who = pz.user("31500d5f-06b6-4d7f-9379-da72311517c5", "", "")?; // `user-…`
//! let line = pz.text("excluded by user `bg1@contoso.com`")?; // every known value replaced
//! for s in signins.iter_mut() {
//!     pz.signin(s)?; // ids, UPN, names, device in place; the IP removed
//! }
//! let check = pz.leak_check()?;
//! check.file("report.md", b"...")?; // Err(Leak) when a known value is still there
//! let mapping_csv = pz.mapping_csv(); // pseudonym,kind,original
//! # Ok(()) }
//! ```
//!
//! Free text ([`Pseudonymizer::text`]) is searched for every known spelling, ASCII
//! case-insensitively and with edges per kind (see `matcher`), then for any e-mail-shaped word
//! left (a UPN no input tied to a user, quoted by a warning). Display names are searched only
//! when they are unlikely to be ordinary words: at least four characters with a space or a
//! digit, and not part of a policy, group, location, app or role name (a user named `Global
//! Administrator` must not turn role names into pseudonyms). They are always replaced where the
//! data has them as a field. Ids shorter than three characters are not searched either. What is
//! kept: policy, group, named-location, app and role names and ids, sign-in and correlation ids,
//! tenant ids, countries.

mod matcher;
pub mod scan;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::directory::FastMap as FxHashMap;
use crate::signin::SignIn;
use matcher::{Edge, Matcher};
pub use scan::LeakCheck;

/// The environment variable that holds the key.
pub const KEY_VAR: &str = "CA_REPLAY_PSEUDONYM_KEY";

/// The shortest key accepted, in bytes. The key is all that stands between a pseudonym and its
/// value: an IPv4 address has only 2³² candidates and many UPNs can be guessed, so anyone who
/// can try keys can undo pseudonyms. 32 bytes (`openssl rand -hex 16` gives 32 characters,
/// 128 bits) make trying keys hopeless; a pass phrase should be longer still.
pub const MIN_KEY_BYTES: usize = 32;

/// Hex digits of the HMAC kept in a pseudonym: 64 bits.
const DIGITS: usize = 16;

/// Changing how pseudonyms are made changes this tag, so old and new never look alike.
const VERSION: &[u8] = b"ca-replay pseudonym v1";

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("pseudonymization needs a key: {KEY_VAR} is not set or empty\nhint: export {KEY_VAR}=\"$(openssl rand -hex 32)\", keep it secret, and keep using the same one so that pseudonyms stay comparable from run to run")]
    NoKey,
    #[error("{KEY_VAR} is {0} bytes long; at least {MIN_KEY_BYTES} are needed (a short key lets anyone who tries keys undo the pseudonyms)\nhint: export {KEY_VAR}=\"$(openssl rand -hex 32)\"")]
    ShortKey(usize),
    #[error("pseudonym `{pseudonym}` stands for two different values (a {first} and a {second}); stopping rather than merging them\nhint: a 64-bit collision is very unlikely: check the input, or use another key")]
    Collision {
        pseudonym: String,
        first: &'static str,
        second: &'static str,
    },
    #[error("{file}: a {what} from the input is still there after pseudonymization (its pseudonym is `{pseudonym}`); no report was written\nhint: this is a bug in ca-replay; --pseudonym-map FILE writes the mapping that names the value")]
    Leak {
        file: String,
        what: &'static str,
        pseudonym: String,
    },
    #[error("{file}: cannot be read back for the leak check: {message}")]
    Unreadable { file: String, message: String },
    #[error("too many values to search for: {0}")]
    Matcher(String),
}

/// The secret key. Its `Debug` never shows it, and nothing prints it.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({} bytes, redacted)", self.0.len())
    }
}

impl Key {
    /// A key from bytes: non-empty and at least [`MIN_KEY_BYTES`] long.
    pub fn new(bytes: Vec<u8>) -> Result<Key, PrivacyError> {
        match bytes.len() {
            0 => Err(PrivacyError::NoKey),
            n if n < MIN_KEY_BYTES => Err(PrivacyError::ShortKey(n)),
            _ => Ok(Key(bytes)),
        }
    }

    /// The key from [`KEY_VAR`], taken byte for byte (no trimming).
    pub fn from_env() -> Result<Key, PrivacyError> {
        match std::env::var_os(KEY_VAR) {
            Some(v) => Key::new(v.into_encoded_bytes()),
            None => Err(PrivacyError::NoKey),
        }
    }
}

/// What an original value was: the `kind` column of the mapping file, and what a leak names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    UserId,
    UserPrincipalName,
    DisplayName,
    IpAddress,
    DeviceId,
    DeviceName,
    Value,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::UserId => "user_id",
            Field::UserPrincipalName => "user_principal_name",
            Field::DisplayName => "display_name",
            Field::IpAddress => "ip_address",
            Field::DeviceId => "device_id",
            Field::DeviceName => "device_name",
            Field::Value => "value",
        }
    }
    /// For messages: "user principal name".
    pub fn words(self) -> &'static str {
        match self {
            Field::UserId => "user id",
            Field::UserPrincipalName => "user principal name",
            Field::DisplayName => "display name",
            Field::IpAddress => "IP address",
            Field::DeviceId => "device id",
            Field::DeviceName => "device name",
            Field::Value => "raw value",
        }
    }
    fn parse(s: &str) -> Option<Field> {
        [
            Field::UserId,
            Field::UserPrincipalName,
            Field::DisplayName,
            Field::IpAddress,
            Field::DeviceId,
            Field::DeviceName,
            Field::Value,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
}

fn canon(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Whether a device id is a real one (unregistered devices log none, or the zero GUID).
fn real_device_id(id: &str) -> bool {
    let id = id.trim();
    !id.is_empty() && id != "00000000-0000-0000-0000-000000000000"
}

/// Collects what a run read, then [`Builder::build`]s the [`Pseudonymizer`]: every value is
/// known before any pseudonym is given, so who is who does not depend on the order of reading.
pub struct Builder {
    key: Key,
    /// (id, UPN, display name, from the directory).
    users: Vec<(String, String, String, bool)>,
    ips: BTreeSet<IpAddr>,
    /// (device id, device name).
    devices: BTreeSet<(String, String)>,
    /// Names that are not personal (policies, groups, locations, apps, roles).
    vocabulary: BTreeSet<String>,
}

impl Builder {
    /// The directory's users, and its group and named-location names as vocabulary.
    pub fn directory(mut self, dir: &crate::directory::Directory) -> Builder {
        for u in &dir.users {
            self.users.push((
                u.id.clone(),
                u.user_principal_name.clone(),
                u.display_name.clone(),
                true,
            ));
        }
        self.vocabulary
            .extend(dir.groups.iter().map(|g| g.display_name.clone()));
        self.vocabulary
            .extend(dir.named_locations.iter().map(|l| l.display_name.clone()));
        self
    }

    /// The directory, the policies' names, the break-glass entries of `ca-replay.toml`, and the
    /// built-in role names.
    pub fn tenant(mut self, tenant: &crate::tenant::Tenant) -> Builder {
        self = self.directory(&tenant.dir);
        self.vocabulary
            .extend(tenant.set.policies.iter().map(|p| p.display_name.clone()));
        self.vocabulary.extend(
            crate::directory::roles::BUILT_IN_ROLES
                .iter()
                .map(|(_, n)| n.to_string()),
        );
        for entry in &tenant.config.break_glass.users {
            self = if entry.contains('@') {
                self.user("", entry, "")
            } else {
                self.user(entry, "", "")
            };
        }
        self
    }

    /// Every sign-in's user, IP and device; app and resource names as vocabulary.
    pub fn signins(mut self, signins: &[SignIn]) -> Builder {
        let mut seen: HashMap<(&str, &str, &str), ()> = HashMap::new();
        for s in signins {
            let who = (
                s.user_id.as_str(),
                s.user_principal_name.as_str(),
                s.user_display_name.as_str(),
            );
            if seen.insert(who, ()).is_none() {
                self.users
                    .push((who.0.to_owned(), who.1.to_owned(), who.2.to_owned(), false));
            }
            if let Some(ip) = s.ip_address {
                self.ips.insert(ip);
            }
            let d = &s.device;
            let named = real_device_id(&d.device_id) || !d.display_name.trim().is_empty();
            if named
                && !self
                    .devices
                    .contains(&(d.device_id.to_string(), d.display_name.to_string()))
            {
                self.devices
                    .insert((d.device_id.to_string(), d.display_name.to_string()));
            }
            for name in [&s.app_display_name, &s.resource_display_name] {
                if !name.is_empty() && !self.vocabulary.contains(name.as_str()) {
                    self.vocabulary.insert(name.to_string());
                }
            }
        }
        self
    }

    /// One user: any of id, UPN and display name may be empty.
    pub fn user(mut self, id: &str, upn: &str, name: &str) -> Builder {
        self.users
            .push((id.to_owned(), upn.to_owned(), name.to_owned(), false));
        self
    }

    pub fn ip(mut self, ip: IpAddr) -> Builder {
        self.ips.insert(ip);
        self
    }

    /// A name that is not personal data (it keeps display names equal to it out of the search).
    pub fn vocabulary(mut self, word: &str) -> Builder {
        self.vocabulary.insert(word.to_owned());
        self
    }

    /// Gives every value its pseudonym; a collision is an error.
    pub fn build(self) -> Result<Pseudonymizer, PrivacyError> {
        let mut pz = Pseudonymizer::new(&self.key);
        // Users with an id: one pseudonym each.
        for (id, _, _, _) in &self.users {
            if !id.trim().is_empty() {
                pz.user_id(id)?;
            }
        }
        // A UPN stands for the id it was seen with: the directory's first, else the smallest.
        let mut upn_owner: BTreeMap<String, (bool, String)> = BTreeMap::new();
        for (id, upn, _, from_dir) in &self.users {
            if id.trim().is_empty() || upn.trim().is_empty() {
                continue;
            }
            let candidate = (!*from_dir, canon(id));
            upn_owner
                .entry(canon(upn))
                .and_modify(|o| {
                    if candidate < *o {
                        *o = candidate.clone();
                    }
                })
                .or_insert(candidate);
        }
        for (upn, (_, id)) in &upn_owner {
            let p = pz.users[id].clone();
            pz.upns.insert(upn.clone(), p);
        }
        for (_, upn, _, _) in &self.users {
            if !upn.trim().is_empty() {
                pz.upn(upn)?;
            }
        }
        // A display name stands for its user when only one user has it.
        let mut name_owners: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (id, upn, name, _) in &self.users {
            if name.trim().is_empty() {
                continue;
            }
            let owners = name_owners.entry(canon(name)).or_default();
            if !id.trim().is_empty() {
                owners.insert(pz.user_id(id)?);
            } else if !upn.trim().is_empty() {
                owners.insert(pz.upn(upn)?);
            }
        }
        for (name, owners) in &name_owners {
            if let [one] = owners.iter().collect::<Vec<_>>().as_slice() {
                pz.names.insert(name.clone(), (*one).clone());
            }
        }
        for (_, _, name, _) in &self.users {
            if !name.trim().is_empty() {
                pz.display_name(name)?;
            }
        }
        for ip in &self.ips {
            pz.ip(*ip)?;
        }
        // Devices: by id; a name stands for its device when only one device has it.
        let mut device_names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (id, name) in &self.devices {
            if real_device_id(id) {
                let p = pz.device_id(id)?;
                if !name.trim().is_empty() {
                    device_names.entry(canon(name)).or_default().insert(p);
                }
            }
        }
        for (name, owners) in &device_names {
            if let [one] = owners.iter().collect::<Vec<_>>().as_slice() {
                pz.device_names.insert(name.clone(), (*one).clone());
            }
        }
        for (_, name) in &self.devices {
            if !name.trim().is_empty() {
                pz.device_name(name)?;
            }
        }
        pz.vocabulary = self.vocabulary.into_iter().collect();
        Ok(pz)
    }
}

/// Turns values, sign-ins and free text into their pseudonymous form; remembers every value
/// it has seen for the mapping file and the leak check. See the module documentation.
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
    key_id: String,
    users: HashMap<String, String>,
    upns: HashMap<String, String>,
    names: HashMap<String, String>,
    ips: HashMap<IpAddr, String>,
    device_ids: HashMap<String, String>,
    device_names: HashMap<String, String>,
    values: HashMap<String, String>,
    /// Pseudonym → the input it was made from (kind tag and canonical value): a second input
    /// giving the same pseudonym is a collision.
    made_from: HashMap<String, (Field, String)>,
    /// Pseudonym → the original spellings, by field: the mapping file, and what is searched.
    originals: BTreeMap<String, BTreeSet<(Field, String)>>,
    vocabulary: Vec<String>,
    /// Free text seen already, and its pseudonymous form (`None`: unchanged).
    texts: FxHashMap<String, Option<String>>,
    replacer: Option<(Matcher, Vec<String>)>,
    /// Set while `text` adds the e-mails it found.
    in_text: bool,
    /// A sign-in's (user id, UPN, display name) as logged → the user's pseudonym.
    signin_users: FxHashMap<(String, String, String), String>,
    email: regex::Regex,
}

impl Pseudonymizer {
    /// Starts collecting what a run read.
    pub fn builder(key: Key) -> Builder {
        Builder {
            key,
            users: Vec::new(),
            ips: BTreeSet::new(),
            devices: BTreeSet::new(),
            vocabulary: BTreeSet::new(),
        }
    }

    fn new(key: &Key) -> Pseudonymizer {
        // HMAC takes keys of any length: this cannot fail.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        let mut id = mac.clone();
        id.update(VERSION);
        id.update(b"\0key id");
        let key_id = hex(&id.finalize().into_bytes()[..4]);
        Pseudonymizer {
            mac,
            key_id,
            users: HashMap::new(),
            upns: HashMap::new(),
            names: HashMap::new(),
            ips: HashMap::new(),
            device_ids: HashMap::new(),
            device_names: HashMap::new(),
            values: HashMap::new(),
            made_from: HashMap::new(),
            originals: BTreeMap::new(),
            vocabulary: Vec::new(),
            texts: FxHashMap::default(),
            replacer: None,
            in_text: false,
            signin_users: FxHashMap::default(),
            email: regex::Regex::new(
                // `\w`: Unicode letters, digits and `_` (the regex build has unicode-perl).
                r"[\w'.!#^~%+\-]+@[\w\-]+(?:\.[\w\-]+)+",
            )
            .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}")),
        }
    }

    /// A short, public fingerprint of the key (8 hex digits): two runs whose reports show the
    /// same one used the same key, so their pseudonyms can be compared.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// `prefix-<16 hex>` for (tag, canonical value), remembered; a collision is an error.
    fn make(
        &mut self,
        prefix: &str,
        field: Field,
        canonical: &str,
        spelling: &str,
    ) -> Result<String, PrivacyError> {
        let mut mac = self.mac.clone();
        mac.update(VERSION);
        mac.update(&[0]);
        mac.update(prefix.as_bytes());
        mac.update(&[0]);
        mac.update(field.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(canonical.as_bytes());
        let digest = mac.finalize().into_bytes();
        let p = format!("{prefix}-{}", hex(&digest[..DIGITS / 2]));
        match self.made_from.get(&p) {
            Some((f, c)) if (*f, c.as_str()) != (field, canonical) => {
                return Err(PrivacyError::Collision {
                    pseudonym: p,
                    first: f.words(),
                    second: field.words(),
                })
            }
            Some(_) => {}
            None => {
                self.made_from
                    .insert(p.clone(), (field, canonical.to_owned()));
            }
        }
        self.remember(&p, field, spelling);
        Ok(p)
    }

    /// Records a spelling of a pseudonym's value. A new one that free text is searched for
    /// makes the search and the texts already done stale (except while [`Pseudonymizer::text`]
    /// itself adds an e-mail its own pattern found: that pattern finds it again).
    fn remember(&mut self, pseudonym: &str, field: Field, spelling: &str) {
        let spelling = spelling.trim();
        if spelling.is_empty() {
            return;
        }
        let set = self.originals.entry(pseudonym.to_owned()).or_default();
        if set.insert((field, spelling.to_owned())) && field != Field::Value && !self.in_text {
            self.replacer = None;
            self.texts.clear();
        }
    }

    /// A user by object id.
    pub fn user_id(&mut self, id: &str) -> Result<String, PrivacyError> {
        let c = canon(id);
        if let Some(p) = self.users.get(&c).cloned() {
            self.remember(&p, Field::UserId, id);
            return Ok(p);
        }
        let p = self.make("user", Field::UserId, &c, id)?;
        self.users.insert(c, p.clone());
        Ok(p)
    }

    /// A user by UPN: the pseudonym of the user it was seen with, else its own.
    pub fn upn(&mut self, upn: &str) -> Result<String, PrivacyError> {
        let c = canon(upn);
        if let Some(p) = self.upns.get(&c).cloned() {
            self.remember(&p, Field::UserPrincipalName, upn);
            return Ok(p);
        }
        let p = self.make("user", Field::UserPrincipalName, &c, upn)?;
        self.upns.insert(c, p.clone());
        Ok(p)
    }

    /// A display name: its user's pseudonym when only one user has it, else a `name-` one.
    pub fn display_name(&mut self, name: &str) -> Result<String, PrivacyError> {
        let c = canon(name);
        if let Some(p) = self.names.get(&c).cloned() {
            self.remember(&p, Field::DisplayName, name);
            return Ok(p);
        }
        let p = self.make("name", Field::DisplayName, &c, name)?;
        self.names.insert(c, p.clone());
        Ok(p)
    }

    /// The pseudonym of one user given by any of id, UPN and display name (the first one that
    /// is not empty decides); empty when all are.
    pub fn user(&mut self, id: &str, upn: &str, name: &str) -> Result<String, PrivacyError> {
        if !id.trim().is_empty() {
            self.user_id(id)
        } else if !upn.trim().is_empty() {
            self.upn(upn)
        } else if !name.trim().is_empty() {
            self.display_name(name)
        } else {
            Ok(String::new())
        }
    }

    pub fn ip(&mut self, ip: IpAddr) -> Result<String, PrivacyError> {
        if let Some(p) = self.ips.get(&ip) {
            return Ok(p.clone());
        }
        let text = ip.to_string();
        let p = self.make("ip", Field::IpAddress, &text, &text)?;
        self.ips.insert(ip, p.clone());
        Ok(p)
    }

    pub fn device_id(&mut self, id: &str) -> Result<String, PrivacyError> {
        let c = canon(id);
        if let Some(p) = self.device_ids.get(&c).cloned() {
            self.remember(&p, Field::DeviceId, id);
            return Ok(p);
        }
        let p = self.make("device", Field::DeviceId, &c, id)?;
        self.device_ids.insert(c, p.clone());
        Ok(p)
    }

    /// A device name: its device's pseudonym when only one device has it, else its own.
    pub fn device_name(&mut self, name: &str) -> Result<String, PrivacyError> {
        let c = canon(name);
        if let Some(p) = self.device_names.get(&c).cloned() {
            self.remember(&p, Field::DeviceName, name);
            return Ok(p);
        }
        let p = self.make("device", Field::DeviceName, &c, name)?;
        self.device_names.insert(c, p.clone());
        Ok(p)
    }

    /// An opaque value (what an unreadable record held): `value-…`, exact (not canonicalised).
    pub fn value(&mut self, v: &str) -> Result<String, PrivacyError> {
        if let Some(p) = self.values.get(v) {
            return Ok(p.clone());
        }
        let p = self.make("value", Field::Value, v, v)?;
        self.values.insert(v.to_owned(), p.clone());
        Ok(p)
    }

    /// A sign-in, in place: user id, UPN and display name become the user's pseudonym (each
    /// only where it was not empty), device id and name the device's; the IP address is
    /// removed (it has no text form to hold a pseudonym, and no report prints it).
    pub fn signin(&mut self, s: &mut SignIn) -> Result<(), PrivacyError> {
        let triple = (
            s.user_id.to_string(),
            s.user_principal_name.to_string(),
            s.user_display_name.to_string(),
        );
        let who = match self.signin_users.get(&triple) {
            Some(p) => p.clone(),
            None => {
                let (id, upn, name) = &triple;
                let who = self.user(id, upn, name)?;
                // Every spelling the sign-in shows, under its user's pseudonym.
                self.remember(&who, Field::UserPrincipalName, upn);
                self.remember(&who, Field::DisplayName, name);
                self.signin_users.insert(triple.clone(), who.clone());
                who
            }
        };
        let who = crate::signin::Ustr::from(&who);
        for f in [
            &mut s.user_id,
            &mut s.user_principal_name,
            &mut s.user_display_name,
        ] {
            if !f.trim().is_empty() {
                *f = who;
            }
        }
        s.ip_address = None;
        let d = &mut s.device;
        let device = if real_device_id(&d.device_id) {
            self.device_id(&d.device_id)?
        } else if !d.display_name.trim().is_empty() {
            self.device_name(&d.display_name)?
        } else {
            String::new()
        };
        let device = crate::signin::Ustr::from(&device);
        if !d.device_id.trim().is_empty() && real_device_id(&d.device_id) {
            d.device_id = device;
        }
        if !d.display_name.trim().is_empty() {
            d.display_name = device;
        }
        Ok(())
    }
}

/// Whether a spelling is searched for in free text (see the module documentation); `public`
/// holds the names (lower-cased) found inside policy, group, location, app and role names.
fn searched(field: Field, spelling: &str, public: &std::collections::HashSet<String>) -> bool {
    {
        match field {
            Field::UserId | Field::DeviceId => spelling.chars().count() >= 3,
            Field::UserPrincipalName | Field::IpAddress => true,
            Field::DisplayName | Field::DeviceName => {
                spelling.chars().count() >= 4
                    && spelling
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_ascii_digit())
                    && !public.contains(&spelling.to_ascii_lowercase())
            }
            Field::Value => false,
        }
    }
}

impl Pseudonymizer {
    /// The searched spellings with their edge rule and pseudonym (index into the list).
    fn patterns(&self) -> Result<(Matcher, Vec<String>), PrivacyError> {
        let edge = |field: Field, s: &str| match field {
            Field::UserPrincipalName => Edge::Upn,
            Field::IpAddress if s.contains(':') => Edge::Ipv6,
            Field::IpAddress => Edge::Ipv4,
            _ => Edge::Word,
        };
        // Names that occur in public names (policies, groups, apps, roles) are not searched.
        let names: Vec<&str> = self
            .originals
            .values()
            .flatten()
            .filter(|(f, _)| matches!(f, Field::DisplayName | Field::DeviceName))
            .map(|(_, s)| s.as_str())
            .collect();
        let name_matcher = Matcher::new(
            names
                .iter()
                .enumerate()
                .map(|(i, s)| (s.to_string(), Edge::Word, i)),
        )
        .map_err(|e| PrivacyError::Matcher(e.to_string()))?;
        let mut public = std::collections::HashSet::new();
        for word in &self.vocabulary {
            for (_, i) in name_matcher.find(word) {
                public.insert(names[i].to_ascii_lowercase());
            }
        }
        // Priority where one spelling has two meanings: ids, UPNs, IPs, devices, names.
        let mut entries: Vec<(Field, &String, &String)> = self
            .originals
            .iter()
            .flat_map(|(p, set)| set.iter().map(move |(f, s)| (*f, s, p)))
            .filter(|(f, s, _)| searched(*f, s, &public))
            .collect();
        entries.sort();
        let mut targets: Vec<String> = Vec::new();
        let mut index: HashMap<&String, usize> = HashMap::new();
        let list: Vec<(String, Edge, usize)> = entries
            .into_iter()
            .map(|(f, s, p)| {
                let i = *index.entry(p).or_insert_with(|| {
                    targets.push(p.clone());
                    targets.len() - 1
                });
                (s.clone(), edge(f, s), i)
            })
            .collect();
        let m = Matcher::new(list).map_err(|e| PrivacyError::Matcher(e.to_string()))?;
        Ok((m, targets))
    }

    /// Free text with every known value replaced by its pseudonym, and every e-mail-shaped
    /// word left by a `user-` pseudonym of its own. Repeated texts are looked up, not searched.
    pub fn text<'a>(&mut self, s: &'a str) -> Result<Cow<'a, str>, PrivacyError> {
        if let Some(done) = self.texts.get(s) {
            return Ok(match done {
                None => Cow::Borrowed(s),
                Some(t) => Cow::Owned(t.clone()),
            });
        }
        if self.replacer.is_none() {
            self.replacer = Some(self.patterns()?);
        }
        let mut out = String::with_capacity(s.len());
        if let Some((m, targets)) = &self.replacer {
            let mut at = 0;
            for (r, t) in m.find(s) {
                out.push_str(&s[at..r.start]);
                out.push_str(&targets[t]);
                at = r.end;
            }
            out.push_str(&s[at..]);
        }
        // UPNs no input tied to a user (a registration record's, a warning's).
        let emails: Vec<(std::ops::Range<usize>, String)> = self
            .email
            .find_iter(&out)
            .map(|m| (m.range(), m.as_str().to_owned()))
            .collect();
        if !emails.is_empty() {
            let mut with = String::with_capacity(out.len());
            let mut at = 0;
            self.in_text = true;
            for (r, e) in emails {
                with.push_str(&out[at..r.start]);
                let p = self.upn(&e);
                let Ok(p) = p else {
                    self.in_text = false;
                    return p.map(Cow::Owned);
                };
                with.push_str(&p);
                at = r.end;
            }
            self.in_text = false;
            with.push_str(&out[at..]);
            out = with;
        }
        let changed = out != s;
        self.texts
            .insert(s.to_owned(), changed.then(|| out.clone()));
        Ok(if changed {
            Cow::Owned(out)
        } else {
            Cow::Borrowed(s)
        })
    }

    /// Every string of a JSON value (object keys too) through [`Pseudonymizer::text`].
    pub fn json(&mut self, v: &mut serde_json::Value) -> Result<(), PrivacyError> {
        use serde_json::Value;
        match v {
            Value::String(s) => {
                if let Cow::Owned(t) = self.text(s)? {
                    *s = t;
                }
            }
            Value::Array(a) => {
                for x in a {
                    self.json(x)?;
                }
            }
            Value::Object(o) => {
                let old = std::mem::take(o);
                for (k, mut x) in old {
                    self.json(&mut x)?;
                    let k = self.text(&k)?.into_owned();
                    o.insert(k, x);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The leak check over finished reports: every searched spelling of every value seen so
    /// far. Build it after the last value was pseudonymized.
    pub fn leak_check(&self) -> Result<LeakCheck, PrivacyError> {
        let (matcher, targets) = self.patterns()?;
        // What each target is, for the message: the first field of its originals.
        let what = targets
            .iter()
            .map(|p| {
                self.originals
                    .get(p)
                    .and_then(|s| s.iter().next())
                    .map_or(Field::Value, |(f, _)| *f)
            })
            .collect();
        Ok(LeakCheck::new(matcher, targets, what))
    }

    /// The mapping file: `pseudonym,kind,original`, one row per original spelling, sorted.
    /// A cell that starts with `=`, `+`, `-`, `@`, a tab, a carriage return or `'` gets one
    /// leading `'` (no spreadsheet formulas); [`read_mapping`] takes it off again.
    pub fn mapping_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        // Writing to a Vec cannot fail.
        let _ = w.write_record(["pseudonym", "kind", "original"]);
        for (p, set) in &self.originals {
            for (f, s) in set {
                let _ = w.write_record([p.as_str(), f.as_str(), &mapping_cell(s)]);
            }
        }
        w.into_inner().unwrap_or_default()
    }

    /// How many distinct pseudonyms were given.
    pub fn len(&self) -> usize {
        self.originals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn mapping_cell(s: &str) -> Cow<'_, str> {
    match s.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\'') => format!("'{s}").into(),
        _ => s.into(),
    }
}

/// Reads a mapping file written by [`Pseudonymizer::mapping_csv`]: (pseudonym, kind,
/// original) rows.
pub fn read_mapping(bytes: &[u8]) -> Result<Vec<(String, Field, String)>, String> {
    let mut r = csv::Reader::from_reader(bytes);
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| format!("row {}: {e}", i + 2))?;
        let (Some(p), Some(k), Some(o)) = (rec.get(0), rec.get(1), rec.get(2)) else {
            return Err(format!("row {}: three columns expected", i + 2));
        };
        let field = Field::parse(k).ok_or_else(|| format!("row {}: unknown kind `{k}`", i + 2))?;
        let o = o.strip_prefix('\'').unwrap_or(o);
        out.push((p.to_owned(), field, o.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: u8) -> Key {
        Key::new(vec![c; MIN_KEY_BYTES]).unwrap()
    }

    #[test]
    fn keys_must_be_long_enough_and_never_show() {
        assert!(matches!(Key::new(Vec::new()), Err(PrivacyError::NoKey)));
        assert!(matches!(
            Key::new(b"short".to_vec()),
            Err(PrivacyError::ShortKey(5))
        ));
        let k = Key::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap();
        assert!(!format!("{k:?}").contains("0123"));
    }

    #[test]
    fn one_user_reads_the_same_by_id_upn_and_name() {
        let mut pz = Pseudonymizer::builder(key(1))
            .user("AAAA-1", "Alice@Contoso.com", "Alice Smith")
            .user("bbbb-2", "bob@contoso.com", "Bob Li")
            .user("cccc-3", "bob2@contoso.com", "Bob Li")
            .build()
            .unwrap();
        let a = pz.user_id("aaaa-1").unwrap();
        assert!(a.starts_with("user-") && a.len() == 5 + DIGITS, "{a}");
        assert_eq!(pz.upn("alice@contoso.com").unwrap(), a);
        assert_eq!(pz.display_name("Alice Smith").unwrap(), a);
        // Two users named alike: the name merges neither of them.
        let bob = pz.display_name("Bob Li").unwrap();
        assert!(bob.starts_with("name-"), "{bob}");
        assert_ne!(
            pz.upn("bob@contoso.com").unwrap(),
            pz.upn("bob2@contoso.com").unwrap()
        );
    }

    #[test]
    fn same_key_same_pseudonym_other_key_other_pseudonym() {
        let p = |k: Key| {
            let mut pz = Pseudonymizer::builder(k).build().unwrap();
            (
                pz.upn("a@x.com").unwrap(),
                pz.ip("10.0.0.1".parse().unwrap()).unwrap(),
            )
        };
        assert_eq!(p(key(1)), p(key(1)));
        let (u1, i1) = p(key(1));
        let (u2, i2) = p(key(2));
        assert!(u1 != u2 && i1 != i2);
        assert!(i1.starts_with("ip-"));
    }

    #[test]
    fn text_replaces_known_values_and_unknown_emails() {
        let mut pz = Pseudonymizer::builder(key(3))
            .user(
                "6c5edf5c-23be-4179-9d4b-ee7accc8783d",
                "bg2@contoso.com",
                "Emergency Access 2",
            )
            .ip("10.0.0.1".parse().unwrap())
            .vocabulary("Global Administrator")
            .user("", "", "Global Administrator")
            .build()
            .unwrap();
        let u = pz.upn("BG2@contoso.com").unwrap();
        let ip = pz.ip("10.0.0.1".parse().unwrap()).unwrap();
        let t = pz
            .text("user `BG2@CONTOSO.COM` (6C5EDF5C-23BE-4179-9D4B-EE7ACCC8783D) from 10.0.0.1, not 10.0.0.12; Emergency Access 2; role Global Administrator; stray x.y@fabrikam.com")
            .unwrap()
            .into_owned();
        assert!(t.starts_with(&format!("user `{u}` ({u}) from {ip}, not 10.0.0.12; {u}; role Global Administrator; stray user-")), "{t}");
        assert!(!t.contains("fabrikam"));
        // The stray UPN is in the mapping now.
        let rows = read_mapping(&pz.mapping_csv()).unwrap();
        assert!(rows
            .iter()
            .any(|(_, f, o)| *f == Field::UserPrincipalName && o == "x.y@fabrikam.com"));
    }

    #[test]
    fn the_mapping_round_trips_and_guards_formulas() {
        let mut pz = Pseudonymizer::builder(key(4))
            .user("id-1", "=cmd@x.com", "'quoted' name")
            .build()
            .unwrap();
        let rows = read_mapping(&pz.mapping_csv()).unwrap();
        assert!(String::from_utf8(pz.mapping_csv())
            .unwrap()
            .contains("'=cmd@x.com"));
        assert_eq!(rows.len(), 3);
        for (p, f, o) in rows {
            let again = match f {
                Field::UserId => pz.user_id(&o),
                Field::UserPrincipalName => pz.upn(&o),
                Field::DisplayName => pz.display_name(&o),
                _ => unreachable!(),
            }
            .unwrap();
            assert_eq!(again, p, "{f:?} {o}");
        }
    }

    #[test]
    fn the_leak_check_sees_values_through_each_files_escaping() {
        let pz = Pseudonymizer::builder(key(8))
            .user(
                "5f1c2d3e-0000-4000-8000-00000000abcd",
                "o'brien_1@x.com",
                "Seán O'Brien",
            )
            .ip("10.0.0.1".parse().unwrap())
            .build()
            .unwrap();
        let check = pz.leak_check().unwrap();
        let leak = |name: &str, text: &str| {
            matches!(
                check.file(name, text.as_bytes()),
                Err(PrivacyError::Leak { .. })
            )
        };
        assert!(leak("report.html", "<td>O&#x27;Brien_1@X.com</td>"));
        assert!(leak("report.html", "by Se&#225;n O&#39;Brien"));
        assert!(leak("report.md", "user o'brien\\_1@x.com"));
        assert!(leak(
            "summary.json",
            r#"{"5F1C2D3E-0000-4000-8000-00000000ABCD": 1}"#
        ));
        assert!(leak("users.csv", "a,b\n1,\"from 10.0.0.1\"\n"));
        // Not a leak: a longer IP, a pseudonym, a UPN inside another.
        assert!(!leak("users.csv", "a,b\n1,10.0.0.12\n"));
        assert!(!leak(
            "report.md",
            "user `user-0123456789abcdef`, bo'brien\\_1@x.com"
        ));
        // A file the check cannot read is an error too, not a pass.
        assert!(matches!(
            check.file("summary.json", b"{not json"),
            Err(PrivacyError::Unreadable { .. })
        ));
    }

    #[test]
    fn a_collision_is_an_error() {
        let mut pz = Pseudonymizer::builder(key(5)).build().unwrap();
        let p = pz.upn("a@x.com").unwrap();
        // Pretend another value had produced the same pseudonym.
        pz.made_from
            .insert(p.clone(), (Field::UserPrincipalName, "b@x.com".into()));
        pz.upns.clear();
        assert!(matches!(
            pz.upn("a@x.com"),
            Err(PrivacyError::Collision { .. })
        ));
    }

    #[test]
    fn sign_ins_are_pseudonymized_in_place() {
        let mut s = SignIn {
            user_id: "u-123".into(),
            user_principal_name: "A@x.com".into(),
            user_display_name: "Alice Smith".into(),
            ip_address: Some("2001:db8::5".parse().unwrap()),
            ..SignIn::default()
        };
        s.device.device_id = "d-1".into();
        s.device.display_name = "DESKTOP-1".into();
        let mut pz = Pseudonymizer::builder(key(6))
            .signins(std::slice::from_ref(&s))
            .build()
            .unwrap();
        pz.signin(&mut s).unwrap();
        assert!(s.user_id.starts_with("user-"));
        assert_eq!(s.user_id, s.user_principal_name);
        assert_eq!(s.user_id, s.user_display_name);
        assert_eq!(s.ip_address, None);
        assert!(s.device.device_id.starts_with("device-"));
        assert_eq!(s.device.device_id, s.device.display_name);
    }
}
