//! `quiver alias list|create|delete|rename`: manage collection aliases without a running server (the
//! same actions as `POST /collections/aliases`, applied to the data directory).

use anyhow::Result;
use clap::Subcommand;
use quiver_engine::collection::AliasAction;

use super::{open_collections, GlobalArgs};

/// Alias subcommands.
#[derive(Subcommand, Debug)]
pub enum AliasCommand {
    /// List aliases as `ALIAS -> COLLECTION`, one per line (of one collection with --collection).
    List {
        /// Only the aliases of this collection.
        #[arg(long, short = 'c')]
        collection: Option<String>,
    },
    /// Point an alias at a collection (re-pointing it if it exists, as Qdrant does).
    Create {
        /// The alias.
        alias: String,
        /// The collection it names.
        collection: String,
    },
    /// Remove an alias (the collection stays).
    Delete {
        /// The alias.
        alias: String,
    },
    /// Give an alias another name.
    Rename {
        /// The alias as it is now.
        old: String,
        /// Its new name.
        new: String,
    },
}

/// Runs an alias subcommand.
pub fn run(global: &GlobalArgs, cmd: AliasCommand) -> Result<()> {
    let collections = open_collections(global)?;
    let (action, done) = match cmd {
        AliasCommand::List { collection } => {
            let aliases = match collection {
                Some(name) => collections.collection_aliases(&name)?,
                None => collections.list_aliases(),
            };
            for a in aliases {
                println!("{} -> {}", a.alias_name, a.collection_name);
            }
            return Ok(());
        }
        AliasCommand::Create { alias, collection } => (
            AliasAction::Create {
                collection_name: collection.clone(),
                alias_name: alias.clone(),
            },
            format!("alias {alias:?} -> collection {collection:?}"),
        ),
        AliasCommand::Delete { alias } => {
            if !collections
                .list_aliases()
                .iter()
                .any(|a| a.alias_name == alias)
            {
                anyhow::bail!("no alias named {alias:?} (quiver alias list shows them)");
            }
            (
                AliasAction::Delete {
                    alias_name: alias.clone(),
                },
                format!("deleted alias {alias:?}"),
            )
        }
        AliasCommand::Rename { old, new } => (
            AliasAction::Rename {
                old_alias_name: old.clone(),
                new_alias_name: new.clone(),
            },
            format!("renamed alias {old:?} to {new:?}"),
        ),
    };
    collections.update_aliases(&[action])?;
    println!("{done}");
    Ok(())
}
