//! TEMPORARY stub, replaced by the real parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Property {
    DeviceId,
    DisplayName,
    DeviceOwnership,
    EnrollmentProfileName,
    ExtensionAttribute(u8),
    IsCompliant,
    Manufacturer,
    MdmAppId,
    Model,
    OperatingSystem,
    OperatingSystemVersion,
    PhysicalIds,
    ProfileType,
    SystemLabels,
    TrustType,
}
pub enum PropertyValue<'a> {
    Null,
    Unknown,
    Str(&'a str),
    Bool(bool),
    List(&'a [String]),
}
pub trait DeviceProperties {
    fn get(&self, property: Property) -> PropertyValue<'_>;
}
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceFilterRule(String);
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DeviceFilterError {
    pub offset: usize,
    pub message: String,
}
impl DeviceFilterRule {
    pub fn parse(rule: &str) -> Result<Self, DeviceFilterError> {
        Ok(Self(rule.to_owned()))
    }
    pub fn evaluate(&self, _device: &impl DeviceProperties) -> Option<bool> {
        None
    }
}
