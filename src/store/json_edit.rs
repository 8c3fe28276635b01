//! Editing one list of a JSON document in place: the elements kept keep their exact
//! bytes, and so does everything around the list (an `index.json`'s other fields, its
//! indentation). Only an element that is added or changed is written anew.

use std::collections::HashMap;
use std::ops::Range;

use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::model::image::parse_json;

/// A JSON document and the spans of one list in it: the document itself when it is a
/// list (`manifest.json`), or the value of a key of its top-level object
/// (`index.json`'s `manifests`).
pub(crate) struct ListDoc {
    text: String,
    /// The list's span (`[` to `]`, or a `null` standing for an empty list).
    list: Range<usize>,
    /// Each element's span, in order.
    elements: Vec<Range<usize>>,
    /// The key to write before the list when the object had none.
    missing_key: Option<String>,
}

/// One element of a rebuilt list.
pub(crate) enum Piece {
    /// The element at this position of the original list, byte for byte.
    Kept(usize),
    /// New text (an element added, or one changed and serialized again).
    New(String),
}

impl ListDoc {
    /// `bytes` as a document that is a list (or `null`, an empty one); `file` names it
    /// in errors.
    pub(crate) fn whole(bytes: &[u8], file: &str) -> Result<ListDoc> {
        let text = utf8(bytes, file)?;
        // Depth and shape checked once, as the readers check them.
        let _: serde_json::Value = parse_json(bytes, file)?;
        let start = text.len() - text.trim_start().len();
        let end = text.trim_end().len();
        ListDoc::new(text.to_string(), start..end, file)
    }

    /// `bytes` as an object whose key `key` holds the list (absent or `null`: an empty
    /// list, written as the key's value, or added as the last key, when rebuilt).
    pub(crate) fn in_object(bytes: &[u8], key: &str, file: &str) -> Result<ListDoc> {
        let text = utf8(bytes, file)?;
        let value: serde_json::Value = parse_json(bytes, file)?;
        if !value.is_object() {
            return Err(Error::malformed(file, "is not a JSON object"));
        }
        let fields: HashMap<String, &RawValue> = serde_json::from_str(text)
            .map_err(|e| Error::malformed(file, crate::text::shown(&e.to_string())))?;
        let (list, missing_key) = match fields.get(key) {
            Some(raw) => {
                let start = offset_in(text, raw.get());
                (start..start + raw.get().len(), None)
            }
            // No such key: the list goes before the closing brace.
            None => {
                let close = text.trim_end().len() - 1;
                (close..close, Some(key.to_string()))
            }
        };
        let mut doc = ListDoc::new(text.to_string(), list, file)?;
        doc.missing_key = missing_key;
        Ok(doc)
    }

    fn new(text: String, list: Range<usize>, file: &str) -> Result<ListDoc> {
        let span = &text[list.clone()];
        let elements = if span.is_empty() || span == "null" {
            Vec::new()
        } else {
            let items: Vec<&RawValue> = serde_json::from_str(span).map_err(|_| {
                Error::malformed(file, "the list dockhand edits is not a JSON list")
            })?;
            items
                .iter()
                .map(|raw| {
                    let start = offset_in(&text, raw.get());
                    start..start + raw.get().len()
                })
                .collect()
        };
        Ok(ListDoc {
            text,
            list,
            elements,
            missing_key: None,
        })
    }

    /// How many elements the list holds.
    pub(crate) fn len(&self) -> usize {
        self.elements.len()
    }

    /// The exact text of element `i`.
    pub(crate) fn element(&self, i: usize) -> &str {
        &self.text[self.elements[i].clone()]
    }

