//! Request key generation: canonical JSON alone, and the full key (canonical JSON + MD5 + prefix)
//! through the allocation-free `request_key_into`, for a small and a ~1 KB nested payload, in both
//! canonical JSON dialects.
//!
//! Beside them, `serde_json_sorted/{case}`: the same texts read into a `serde_json::Value` (its
//! map sorted by UTF-8 bytes, `preserve_order` off) and written back, the nearest that serde_json
//! comes to canonical JSON. It is the side-by-side measurement in `src/canonical/mod.rs`'s header:
//! `cargo bench --bench keys -- 'canonical_json|serde_json_sorted'`.
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use cachette::canonical::{canonicalize_into, KeyFormat};
use cachette::key::request_key_into;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

/// The typical tiny request.
const SMALL: &str = r#"{"topic":"Python Programming"}"#;

/// The request objects of `npm run bench` (a), as `JSON.stringify` writes them (74 bytes).
const BENCH_A: &str =
    r#"{"topic":"Python Programming 0","level":"beginner","n":5,"tags":["a","b"]}"#;

/// A ~1 KB nested request, as `JSON.stringify` writes it (keys deliberately unsorted).
const NESTED: &str = concat!(
    r#"{"model":"gpt-4o-mini","temperature":0.7,"max_tokens":512,"top_p":1,"stream":false,"#,
    r#""messages":[{"role":"system","content":"You are a helpful assistant that writes concise, "#,
    r#"accurate course outlines for software engineers."},{"role":"user","content":"Write an "#,
    r#"outline for a course on Python programming for data engineers, with exercises."}],"#,
    r#""metadata":{"user":{"id":48213,"plan":"pro","locale":"de-DE","tags":["beta","eu","early"]},"#,
    r#""request":{"source":"web","page":"/courses/new","ab":{"variant":"B","weight":0.25},"#,
    r#""ts":1732571234567}},"tools":[{"type":"function","function":{"name":"search_docs","#,
    r#""description":"Search the documentation index for a query","parameters":{"type":"object","#,
    r#""properties":{"query":{"type":"string"},"limit":{"type":"integer","minimum":1,"#,
    r#""maximum":50}},"required":["query"]}}}],"response_format":{"type":"json_object"},"#,
    r#""stop":["\n\n###","END"],"seed":42,"presence_penalty":-0.5,"frequency_penalty":0.125,"#,
    r#""logit_bias":{"50256":-100,"198":-1.5},"notes":"Grüße aus Köln — naïve café 😀","#,
    r#""weights":[0.001,1e-7,3.14159,2.5e21,-17,1000000]}"#
);

fn bench_keys(c: &mut Criterion) {
    let cases = [
        ("small", SMALL),
        ("bench_a", BENCH_A),
        ("nested_1kb", NESTED),
    ];
    for (name, data) in cases {
        let mut sorted = Vec::with_capacity(2048);
        c.bench_function(&format!("serde_json_sorted/{name}"), |b| {
            b.iter(|| {
                sorted.clear();
                let r = serde_json::from_str::<serde_json::Value>(black_box(data))
                    .and_then(|value| serde_json::to_writer(&mut sorted, &value));
                black_box(r.is_ok())
            })
        });
    }
    for format in [KeyFormat::Jcs, KeyFormat::Python] {
        for (name, data) in cases {
            let mut canonical = String::with_capacity(2048);
            c.bench_function(&format!("canonical_json/{}/{name}", format.as_str()), |b| {
                b.iter(|| {
                    canonical.clear();
                    let r = canonicalize_into(black_box(data), format, &mut canonical);
                    black_box(r.is_ok())
                })
            });

            let mut scratch = String::with_capacity(2048);
            let mut key = String::with_capacity(128);
            c.bench_function(
                &format!("request_key_into/{}/{name}", format.as_str()),
                |b| {
                    b.iter(|| {
                        key.clear();
                        let r = request_key_into(
                            black_box("v1"),
                            black_box("courses"),
                            black_box(data),
                            format,
                            &mut scratch,
                            &mut key,
                        );
                        black_box(r.is_ok())
                    })
                },
            );
        }
    }
}

criterion_group!(benches, bench_keys);
criterion_main!(benches);
