//! Migrations are append-only once landed (migrations/README.md): a database migrated
//! by an earlier build never sees a landed migration change, and a new one runs after
//! every landed one. `migrations/landed.sha256` records each landed file's digest.

use std::collections::BTreeSet;
use std::path::Path;

use sha2::{Digest, Sha256};

fn migrations() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
}

/// (digest, `<version>_<name>/<file>`) of each landed file.
fn landed() -> Vec<(String, String)> {
    let list = std::fs::read_to_string(migrations().join("landed.sha256")).expect("landed.sha256");
    list.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (digest, file) = l.split_once("  ").expect("`<sha256>  <dir>/<file>` lines");
            (digest.to_owned(), file.to_owned())
        })
        .collect()
}

fn on_disk() -> BTreeSet<String> {
    std::fs::read_dir(migrations())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn no_landed_migration_has_changed() {
    let landed = landed();
    assert!(landed.len() >= 40, "the list holds the landed migrations: {}", landed.len());
    for (digest, file) in landed {
        let text = std::fs::read(migrations().join(&file))
            .unwrap_or_else(|e| panic!("{file} was landed and is gone: {e}"));
        let now = hex::encode(Sha256::digest(&text));
        assert_eq!(now, digest, "{file} changed after it landed: write a new migration instead");
    }
}

#[test]
fn every_migration_is_listed_and_new_ones_sort_after_the_landed() {
    let in_order: Vec<String> =
        landed().into_iter().map(|(_, f)| f.split('/').next().unwrap().to_owned()).collect();
    let listed: BTreeSet<&String> = in_order.iter().collect();
    let unlisted: Vec<String> = on_disk().into_iter().filter(|d| !listed.contains(d)).collect();
    assert!(
        unlisted.is_empty(),
        "migrations not in migrations/landed.sha256 (add their digests when they land): {unlisted:?}"
    );
    // The directories a build runs in order: the list's own order must be theirs, so a
    // migration dated before a landed one (it would never run where that one has) fails.
    let mut sorted = in_order.clone();
    sorted.sort();
    assert_eq!(in_order, sorted, "landed.sha256 lists migrations in the order they run");
}
