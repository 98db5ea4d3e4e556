//! Alias bodies in Qdrant's shapes: `POST /collections/aliases` takes a list of actions, each
//! `{"create_alias": {…}}`, `{"delete_alias": {…}}` or `{"rename_alias": {…}}`; the listings answer
//! `{"aliases": [{"alias_name", "collection_name"}]}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use quiver_engine::collection::{AliasAction, AliasDescription as EngineAlias, MAX_NAME_LEN};

use super::error::Error;

/// Body of `POST /collections/aliases`: actions applied in order, all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeAliases {
    /// The actions, in order.
    pub actions: Vec<AliasOperation>,
}

/// One alias action: `{"create_alias": …}`, `{"delete_alias": …}` or `{"rename_alias": …}`.
#[derive(Debug, Deserialize, ToSchema)]
pub enum AliasOperation {
    /// Points an alias at a collection (moving it if the alias exists).
    #[serde(rename = "create_alias")]
    Create(CreateAlias),
    /// Removes an alias (nothing happens if it does not exist).
    #[serde(rename = "delete_alias")]
    Delete(DeleteAlias),
    /// Gives an alias another name.
    #[serde(rename = "rename_alias")]
    Rename(RenameAlias),
}

/// `{"collection_name", "alias_name"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAlias {
    /// The collection the alias names.
    pub collection_name: String,
    /// The alias.
    pub alias_name: String,
}

/// `{"alias_name"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAlias {
    /// The alias to remove.
    pub alias_name: String,
}

/// `{"old_alias_name", "new_alias_name"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameAlias {
    /// The alias as it is now.
    pub old_alias_name: String,
    /// Its new name.
    pub new_alias_name: String,
}

impl ChangeAliases {
    /// The engine's actions. A new alias name out of Qdrant's length range is its validation error
    /// (422); the engine checks the characters (400) and everything that depends on the state.
    pub fn into_actions(self) -> Result<Vec<AliasAction>, Error> {
        self.actions
            .into_iter()
            .map(|op| {
                Ok(match op {
                    AliasOperation::Create(a) => AliasAction::Create {
                        collection_name: a.collection_name,
                        alias_name: check_length(a.alias_name)?,
                    },
                    AliasOperation::Delete(a) => AliasAction::Delete {
                        alias_name: a.alias_name,
                    },
                    AliasOperation::Rename(a) => AliasAction::Rename {
                        old_alias_name: a.old_alias_name,
                        new_alias_name: check_length(a.new_alias_name)?,
                    },
                })
            })
            .collect()
    }
}

fn check_length(alias: String) -> Result<String, Error> {
    if alias.is_empty() || alias.len() > MAX_NAME_LEN {
        return Err(Error::Validation(format!(
            "alias name must be 1 to {MAX_NAME_LEN} bytes long, got {}",
            alias.len()
        )));
    }
    Ok(alias)
}

/// `GET /aliases` and `GET /collections/{name}/aliases`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasesList {
    /// The aliases, sorted by alias name.
    pub aliases: Vec<AliasDescription>,
}

/// An alias and the collection it names.
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasDescription {
    /// The alias.
    pub alias_name: String,
    /// The collection it names.
    pub collection_name: String,
}

impl From<Vec<EngineAlias>> for AliasesList {
    fn from(aliases: Vec<EngineAlias>) -> Self {
        AliasesList {
            aliases: aliases
                .into_iter()
                .map(|a| AliasDescription {
                    alias_name: a.alias_name,
                    collection_name: a.collection_name,
                })
                .collect(),
        }
    }
}
