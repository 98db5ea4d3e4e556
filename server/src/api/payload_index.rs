//! Payload index bodies in Qdrant's shapes (`PUT /collections/{name}/index`).

use serde::Deserialize;
use utoipa::ToSchema;

use quiver_engine::payload_schema::PayloadFieldSchema;

use super::error::{invalid, Error};

/// Body of `PUT /collections/{name}/index` (Qdrant's `CreateFieldIndex`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFieldIndex {
    /// The payload key to index (`color`, `meta.tags[]`, `"a.b"`).
    pub field_name: String,
    /// A type name (`keyword`, `integer`, `float`, `bool`, `geo`, `datetime`, `text`, `uuid`) or
    /// `{"type": …, …params}`. Qdrant's older name `field_type` is accepted too.
    #[serde(default, alias = "field_type")]
    #[schema(value_type = Object)]
    pub field_schema: Option<PayloadFieldSchema>,
}

impl CreateFieldIndex {
    /// The field and its schema; Qdrant refuses a body without a schema rather than guessing one.
    pub fn into_parts(self) -> Result<(String, PayloadFieldSchema), Error> {
        let schema = self.field_schema.ok_or_else(|| {
            invalid("Can't auto-detect field type, please specify `field_schema` in the request")
        })?;
        Ok((self.field_name, schema))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<CreateFieldIndex, String> {
        serde_json::from_str(body).map_err(|e| e.to_string())
    }

    #[test]
    fn bodies_parse_in_both_forms() {
        let (field, schema) = parse(r#"{"field_name": "color", "field_schema": "keyword"}"#)
            .unwrap()
            .into_parts()
            .unwrap();
        assert_eq!(field, "color");
        assert_eq!(schema.data_type().name(), "keyword");
        let (_, schema) =
            parse(r#"{"field_name": "n", "field_type": {"type": "integer", "range": false}}"#)
                .unwrap()
                .into_parts()
                .unwrap();
        assert_eq!(schema.data_type().name(), "integer");
        assert!(schema.params().is_some());
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let e = parse(r#"{"field_schema": "keyword"}"#).unwrap_err();
        assert!(e.contains("field_name"), "{e}");
        let e = parse(r#"{"field_name": "a", "field_schema": "vector"}"#).unwrap_err();
        assert!(e.contains("unknown field_schema type `vector`"), "{e}");
        let e = parse(r#"{"field_name": "a"}"#)
            .unwrap()
            .into_parts()
            .unwrap_err()
            .to_string();
        assert!(e.contains("field_schema"), "{e}");
    }
}
