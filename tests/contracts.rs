//! Contracts between the Rust crate and the npm package's hand-written typings: each is defined
//! once in Rust and checked here against the TypeScript that states it.

use std::collections::BTreeSet;

use cachette::Error;

/// The string literals of `export type {name} = "A" | "B" ...;` in the TypeScript `source`.
fn string_union(source: &str, name: &str) -> Vec<String> {
    let head = format!("export type {name} =");
    let start = source
        .find(&head)
        .unwrap_or_else(|| panic!("no `{head}` in the typings"))
        + head.len();
    let end = start
        + source[start..]
            .find(';')
            .unwrap_or_else(|| panic!("`{head}` has no closing `;`"));
    source[start..end]
        .split('|')
        .map(str::trim)
        .filter(|member| !member.is_empty())
        .map(|member| {
            member
                .strip_prefix('"')
                .and_then(|m| m.strip_suffix('"'))
                .unwrap_or_else(|| {
                    panic!("{name} has a member that is not a string literal: {member}")
                })
                .to_owned()
        })
        .collect()
}

#[test]
fn cache_error_code_union_is_error_codes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/pkg-template/index.d.ts");
    let typings = std::fs::read_to_string(path).expect("pkg-template/index.d.ts");
    let typed = string_union(&typings, "CacheErrorCode");
    let typed_set: BTreeSet<&str> = typed.iter().map(String::as_str).collect();
    assert_eq!(
        typed_set.len(),
        typed.len(),
        "CacheErrorCode repeats a member: {typed:?}"
    );
    let rust: BTreeSet<&str> = Error::CODES.into_iter().collect();
    let missing: Vec<_> = rust.difference(&typed_set).collect();
    let extra: Vec<_> = typed_set.difference(&rust).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "CacheErrorCode in pkg-template/index.d.ts differs from Error::CODES (src/error.rs): \
         missing from the TypeScript union {missing:?}, not in Error::CODES {extra:?}"
    );
}