    /// The document with the list made of `pieces`, every other byte as it was; the
    /// spacing between elements is the original list's (its first separator), a comma
    /// when it had fewer than two.
    pub(crate) fn rebuilt(&self, pieces: &[Piece]) -> Vec<u8> {
        let (lead, separator, trail) = match self.elements.as_slice() {
            [] => ("", ",", ""),
            [only] => (
                &self.text[self.list.start + 1..only.start],
                ",",
                &self.text[only.end..self.list.end - 1],
            ),
            [first, second, ..] => (
                &self.text[self.list.start + 1..first.start],
                &self.text[first.end..second.start],
                &self.text[self.elements.last().expect("two at least").end..self.list.end - 1],
            ),
        };
        let mut out = String::with_capacity(self.text.len() + 256);
        out.push_str(&self.text[..self.list.start]);
        if let Some(key) = &self.missing_key {
            // A key added to an object that has others gets a comma first.
            let before = self.text[..self.list.start].trim_end();
            if !before.ends_with('{') {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(key).expect("a string serializes"));
            out.push(':');
        }
        out.push('[');
        if !pieces.is_empty() {
            out.push_str(lead);
        }
        for (n, piece) in pieces.iter().enumerate() {
            if n > 0 {
                out.push_str(separator);
            }
            match piece {
                Piece::Kept(i) => out.push_str(self.element(*i)),
                Piece::New(text) => out.push_str(text),
            }
        }
        if !pieces.is_empty() {
            out.push_str(trail);
        }
        out.push(']');
        out.push_str(&self.text[self.list.end..]);
        out.into_bytes()
    }
}

fn utf8<'a>(bytes: &'a [u8], file: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|_| Error::malformed(file, "is not UTF-8 text"))
}

/// Where `part`, a slice of `whole`, starts in it.
fn offset_in(whole: &str, part: &str) -> usize {
    let offset = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    assert!(offset + part.len() <= whole.len(), "a slice of the text");
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_elements_keep_their_bytes_and_the_layout_around_them() {
        let text = "{\n  \"schemaVersion\": 2,\n  \"manifests\": [\n    {\"a\":  1},\n    {\"b\" : 2.50},\n    {\"c\":3}\n  ],\n  \"x\": \"\\u00e9\"\n}\n";
        let doc = ListDoc::in_object(text.as_bytes(), "manifests", "index.json").unwrap();
        assert_eq!(doc.len(), 3);
        assert_eq!(doc.element(1), "{\"b\" : 2.50}");
        let out = doc.rebuilt(&[
            Piece::Kept(2),
            Piece::New("{\"d\":4}".into()),
            Piece::Kept(1),
        ]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n  \"schemaVersion\": 2,\n  \"manifests\": [\n    {\"c\":3},\n    {\"d\":4},\n    {\"b\" : 2.50}\n  ],\n  \"x\": \"\\u00e9\"\n}\n"
        );
        let emptied = doc.rebuilt(&[]);
        assert_eq!(
            String::from_utf8(emptied).unwrap(),
            "{\n  \"schemaVersion\": 2,\n  \"manifests\": [],\n  \"x\": \"\\u00e9\"\n}\n"
        );
    }

    #[test]
    fn a_whole_list_a_null_and_a_missing_key() {
        let doc = ListDoc::whole(b" [{\"Config\":\"a\"}]\n", "manifest.json").unwrap();
        let out = doc.rebuilt(&[Piece::Kept(0), Piece::New("{}".into())]);
        assert_eq!(out, b" [{\"Config\":\"a\"},{}]\n");
        let null = ListDoc::in_object(br#"{"manifests":null,"k":1}"#, "manifests", "i").unwrap();
        assert_eq!(null.len(), 0);
        assert_eq!(
            null.rebuilt(&[Piece::New("{}".into())]),
            br#"{"manifests":[{}],"k":1}"#
        );
        let missing = ListDoc::in_object(br#"{"k":1}"#, "manifests", "i").unwrap();
        assert_eq!(
            missing.rebuilt(&[Piece::New("{}".into())]),
            br#"{"k":1,"manifests":[{}]}"#
        );
        let bare = ListDoc::in_object(b"{}", "manifests", "i").unwrap();
        assert_eq!(bare.rebuilt(&[]), br#"{"manifests":[]}"#);
    }

    #[test]
    fn what_is_not_the_expected_shape_is_refused() {
        assert!(ListDoc::in_object(b"[1]", "manifests", "index.json").is_err());
        assert!(ListDoc::in_object(br#"{"manifests":{}}"#, "manifests", "index.json").is_err());
        assert!(ListDoc::whole(b"{\"a\":1}", "manifest.json").is_err());
        assert!(ListDoc::whole(b"\xff", "manifest.json").is_err());
    }
}
