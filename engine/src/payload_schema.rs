//! Payload indexes in Qdrant's shapes: which payload fields a collection indexes, with which type.
//!
//! The schema is part of the collection's stored config (`payload_schema` in `config.json`, rewritten
//! atomically on every change), so it survives restarts and travels in snapshots. A field's schema is
//! a type name (`"keyword"`) or an object (`{"type": "keyword", "is_tenant": true}`); both are kept as
//! given, because Qdrant reports `params` only for the object form.
//!
//! The params Qdrant uses to place and shape its own index structures (`on_disk`, `is_tenant`,
//! `is_principal`, `lookup`, `range`, the text tokenizer settings) are validated, stored and reported
//! back, so clients that send them work; Quiver's indexes live in memory and answer every filter the
//! same whatever they say.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::{Error, Result};

/// A collection's payload indexes, by field (a payload key such as `color` or `meta.tags[]`).
pub type PayloadSchema = BTreeMap<String, PayloadFieldSchema>;

/// The value types a payload field can be indexed as (Qdrant's `PayloadSchemaType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadSchemaType {
    /// Exact strings.
    Keyword,
    /// 64-bit integers.
    Integer,
    /// Numbers.
    Float,
    /// `{"lon": …, "lat": …}` points.
    Geo,
    /// Strings searched by words.
    Text,
    /// Booleans.
    Bool,
    /// RFC 3339 date-times (or a date, or a date and time without a zone).
    Datetime,
    /// UUID strings.
    Uuid,
}

impl PayloadSchemaType {
    /// Every type, in the order Qdrant documents them.
    pub const ALL: [PayloadSchemaType; 8] = [
        PayloadSchemaType::Keyword,
        PayloadSchemaType::Integer,
        PayloadSchemaType::Float,
        PayloadSchemaType::Geo,
        PayloadSchemaType::Text,
        PayloadSchemaType::Bool,
        PayloadSchemaType::Datetime,
        PayloadSchemaType::Uuid,
    ];

    /// The name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            PayloadSchemaType::Keyword => "keyword",
            PayloadSchemaType::Integer => "integer",
            PayloadSchemaType::Float => "float",
            PayloadSchemaType::Geo => "geo",
            PayloadSchemaType::Text => "text",
            PayloadSchemaType::Bool => "bool",
            PayloadSchemaType::Datetime => "datetime",
            PayloadSchemaType::Uuid => "uuid",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    fn expected() -> String {
        Self::ALL.map(|t| t.name()).join(", ")
    }

    /// Whether one scalar payload value (an array's element, never the array) is a value an index of
    /// this type holds. Integers follow the filters' equality: an integral float counts as one.
    pub fn indexes(self, v: &Value) -> bool {
        match (self, v) {
            (PayloadSchemaType::Keyword | PayloadSchemaType::Text, Value::String(_)) => true,
            (PayloadSchemaType::Integer, Value::Number(n)) => {
                crate::filter::integer_key(n).is_some()
            }
            (PayloadSchemaType::Float, Value::Number(_)) => true,
            (PayloadSchemaType::Bool, Value::Bool(_)) => true,
            (PayloadSchemaType::Geo, Value::Object(map)) => {
                let coord = |k: &str, limit: f64| {
                    map.get(k)
                        .and_then(Value::as_f64)
                        .is_some_and(|x| (-limit..=limit).contains(&x))
                };
                coord("lon", 180.0) && coord("lat", 90.0)
            }
            (PayloadSchemaType::Datetime, Value::String(s)) => is_datetime(s),
            (PayloadSchemaType::Uuid, Value::String(s)) => uuid::Uuid::parse_str(s).is_ok(),
            _ => false,
        }
    }
}

