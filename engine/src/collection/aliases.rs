//! Collection aliases, as Qdrant has them: a second name under which a collection answers, so clients
//! can switch from one collection to another by moving an alias instead of changing their code.
//!
//! The whole mapping is one small JSON file in the data directory, rewritten atomically (temp file,
//! fsync, rename, fsync of the directory) on every change, so a crash leaves either the old mapping or
//! the new one. A batch of actions is checked against a copy of the mapping and only that finished copy
//! is stored and published: all of it applies, or none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::validate;
use crate::{Error, Result};

/// File (in the data directory, beside `collections/`) holding every alias.
pub const ALIASES_FILE: &str = "aliases.json";

/// Format version of [`ALIASES_FILE`].
const FORMAT_VERSION: u32 = 1;

/// One change of [`crate::Collections::update_aliases`], in Qdrant's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AliasAction {
    /// Points `alias_name` at `collection_name` (re-pointing it if the alias exists, as Qdrant does).
    Create {
        /// The collection the alias names.
        collection_name: String,
        /// The new name.
        alias_name: String,
    },
    /// Removes an alias; removing one that does not exist changes nothing (as in Qdrant), so a
    /// "delete then create" switch also works the first time.
    Delete {
        /// The alias to remove.
        alias_name: String,
    },
    /// Gives an existing alias another name.
    Rename {
        /// The alias as it is now.
        old_alias_name: String,
        /// Its new name.
        new_alias_name: String,
    },
}

/// An alias and the collection it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasDescription {
    /// The alias.
    pub alias_name: String,
    /// The collection it names.
    pub collection_name: String,
}

/// The file's content.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasesFile {
    version: u32,
    /// Alias to collection name.
    aliases: BTreeMap<String, String>,
}

/// Where the aliases file of a data directory lies.
pub(crate) fn file_path(data_dir: &Path) -> PathBuf {
    data_dir.join(ALIASES_FILE)
}

/// Reads the aliases file; a missing file is an empty mapping. An unreadable one is an error rather
/// than an empty mapping, which the next change would otherwise write over.
pub(crate) fn load(path: &Path) -> Result<BTreeMap<String, String>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(quiver_storage::Error::io(path, e).into()),
    };
    let corrupt = |reason: String| quiver_storage::Error::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let file: AliasesFile = serde_json::from_slice(&bytes)
        .map_err(|e| corrupt(format!("unreadable aliases file: {e}")))?;
    if file.version != FORMAT_VERSION {
        return Err(corrupt(format!(
            "aliases file version {} (this build reads {FORMAT_VERSION})",
            file.version
        ))
        .into());
    }
    Ok(file.aliases)
}

/// Writes the mapping atomically and durably.
pub(crate) fn store(path: &Path, aliases: &BTreeMap<String, String>) -> Result<()> {
    let file = AliasesFile {
        version: FORMAT_VERSION,
        aliases: aliases.clone(),
    };
    let json = serde_json::to_vec_pretty(&file).expect("aliases serialise");
    quiver_storage::fs::atomic_write(path, &json)?;
    Ok(())
}

