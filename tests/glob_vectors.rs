//! Every case a real redis-server 7 matched (`KEYS pattern`), held against [`cachette::glob`].

use cachette::glob;

#[test]
fn redis_glob_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/vectors/glob-redis.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("shared/vectors beside the repository");
    let mut cases = 0;
    let mut checked = 0;
    let mut failures = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("valid JSON line");
        let pattern = v["pattern"].as_str().expect("pattern");
        let matched: Vec<&str> = v["matches"]
            .as_array()
            .expect("matches")
            .iter()
            .map(|m| m.as_str().expect("string"))
            .collect();
        for key in v["keys"].as_array().expect("keys") {
            let key = key.as_str().expect("string");
            let want = matched.contains(&key);
            if glob::matches(pattern.as_bytes(), key.as_bytes()) != want {
                failures.push(format!(
                    "pattern {pattern:?} key {key:?}: redis said {want}"
                ));
            }
            checked += 1;
        }
        cases += 1;
    }
    assert_eq!(cases, 500);
    assert!(checked > 1000, "only {checked} keys checked");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