impl fmt::Display for PayloadSchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether `s` is a date-time in one of the forms Qdrant's datetime index accepts: `YYYY-MM-DD`,
/// optionally followed by `T` or a space and `HH:MM[:SS[.fraction]]`, optionally followed by `Z` or an
/// offset `±HH[:MM]`.
fn is_datetime(s: &str) -> bool {
    fn digits(s: &[u8], n: usize) -> Option<(u32, &[u8])> {
        if s.len() < n || !s[..n].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = s[..n]
            .iter()
            .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'));
        Some((v, &s[n..]))
    }
    fn lit(s: &[u8], c: u8) -> Option<&[u8]> {
        s.strip_prefix(&[c])
    }
    fn parse(s: &[u8]) -> Option<()> {
        let (year, s) = digits(s, 4)?;
        let (month, s) = digits(lit(s, b'-')?, 2)?;
        let (day, s) = digits(lit(s, b'-')?, 2)?;
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if !(1..=12).contains(&month) || day == 0 || day > days[month as usize - 1] {
            return None;
        }
        if s.is_empty() {
            return Some(());
        }
        let s = lit(s, b'T')
            .or_else(|| lit(s, b't'))
            .or_else(|| lit(s, b' '))?;
        let (hour, s) = digits(s, 2)?;
        let (minute, mut s) = digits(lit(s, b':')?, 2)?;
        if hour > 23 || minute > 59 {
            return None;
        }
        if let Some(rest) = lit(s, b':') {
            let (second, rest) = digits(rest, 2)?;
            if second > 60 {
                return None;
            }
            s = rest;
            if let Some(frac) = lit(s, b'.') {
                let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 {
                    return None;
                }
                s = &frac[n..];
            }
        }
        match s.first() {
            None => Some(()),
            Some(b'Z' | b'z') if s.len() == 1 => Some(()),
            Some(b'+' | b'-') => {
                let (oh, rest) = digits(&s[1..], 2)?;
                let rest = match lit(rest, b':') {
                    Some(r) => digits(r, 2)?.1,
                    None if rest.is_empty() => rest,
                    None => digits(rest, 2)?.1,
                };
                (oh <= 23 && rest.is_empty()).then_some(())
            }
            _ => None,
        }
    }
    parse(s.as_bytes()).is_some()
}

/// How a `text` index splits strings into words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerType {
    /// Words and their prefixes.
    Prefix,
    /// Split on whitespace.
    Whitespace,
    /// Split on word boundaries (Qdrant's default).
    Word,
    /// Script- and language-aware splitting (charabia, as Qdrant), normalized: lower case, no
    /// diacritics.
    Multilingual,
}

/// Params of a `keyword` or `uuid` index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantIndexParams {
    /// Qdrant: the field partitions the data by tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_tenant: Option<bool>,
    /// Qdrant: keep the index on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
}

/// Params of an `integer` index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegerIndexParams {
    /// Qdrant: serve `match` conditions (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<bool>,
    /// Qdrant: serve `range` conditions (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<bool>,
    /// Qdrant: most filtered requests use this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_principal: Option<bool>,
    /// Qdrant: keep the index on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
}

/// Params of a `float` or `datetime` index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalIndexParams {
    /// Qdrant: most filtered requests use this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_principal: Option<bool>,
    /// Qdrant: keep the index on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
}

/// Params of a `geo` or `bool` index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlainIndexParams {
    /// Qdrant: keep the index on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
}

/// Params of a `text` index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextIndexParams {
    /// How strings are split into words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<TokenizerType>,
    /// Shorter words are not indexed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_token_len: Option<usize>,
    /// Longer words are not indexed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_token_len: Option<usize>,
    /// Lowercase words (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowercase: Option<bool>,
    /// Qdrant: support phrase matching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phrase_matching: Option<bool>,
    /// Stop words dropped from stored texts and queries: `"english"` or
    /// `{"languages": [...], "custom": [...]}` (Qdrant's shapes; English is the one list here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopwords: Option<Value>,
    /// `{"type": "snowball", "language": "..."}`: words match by their stems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stemmer: Option<Value>,
    /// Fold letters with diacritics and symbol forms to ASCII before lower-casing (Qdrant's table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ascii_folding: Option<bool>,
    /// Qdrant: keep the index on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
}