/// Applies `actions` in order to a copy of `current` and returns the result, or the first action's
/// error with nothing applied. `is_collection` says whether a collection of that name exists.
pub(crate) fn apply(
    current: &BTreeMap<String, String>,
    actions: &[AliasAction],
    is_collection: impl Fn(&str) -> bool,
) -> Result<BTreeMap<String, String>> {
    let mut next = current.clone();
    let check_new_name = |alias: &str| -> Result<()> {
        validate::is_plain_name(alias)
            .then_some(())
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "invalid alias name {alias:?}: use 1 to {} characters of A-Z, a-z, 0-9, `_`, \
                     `-` and `.`, not starting with `.`",
                    validate::MAX_NAME_LEN
                ))
            })?;
        if is_collection(alias) {
            return Err(Error::AliasShadowsCollection(alias.to_string()));
        }
        Ok(())
    };
    for action in actions {
        match action {
            AliasAction::Create {
                collection_name,
                alias_name,
            } => {
                // Like Qdrant, the target must be a collection, not another alias.
                if !is_collection(collection_name) {
                    return Err(Error::CollectionNotFound(collection_name.clone()));
                }
                check_new_name(alias_name)?;
                next.insert(alias_name.clone(), collection_name.clone());
            }
            AliasAction::Delete { alias_name } => {
                next.remove(alias_name);
            }
            AliasAction::Rename {
                old_alias_name,
                new_alias_name,
            } => {
                let target = next
                    .remove(old_alias_name)
                    .ok_or_else(|| Error::AliasNotFound(old_alias_name.clone()))?;
                check_new_name(new_alias_name)?;
                next.insert(new_alias_name.clone(), target);
            }
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, c)| (a.to_string(), c.to_string()))
            .collect()
    }

    fn create(c: &str, a: &str) -> AliasAction {
        AliasAction::Create {
            collection_name: c.into(),
            alias_name: a.into(),
        }
    }

    fn rename(old: &str, new: &str) -> AliasAction {
        AliasAction::Rename {
            old_alias_name: old.into(),
            new_alias_name: new.into(),
        }
    }

    fn delete(a: &str) -> AliasAction {
        AliasAction::Delete {
            alias_name: a.into(),
        }
    }

    const COLLECTIONS: [&str; 2] = ["c1", "c2"];

    fn is_collection(name: &str) -> bool {
        COLLECTIONS.contains(&name)
    }

    #[test]
    fn actions_apply_in_order() {
        let start = map(&[("prod", "c1")]);
        let got = apply(
            &start,
            &[
                delete("prod"),
                create("c2", "prod"),
                create("c1", "old"),
                rename("old", "legacy"),
                delete("never-existed"),
            ],
            is_collection,
        )
        .unwrap();
        assert_eq!(got, map(&[("legacy", "c1"), ("prod", "c2")]));
        // Creating an existing alias re-points it.
        let got = apply(&start, &[create("c2", "prod")], is_collection).unwrap();
        assert_eq!(got, map(&[("prod", "c2")]));
    }

    #[test]
    fn a_failing_action_reports_itself() {
        let start = map(&[("prod", "c1")]);
        let err = |actions: &[AliasAction]| apply(&start, actions, is_collection).unwrap_err();
        assert!(matches!(
            err(&[create("c1", "a"), create("nope", "b")]),
            Error::CollectionNotFound(n) if n == "nope"
        ));
        // An alias is not a collection: no alias of an alias.
        assert!(matches!(
            err(&[create("prod", "b")]),
            Error::CollectionNotFound(n) if n == "prod"
        ));
        assert!(matches!(
            err(&[create("c1", "c2")]),
            Error::AliasShadowsCollection(n) if n == "c2"
        ));
        assert!(matches!(
            err(&[rename("prod", "c2")]),
            Error::AliasShadowsCollection(n) if n == "c2"
        ));
        assert!(matches!(
            err(&[rename("missing", "x")]),
            Error::AliasNotFound(n) if n == "missing"
        ));
        // The rename's source is gone after the first rename.
        assert!(matches!(
            err(&[rename("prod", "p2"), rename("prod", "p3")]),
            Error::AliasNotFound(n) if n == "prod"
        ));
        for bad in ["", ".hidden", "a/b", "a b"] {
            assert!(
                matches!(err(&[create("c1", bad)]), Error::InvalidInput(_)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn file_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_path(dir.path());
        assert!(load(&path).unwrap().is_empty());
        let m = map(&[("a", "c1"), ("b", "c2")]);
        store(&path, &m).unwrap();
        assert_eq!(load(&path).unwrap(), m);
        std::fs::write(&path, b"{\"version\": 1, \"aliases\": ").unwrap();
        assert!(matches!(
            load(&path).unwrap_err(),
            Error::Storage(quiver_storage::Error::Corrupt { .. })
        ));
        std::fs::write(&path, br#"{"version": 9, "aliases": {}}"#).unwrap();
        assert!(matches!(
            load(&path).unwrap_err(),
            Error::Storage(quiver_storage::Error::Corrupt { .. })
        ));
    }
}
