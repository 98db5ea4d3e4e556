use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A point's external id: an unsigned integer or a UUID, exactly as the client gave it. Never renumbered.
///
/// Serialised as Qdrant does: a JSON number or a UUID string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PointId {
    /// An unsigned integer id.
    Num(u64),
    /// A UUID id (any UUID string form is accepted; the hyphenated form is returned).
    Uuid(Uuid),
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointId::Num(n) => write!(f, "{n}"),
            PointId::Uuid(u) => write!(f, "{u}"),
        }
    }
}

impl FromStr for PointId {
    type Err = String;

    /// Parses `"42"` as a number and anything else as a UUID.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        if let Ok(n) = s.parse::<u64>() {
            return Ok(PointId::Num(n));
        }
        Uuid::parse_str(s)
            .map(PointId::Uuid)
            .map_err(|_| format!("point id {s:?} is neither an unsigned integer nor a UUID"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_uuids_and_rejects_the_rest() {
        assert_eq!("7".parse::<PointId>().unwrap(), PointId::Num(7));
        let u = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26";
        assert_eq!(u.parse::<PointId>().unwrap().to_string(), u);
        assert!("-1".parse::<PointId>().is_err());
        assert!("abc".parse::<PointId>().is_err());
    }

    #[test]
    fn serde_matches_qdrant() {
        let ids: Vec<PointId> =
            serde_json::from_str(r#"[1, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]"#).unwrap();
        assert_eq!(ids[0], PointId::Num(1));
        assert!(matches!(ids[1], PointId::Uuid(_)));
        assert!(serde_json::from_str::<PointId>("-3").is_err());
        assert!(serde_json::from_str::<PointId>(r#""nope""#).is_err());
    }
}