impl TextIndexParams {
    /// The text pipeline these params configure (the one `qdrant/bm25` uses), or a validation
    /// error naming the param that cannot be honoured.
    pub fn analysis(&self) -> Result<quiver_text::Analysis> {
        let bad = |param: &str, message: String| {
            Error::Validation(format!("text index: `{param}` {message}"))
        };
        let mut analysis = quiver_text::Analysis::plain();
        analysis.tokenizer = match self.tokenizer {
            Some(TokenizerType::Whitespace) => quiver_text::TokenizerKind::Whitespace,
            Some(TokenizerType::Prefix) => quiver_text::TokenizerKind::Prefix,
            Some(TokenizerType::Multilingual) => quiver_text::TokenizerKind::Multilingual,
            Some(TokenizerType::Word) | None => quiver_text::TokenizerKind::Word,
        };
        analysis.lowercase = self.lowercase.unwrap_or(true);
        analysis.ascii_folding = self.ascii_folding.unwrap_or(false);
        analysis.min_token_len = self.min_token_len;
        analysis.max_token_len = self.max_token_len;
        if let Some(v) = self.stopwords.as_ref().filter(|v| !v.is_null()) {
            analysis.stopwords =
                quiver_text::parse_stopwords(v).map_err(|e| bad("stopwords", e))?;
        }
        if let Some(v) = self.stemmer.as_ref().filter(|v| !v.is_null()) {
            analysis.stemmer = quiver_text::parse_stemmer(v).map_err(|e| bad("stemmer", e))?;
        }
        Ok(analysis)
    }
}

/// The object form of a field schema: `{"type": …}` and the type's params (Qdrant's
/// `PayloadSchemaParams`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PayloadSchemaParams {
    /// `{"type": "keyword", …}`.
    Keyword(TenantIndexParams),
    /// `{"type": "integer", …}`.
    Integer(IntegerIndexParams),
    /// `{"type": "float", …}`.
    Float(PrincipalIndexParams),
    /// `{"type": "geo", …}`.
    Geo(PlainIndexParams),
    /// `{"type": "text", …}`.
    Text(TextIndexParams),
    /// `{"type": "bool", …}`.
    Bool(PlainIndexParams),
    /// `{"type": "datetime", …}`.
    Datetime(PrincipalIndexParams),
    /// `{"type": "uuid", …}`.
    Uuid(TenantIndexParams),
}

impl PayloadSchemaParams {
    /// The type these params are for.
    pub fn data_type(&self) -> PayloadSchemaType {
        match self {
            PayloadSchemaParams::Keyword(_) => PayloadSchemaType::Keyword,
            PayloadSchemaParams::Integer(_) => PayloadSchemaType::Integer,
            PayloadSchemaParams::Float(_) => PayloadSchemaType::Float,
            PayloadSchemaParams::Geo(_) => PayloadSchemaType::Geo,
            PayloadSchemaParams::Text(_) => PayloadSchemaType::Text,
            PayloadSchemaParams::Bool(_) => PayloadSchemaType::Bool,
            PayloadSchemaParams::Datetime(_) => PayloadSchemaType::Datetime,
            PayloadSchemaParams::Uuid(_) => PayloadSchemaType::Uuid,
        }
    }
}

/// One field's index: a type name, or the object form with params (Qdrant's `PayloadFieldSchema`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PayloadFieldSchema {
    /// `"keyword"`, `"integer"`, ….
    Type(PayloadSchemaType),
    /// `{"type": "keyword", …}`.
    Params(PayloadSchemaParams),
}

impl PayloadFieldSchema {
    /// The indexed value type.
    pub fn data_type(&self) -> PayloadSchemaType {
        match self {
            PayloadFieldSchema::Type(t) => *t,
            PayloadFieldSchema::Params(p) => p.data_type(),
        }
    }

    /// Whether an integer index serves `match` conditions (`lookup`, default true).
    pub fn integer_lookup(&self) -> bool {
        !matches!(
            self.params(),
            Some(PayloadSchemaParams::Integer(IntegerIndexParams {
                lookup: Some(false),
                ..
            }))
        )
    }

    /// The params, when the object form was given.
    pub fn params(&self) -> Option<&PayloadSchemaParams> {
        match self {
            PayloadFieldSchema::Type(_) => None,
            PayloadFieldSchema::Params(p) => Some(p),
        }
    }

