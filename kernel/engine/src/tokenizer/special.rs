//! Splitting text around special tokens before tokenization (llama.cpp's
//! `tokenizer_st_partition`): each special token's text found in a raw
//! fragment becomes that token, longest special tokens first.

use alloc::vec::Vec;

/// A piece of the input after special-token splitting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// Raw text still to be tokenized: `text[start..start + len]`.
    Text { start: usize, len: usize },
    /// A special token matched literally.
    Token(u32),
}

/// Splits `text` around every occurrence of each `(id, spelling)` in
/// `specials`, in the given order (longest first, so a longer special token
/// is never split by a shorter one it contains).
pub fn partition<'a>(text: &[u8], specials: impl Iterator<Item = (u32, &'a [u8])>) -> Vec<Fragment> {
    let mut frags = Vec::new();
    if text.is_empty() {
        return frags;
    }
    frags.push(Fragment::Text { start: 0, len: text.len() });
    let mut next = Vec::new();
    for (id, needle) in specials {
        if needle.is_empty() {
            continue;
        }
        let mut changed = false;
        next.clear();
        for &frag in &frags {
            let Fragment::Text { start, len } = frag else {
                next.push(frag);
                continue;
            };
            let hay = &text[start..start + len];
            let mut from = 0;
            while let Some(at) = find(&hay[from..], needle) {
                let at = from + at;
                if at > from {
                    next.push(Fragment::Text { start: start + from, len: at - from });
                }
                next.push(Fragment::Token(id));
                from = at + needle.len();
                changed = true;
            }
            if from < len {
                next.push(Fragment::Text { start: start + from, len: len - from });
            }
        }
        if changed {
            core::mem::swap(&mut frags, &mut next);
        }
    }
    frags
}

/// First occurrence of `needle` (non-empty) in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    let first = needle[0];
    (0..=hay.len() - needle.len()).find(|&i| hay[i] == first && &hay[i..i + needle.len()] == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_around_every_occurrence_longest_first() {
        let text = b"<a><ab>x<a>";
        let specials: [(u32, &[u8]); 2] = [(7, b"<ab>"), (5, b"<a>")];
        let frags = partition(text, specials.into_iter());
        assert_eq!(
            frags,
            [Fragment::Token(5), Fragment::Token(7), Fragment::Text { start: 7, len: 1 }, Fragment::Token(5)]
        );
        assert!(partition(b"", specials.into_iter()).is_empty());
        assert_eq!(partition(b"plain", specials.into_iter()), [Fragment::Text { start: 0, len: 5 }]);
    }
}
