//! Collection aliases: resolved by `Collections::get`, changed atomically, dropped with their
//! collection, refused as collection names, and kept across a reopen.

use quiver_engine::collection::{AliasAction, AliasDescription, ALIASES_FILE};
use quiver_engine::config::{CollectionConfig, Distance};
use quiver_engine::Error;
use serde_json::json;

use crate::common::*;

fn create_alias(collection: &str, alias: &str) -> AliasAction {
    AliasAction::Create {
        collection_name: collection.into(),
        alias_name: alias.into(),
    }
}

fn listed(pairs: &[(&str, &str)]) -> Vec<AliasDescription> {
    pairs
        .iter()
        .map(|(a, c)| AliasDescription {
            alias_name: a.to_string(),
            collection_name: c.to_string(),
        })
        .collect()
}

#[test]
fn aliases_resolve_change_atomically_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cs = open(dir.path());
        let blue = create(&cs, "blue", CollectionConfig::single(2, Distance::Dot));
        create(&cs, "green", CollectionConfig::single(2, Distance::Dot));
        blue.upsert(vec![dense(1, vec![1.0, 0.0], json!({}))])
            .unwrap();
        cs.update_aliases(&[create_alias("blue", "prod"), create_alias("blue", "old")])
            .unwrap();
        assert_eq!(cs.get("prod").unwrap().name(), "blue");
        assert_eq!(cs.get("prod").unwrap().count(None).unwrap(), 1);

        // The second action fails, so the first (moving `prod`) is not applied either, on disk or in
        // memory.
        let on_disk = std::fs::read(dir.path().join(ALIASES_FILE)).unwrap();
        let err = cs
            .update_aliases(&[
                AliasAction::Delete {
                    alias_name: "prod".into(),
                },
                create_alias("green", "prod"),
                create_alias("missing", "x"),
            ])
            .unwrap_err();
        assert!(
            matches!(err, Error::CollectionNotFound(ref n) if n == "missing"),
            "{err}"
        );
        assert_eq!(cs.get("prod").unwrap().name(), "blue");
        assert_eq!(
            std::fs::read(dir.path().join(ALIASES_FILE)).unwrap(),
            on_disk
        );

        // The switch itself, then a rename.
        cs.update_aliases(&[
            AliasAction::Delete {
                alias_name: "prod".into(),
            },
            create_alias("green", "prod"),
            AliasAction::Rename {
                old_alias_name: "old".into(),
                new_alias_name: "legacy".into(),
            },
        ])
        .unwrap();
        assert_eq!(cs.get("prod").unwrap().name(), "green");
        assert!(matches!(cs.get("old"), Err(Error::CollectionNotFound(_))));
        assert_eq!(
            cs.list_aliases(),
            listed(&[("legacy", "blue"), ("prod", "green")])
        );
        assert_eq!(
            cs.collection_aliases("legacy").unwrap(),
            listed(&[("legacy", "blue")])
        );
        assert!(matches!(
            cs.collection_aliases("nope"),
            Err(Error::CollectionNotFound(_))
        ));

        // Names: an alias may not take a collection's name, nor a collection an alias's.
        assert!(matches!(
            cs.update_aliases(&[create_alias("blue", "green")]),
            Err(Error::AliasShadowsCollection(_))
        ));
        assert!(matches!(
            cs.create("prod", CollectionConfig::single(2, Distance::Dot)),
            Err(Error::AliasExists(_))
        ));
        // Deleting by an alias's name deletes nothing.
        assert!(!cs.delete("prod").unwrap());
        assert_eq!(cs.get("prod").unwrap().name(), "green");
    }
    let cs = open(dir.path());
    assert_eq!(
        cs.list_aliases(),
        listed(&[("legacy", "blue"), ("prod", "green")])
    );
    assert_eq!(cs.get("legacy").unwrap().count(None).unwrap(), 1);

    // Deleting a collection drops its aliases, durably.
    assert!(cs.delete("green").unwrap());
    assert!(matches!(cs.get("prod"), Err(Error::CollectionNotFound(_))));
    drop(cs);
    let cs = open(dir.path());
    assert_eq!(cs.list_aliases(), listed(&[("legacy", "blue")]));
    // The freed name can be a collection again.
    create(&cs, "prod", CollectionConfig::single(2, Distance::Dot));
}

#[test]
fn a_corrupt_aliases_file_fails_the_open_instead_of_being_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cs = open(dir.path());
        create(&cs, "c", CollectionConfig::single(2, Distance::Dot));
        cs.update_aliases(&[create_alias("c", "a")]).unwrap();
    }
    let path = dir.path().join(ALIASES_FILE);
    std::fs::write(&path, b"{not json").unwrap();
    let err = quiver_engine::Collections::open(dir.path(), options())
        .err()
        .expect("a corrupt aliases file is an error");
    assert!(err.to_string().contains(ALIASES_FILE), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
}

#[test]
fn full_snapshots_carry_their_collections_aliases() {
    use quiver_storage::snapshot::Limits;

    let src = tempfile::tempdir().unwrap();
    let cs = open(src.path());
    create(&cs, "a", CollectionConfig::single(2, Distance::Dot));
    create(&cs, "b", CollectionConfig::single(2, Distance::Dot));
    cs.update_aliases(&[create_alias("a", "live"), create_alias("b", "next")])
        .unwrap();
    let full = cs.create_full_snapshot().unwrap();
    let path = cs.full_snapshot_path(&full.name).unwrap();

    // Into a data directory where `next` is a collection: refused before anything changes.
    let busy = tempfile::tempdir().unwrap();
    let other = open(busy.path());
    create(&other, "next", CollectionConfig::single(2, Distance::Dot));
    let err = other
        .restore_any_snapshot(&path, None, None, Limits::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::AliasShadowsCollection(ref n) if n == "next"),
        "{err}"
    );
    assert_eq!(other.list(), vec!["next".to_string()]);
    assert!(other.list_aliases().is_empty());

    // Into a fresh one: the collections and their aliases, durably.
    let dst = tempfile::tempdir().unwrap();
    {
        let other = open(dst.path());
        other
            .restore_any_snapshot(&path, None, None, Limits::default())
            .unwrap();
        assert_eq!(other.get("live").unwrap().name(), "a");
    }
    let other = open(dst.path());
    assert_eq!(
        other.list_aliases(),
        listed(&[("live", "a"), ("next", "b")])
    );
}
