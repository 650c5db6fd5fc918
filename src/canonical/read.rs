//! Reading a parsed document value by value, for the crate's code that reads JSON other than
//! request data (the Upstash client's reply envelopes): the canonical parser is the crate's one
//! JSON reader.
//!
//! A [`Document`] holds the parser's flat node list; a [`Value`] is a cursor into it. Numbers are
//! read in Python's number model, so an integer literal keeps its own digits at any size
//! ([`Kind::Integer`]) and the caller decides what it must fit in.

use std::borrow::Cow;

use super::parse::{decode_escape, Node, Parser, Span, Val, ESCAPED};
use super::KeyFormat;
use crate::error::{Error, Result};

/// One parsed JSON text.
pub(crate) struct Document<'a> {
    src: &'a str,
    nodes: Vec<Node>,
}

impl<'a> Document<'a> {
    /// Parses exactly one JSON value (RFC 8259, whitespace around it allowed), with the limits of
    /// canonical JSON: at most [`MAX_DEPTH`](super::MAX_DEPTH) levels of nesting. Anything else is
    /// [`Error::Unserializable`].
    pub(crate) fn parse(src: &'a str) -> Result<Self> {
        if u32::try_from(src.len()).is_err() {
            return Err(Error::Unserializable("JSON text is too large".to_owned()));
        }
        let mut nodes = Vec::new();
        Parser::new(src, &mut nodes, KeyFormat::Python).parse()?;
        Ok(Document { src, nodes })
    }

    /// The top-level value.
    pub(crate) fn root(&self) -> Value<'_> {
        Value {
            src: self.src,
            nodes: &self.nodes,
            idx: 0,
        }
    }
}

/// What a [`Value`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind<'d> {
    Null,
    Bool(bool),
    /// A number written without fraction or exponent, as written (`-0` as `0`).
    Integer(&'d str),
    /// Any other number.
    Number,
    /// A string, unescaped; a lone surrogate escape becomes U+FFFD.
    Str(Cow<'d, str>),
    /// An array: its elements are [`Value::items`].
    Array,
    /// An object: its members are read with [`Value::get`].
    Object,
}

/// One value of a [`Document`].
#[derive(Clone, Copy)]
pub(crate) struct Value<'d> {
    src: &'d str,
    nodes: &'d [Node],
    idx: usize,
}

impl<'d> Value<'d> {
    fn node(self) -> Option<Node> {
        self.nodes.get(self.idx).copied()
    }

    /// What this value is.
    pub(crate) fn kind(self) -> Kind<'d> {
        let Some(node) = self.node() else {
            return Kind::Null;
        };
        match node.val {
            Val::Null => Kind::Null,
            Val::True => Kind::Bool(true),
            Val::False => Kind::Bool(false),
            Val::Int(start, end) => {
                Kind::Integer(self.src.get(start as usize..end as usize).unwrap_or("0"))
            }
            Val::Dec { .. } | Val::Num(_) | Val::Overflow(..) => Kind::Number,
            Val::Str(span) => Kind::Str(unescape(self.src, span)),
            Val::Array => Kind::Array,
            Val::Object => Kind::Object,
        }
    }

    /// The children in order: an array's elements, an object's member values; none for a
    /// scalar.
    pub(crate) fn items(self) -> impl Iterator<Item = Value<'d>> {
        let end = self.node().map_or(0, |n| n.next as usize);
        let mut child = self.idx + 1;
        std::iter::from_fn(move || {
            if child >= end {
                return None;
            }
            let value = Value { idx: child, ..self };
            child = value.node().map_or(end, |n| n.next as usize);
            Some(value)
        })
    }

    /// The member `name` of an object (the last one, if the name repeats, as in `JSON.parse`);
    /// `None` for a missing member or a value that is not an object.
    pub(crate) fn get(self, name: &str) -> Option<Value<'d>> {
        if !matches!(self.node()?.val, Val::Object) {
            return None;
        }
        self.items()
            .filter(|member| {
                member
                    .node()
                    .is_some_and(|n| unescape(self.src, n.name) == name)
            })
            .last()
    }
}

/// The contents of a string literal, unescaped.
fn unescape(src: &str, span: Span) -> Cow<'_, str> {
    let raw = span.text(src);
    if span.flags & ESCAPED == 0 {
        return Cow::Borrowed(raw);
    }
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let (mut run, mut i) = (0, 0);
    while i < b.len() {
        if b.get(i) != Some(&b'\\') {
            i += 1;
            continue;
        }
        out.push_str(raw.get(run..i).unwrap_or(""));
        let (cp, next) = decode_escape(b, i);
        out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
        i = next;
        run = next;
    }
    out.push_str(raw.get(run..).unwrap_or(""));
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_in_order() {
        let doc = Document::parse(
            r#"[null,true,false,-12,-0,1234567890123456789012345,1.5,1e400,"a",[],{}]"#,
        )
        .unwrap();
        assert_eq!(
            doc.root().items().map(Value::kind).collect::<Vec<_>>(),
            [
                Kind::Null,
                Kind::Bool(true),
                Kind::Bool(false),
                Kind::Integer("-12"),
                Kind::Integer("0"),
                Kind::Integer("1234567890123456789012345"),
                Kind::Number,
                Kind::Number,
                Kind::Str("a".into()),
                Kind::Array,
                Kind::Object,
            ]
        );
    }

    #[test]
    fn strings_unescape() {
        let doc = Document::parse(
            r#"["WRONGTYPE \"x\" \u00e9 \ud83d\ude00 \/\b\f\n\r\t", "\ud800\u0041", "é😀"]"#,
        )
        .unwrap();
        assert_eq!(
            doc.root().items().map(Value::kind).collect::<Vec<_>>(),
            [
                Kind::Str("WRONGTYPE \"x\" é 😀 /\u{8}\u{c}\n\r\t".into()),
                Kind::Str("\u{fffd}A".into()),
                Kind::Str("é😀".into()),
            ]
        );
    }

    #[test]
    fn members_by_name() {
        let doc =
            Document::parse(r#" { "result" : [1, [2]], "x": {"y": 3}, "\u0061": 4, "a": 5 } "#)
                .unwrap();
        let root = doc.root();
        assert_eq!(root.kind(), Kind::Object);
        let result = root.get("result").map(Value::items).map(Iterator::count);
        assert_eq!(result, Some(2));
        // Nested members are not the object's own.
        assert!(root.get("y").is_none());
        // The last of a repeated name, compared after unescaping.
        assert_eq!(root.get("a").map(Value::kind), Some(Kind::Integer("5")));
        assert!(root.get("missing").is_none());
        assert!(root.get("x").and_then(|x| x.get("y")).is_some());
        assert!(root.get("result").and_then(|r| r.get("0")).is_none());
        assert_eq!(root.get("x").map(|x| x.items().count()), Some(1));
        assert_eq!(
            Document::parse("7").map(|d| d.root().items().count()).ok(),
            Some(0)
        );
    }

    #[test]
    fn not_json() {
        for bad in [
            "",
            "hello",
            "{",
            "[1,]",
            "{\"a\"}",
            "\"\u{1}\"",
            "[1] x",
            "nul",
            "01",
        ] {
            assert!(Document::parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(Document::parse(&deep).is_err());
    }
}