    /// Rejects params Qdrant rejects, with a message naming them.
    pub fn validate(&self) -> Result<()> {
        if let Some(PayloadSchemaParams::Integer(p)) = self.params() {
            if p.lookup == Some(false) && p.range == Some(false) {
                return Err(Error::Validation(
                    "integer index: `lookup` and `range` cannot both be false".into(),
                ));
            }
        }
        if let Some(PayloadSchemaParams::Text(p)) = self.params() {
            if let (Some(min), Some(max)) = (p.min_token_len, p.max_token_len) {
                if min > max {
                    return Err(Error::Validation(format!(
                        "text index: min_token_len {min} is larger than max_token_len {max}"
                    )));
                }
            }
            p.analysis()?;
        }
        Ok(())
    }
}

/// Parsed by hand so that a wrong schema gets a message that names the problem instead of serde's
/// "did not match any variant".
impl<'de> Deserialize<'de> for PayloadFieldSchema {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let unknown = |name: &str| {
            D::Error::custom(format!(
                "unknown field_schema type `{name}`: expected one of {}",
                PayloadSchemaType::expected()
            ))
        };
        match value {
            Value::String(name) => PayloadSchemaType::from_name(&name)
                .map(PayloadFieldSchema::Type)
                .ok_or_else(|| unknown(&name)),
            Value::Object(ref map) => {
                let name = match map.get("type") {
                    Some(Value::String(name)) => name,
                    Some(_) => {
                        return Err(D::Error::custom("field_schema `type` must be a string"))
                    }
                    None => {
                        return Err(D::Error::custom(format!(
                            "field_schema needs a `type`: one of {}",
                            PayloadSchemaType::expected()
                        )))
                    }
                };
                let kind = PayloadSchemaType::from_name(name).ok_or_else(|| unknown(name))?;
                serde_json::from_value(value)
                    .map(PayloadFieldSchema::Params)
                    .map_err(|e| D::Error::custom(format!("field_schema of type `{kind}`: {e}")))
            }
            other => Err(D::Error::custom(format!(
                "field_schema must be a type name or an object with a `type`, got {other}"
            ))),
        }
    }
}

/// One indexed field as the collection info reports it (Qdrant's `PayloadIndexInfo`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PayloadIndexInfo {
    /// The indexed value type.
    pub data_type: PayloadSchemaType,
    /// The params, when the schema was given in the object form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<PayloadSchemaParams>,
    /// Live points with at least one value of the indexed type at the field.
    pub points: usize,
}

impl PayloadIndexInfo {
    /// A field's schema and its count.
    pub fn new(schema: &PayloadFieldSchema, points: usize) -> Self {
        PayloadIndexInfo {
            data_type: schema.data_type(),
            params: schema.params().cloned(),
            points,
        }
    }
}

