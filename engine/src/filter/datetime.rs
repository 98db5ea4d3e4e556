//! Datetimes of `range` filters and of the payload strings they test, parsed as Qdrant parses them
//! (`DateTimeWrapper::from_str` in `lib/segment/src/types.rs`): RFC 3339, the same with a space for
//! `T` or an offset without a colon, and, read as UTC, `YYYY-MM-DDTHH:MM:SS[.f]`,
//! `YYYY-MM-DD HH:MM:SS[.f]`, `YYYY-MM-DD HH:MM` and `YYYY-MM-DD`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant, compared in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Datetime(pub DateTime<Utc>);

impl Datetime {
    /// Parses one of the accepted formats (see the module docs).
    pub fn parse(s: &str) -> Result<Datetime, String> {
        let with_offset = DateTime::parse_from_rfc3339(s)
            .or_else(|_| DateTime::from_str(s))
            .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%#z"))
            .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z"));
        if let Ok(t) = with_offset {
            return Ok(Datetime(t.with_timezone(&Utc)));
        }
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
            .or_else(|_| NaiveDate::parse_from_str(s, "%Y-%m-%d").map(NaiveDateTime::from))
            .map(|t| Datetime(t.and_utc()))
            .map_err(|_| {
                format!("'{s}' is not in a supported date/time format, please use RFC 3339")
            })
    }
}

impl fmt::Display for Datetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }
}

impl Serialize for Datetime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Datetime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Datetime::parse(&s).map_err(serde::de::Error::custom)
    }
}