/// Checks a field name: a payload key in the filters' path syntax (`a`, `a.b`, `a[].b`, `"a.b"`).
pub fn validate_field_name(field: &str) -> Result<()> {
    if field.is_empty() {
        return Err(Error::InvalidInput("field_name must not be empty".into()));
    }
    if crate::filter::path::parsed(field).is_none() {
        return Err(Error::InvalidInput(format!(
            "field_name {field:?} is not a payload key: use `a`, `a.b`, `a[].b` or `\"a.b\"`"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> std::result::Result<PayloadFieldSchema, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn both_forms_parse_and_round_trip() {
        for t in PayloadSchemaType::ALL {
            let s = parse(json!(t.name())).unwrap();
            assert_eq!(s, PayloadFieldSchema::Type(t));
            assert_eq!(serde_json::to_value(&s).unwrap(), json!(t.name()));
            let o = parse(json!({"type": t.name()})).unwrap();
            assert_eq!(o.data_type(), t);
            assert_eq!(serde_json::to_value(&o).unwrap(), json!({"type": t.name()}));
        }
        let kw = json!({"type": "keyword", "is_tenant": true, "on_disk": false});
        let s = parse(kw.clone()).unwrap();
        assert_eq!(serde_json::to_value(&s).unwrap(), kw);
        let text =
            json!({"type": "text", "tokenizer": "word", "min_token_len": 2, "lowercase": true});
        assert_eq!(
            serde_json::to_value(parse(text.clone()).unwrap()).unwrap(),
            text
        );
    }

    #[test]
    fn bad_schemas_name_the_problem() {
        let e = parse(json!("keywrd")).unwrap_err();
        assert!(
            e.contains("unknown field_schema type `keywrd`") && e.contains("uuid"),
            "{e}"
        );
        let e = parse(json!({"type": "vector"})).unwrap_err();
        assert!(e.contains("`vector`"), "{e}");
        let e = parse(json!({"is_tenant": true})).unwrap_err();
        assert!(e.contains("needs a `type`"), "{e}");
        let e = parse(json!({"type": "keyword", "tokenizer": "word"})).unwrap_err();
        assert!(e.contains("tokenizer") && e.contains("keyword"), "{e}");
        let e = parse(json!({"type": "text", "tokenizer": "letters"})).unwrap_err();
        assert!(e.contains("letters"), "{e}");
        assert!(parse(json!(3)).is_err());
        let both_off = parse(json!({"type": "integer", "lookup": false, "range": false})).unwrap();
        assert!(both_off.validate().is_err());
        parse(json!({"type": "integer", "lookup": false}))
            .unwrap()
            .validate()
            .unwrap();
        // Text pipeline params Quiver cannot honour are refused by name, never ignored.
        for (params, named) in [
            (json!({"stopwords": "french"}), "`stopwords`"),
            (
                json!({"stopwords": {"languages": ["en"], "extra": 1}}),
                "`stopwords`",
            ),
            (
                json!({"stemmer": {"type": "snowball", "language": "klingon"}}),
                "`stemmer`",
            ),
            (json!({"stemmer": "english"}), "`stemmer`"),
        ] {
            let mut schema = json!({"type": "text"});
            schema
                .as_object_mut()
                .unwrap()
                .extend(params.as_object().unwrap().clone());
            let e = parse(schema).unwrap().validate().unwrap_err().to_string();
            assert!(e.contains(named), "{params}: {e}");
        }
        let full = json!({"type": "text", "stopwords": {"languages": ["english"], "custom": ["x"]},
            "stemmer": {"type": "snowball", "language": "en"}, "ascii_folding": true,
            "tokenizer": "multilingual"});
        let s = parse(full.clone()).unwrap();
        s.validate().unwrap();
        assert_eq!(serde_json::to_value(&s).unwrap(), full);
        let PayloadFieldSchema::Params(PayloadSchemaParams::Text(text)) = s else {
            panic!("a text schema: {s:?}")
        };
        let analysis = text.analysis().unwrap();
        assert!(analysis.ascii_folding);
        assert_eq!(analysis.tokenizer, quiver_text::TokenizerKind::Multilingual);
    }

    #[test]
    fn indexable_values() {
        use PayloadSchemaType as T;
        assert!(T::Keyword.indexes(&json!("a")) && !T::Keyword.indexes(&json!(1)));
        assert!(T::Integer.indexes(&json!(3)) && T::Integer.indexes(&json!(3.0)));
        assert!(!T::Integer.indexes(&json!(3.5)) && !T::Integer.indexes(&json!("3")));
        assert!(T::Float.indexes(&json!(3)) && T::Float.indexes(&json!(3.5)));
        assert!(T::Bool.indexes(&json!(false)) && !T::Bool.indexes(&json!(0)));
        assert!(T::Geo.indexes(&json!({"lon": 13.4, "lat": 52.5})));
        assert!(!T::Geo.indexes(&json!({"lon": 13.4, "lat": 95.0})));
        assert!(!T::Geo.indexes(&json!({"lon": 13.4})));
        assert!(T::Uuid.indexes(&json!("550e8400-e29b-41d4-a716-446655440000")));
        assert!(!T::Uuid.indexes(&json!("550e8400")));
        for ok in [
            "2024-02-29",
            "2024-02-29T10:49:00Z",
            "2024-02-29 10:49",
            "2024-02-29T10:49:00.123+02:00",
            "2024-02-29T10:49:00-0530",
        ] {
            assert!(T::Datetime.indexes(&json!(ok)), "{ok}");
        }
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "yesterday",
            "2024-02-29T25:00",
            "2024-02-29T10:49:00Q",
        ] {
            assert!(!T::Datetime.indexes(&json!(bad)), "{bad}");
        }
    }

    #[test]
    fn field_names_are_payload_keys() {
        validate_field_name("a").unwrap();
        validate_field_name("meta.tags[]").unwrap();
        validate_field_name("\"a.b\"").unwrap();
        assert!(validate_field_name("").is_err());
        assert!(validate_field_name("a..b").is_err());
    }
}
