//! The two merge algorithms over a word's symbols, as llama.cpp runs them:
//! GPT-2 BPE (lowest merge rank first) and SentencePiece BPE (highest token
//! score first). Both repeatedly merge the best adjacent pair, with ties going
//! to the leftmost pair, until no pair qualifies.

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Ordering;

use super::unicode::utf8_len;

/// One symbol of the word being merged: a byte range, linked to its
/// neighbours. A symbol absorbed into its left neighbour gets `len == 0`.
#[derive(Clone, Copy, Debug)]
pub struct Symbol {
    pub start: u32,
    pub len: u32,
    prev: i32,
    next: i32,
}

/// Splits `text` into one symbol per UTF-8 character (by the lead byte's
/// announced length, clamped to the text, as llama.cpp does).
pub fn split_chars(text: &[u8], out: &mut Vec<Symbol>) {
    out.clear();
    let mut offs = 0;
    while offs < text.len() {
        let len = utf8_len(text[offs]).min(text.len() - offs);
        let index = out.len() as i32;
        offs += len;
        out.push(Symbol {
            start: (offs - len) as u32,
            len: len as u32,
            prev: index - 1,
            next: if offs == text.len() { -1 } else { index + 1 },
        });
    }
}

/// A candidate merge of symbols `left` and `left`'s right neighbour. The pair
/// is stale (skipped) once the two symbols no longer span `size` bytes.
#[derive(Clone, Copy, Debug)]
struct Candidate<P> {
    priority: P,
    left: i32,
    right: i32,
    size: u32,
}

/// Orders candidates for a max-heap: better priority first, then the
/// leftmost pair.
trait Priority: Copy {
    fn better(self, other: Self) -> Ordering;
}

/// GPT-2 BPE: a lower merge rank is better.
#[derive(Clone, Copy, Debug)]
struct Rank(u32);
impl Priority for Rank {
    fn better(self, other: Self) -> Ordering {
        other.0.cmp(&self.0)
    }
}

/// SentencePiece: a higher token score is better.
#[derive(Clone, Copy, Debug)]
struct Score(f32);
impl Priority for Score {
    fn better(self, other: Self) -> Ordering {
        self.0.partial_cmp(&other.0).unwrap_or(Ordering::Equal)
    }
}

impl<P: Priority> PartialEq for Candidate<P> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<P: Priority> Eq for Candidate<P> {}
impl<P: Priority> PartialOrd for Candidate<P> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<P: Priority> Ord for Candidate<P> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority.better(other.priority).then_with(|| other.left.cmp(&self.left))
    }
}

/// Runs the merge loop over `symbols` (from [`split_chars`]). `judge(left,
/// right)` returns the priority of merging two adjacent symbols, or `None` if
/// they may not merge. On return, live symbols (len > 0) in array order are
/// the result.
fn merge_loop<P: Priority>(symbols: &mut [Symbol], judge: impl Fn(&Symbol, &Symbol) -> Option<P>) {
    let mut queue: BinaryHeap<Candidate<P>> = BinaryHeap::new();
    let push = |queue: &mut BinaryHeap<Candidate<P>>, symbols: &[Symbol], left: i32, right: i32| {
        if left < 0 || right < 0 {
            return;
        }
        let (l, r) = (&symbols[left as usize], &symbols[right as usize]);
        if let Some(priority) = judge(l, r) {
            queue.push(Candidate { priority, left, right, size: l.len + r.len });
        }
    };
    for i in 1..symbols.len() as i32 {
        push(&mut queue, symbols, i - 1, i);
    }
    while let Some(c) = queue.pop() {
        let (li, ri) = (c.left as usize, c.right as usize);
        let (l, r) = (symbols[li], symbols[ri]);
        if l.len == 0 || r.len == 0 || l.len + r.len != c.size {
            continue;
        }
        symbols[li].len += r.len;
        symbols[ri].len = 0;
        symbols[li].next = r.next;
        if r.next >= 0 {
            symbols[r.next as usize].prev = c.left;
        }
        let (prev, next) = (symbols[li].prev, symbols[li].next);
        push(&mut queue, symbols, prev, c.left);
        push(&mut queue, symbols, c.left, next);
    }
}

/// GPT-2 BPE over one pre-tokenized, byte-encoded word. `rank(a, b)` gives the
/// merge rank of the adjacent strings `a`, `b`.
pub fn bpe_merge(word: &[u8], symbols: &mut Vec<Symbol>, rank: impl Fn(&[u8], &[u8]) -> Option<u32>) {
    split_chars(word, symbols);
    let text = |s: &Symbol| &word[s.start as usize..(s.start + s.len) as usize];
    merge_loop(symbols, |l, r| rank(text(l), text(r)).map(Rank));
}

/// SentencePiece BPE over one escaped fragment. `score(s)` is the score of the
/// vocabulary token spelled `s`, or `None` if there is none.
pub fn spm_merge(text: &[u8], symbols: &mut Vec<Symbol>, score: impl Fn(&[u8]) -> Option<f32>) {
    split_chars(text, symbols);
    // Live neighbours are always adjacent, so the pair spans one byte range.
    merge_loop(symbols, |l, r| score(&text[l.start as usize..(l.start + l.len + r.len) as usize]).map(Score));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live<'a>(text: &'a [u8], symbols: &[Symbol]) -> Vec<&'a [u8]> {
        symbols.iter().filter(|s| s.len > 0).map(|s| &text[s.start as usize..(s.start + s.len) as usize]).collect()
    }

    #[test]
    fn bpe_applies_lowest_rank_first_and_leftmost_on_ties() {
        let merges: [(&[u8], &[u8]); 3] = [(b"a", b"a"), (b"b", b"b"), (b"aa", b"bb")];
        let rank = |a: &[u8], b: &[u8]| merges.iter().position(|&(x, y)| x == a && y == b).map(|p| p as u32);
        let mut symbols = Vec::new();
        bpe_merge(b"aaabb", &mut symbols, rank);
        // The leftmost "aa" wins the tie; the leftover "a" then blocks "aa"+"bb".
        assert_eq!(live(b"aaabb", &symbols), [&b"aa"[..], b"a", b"bb"]);
        bpe_merge(b"aabb", &mut symbols, rank);
        assert_eq!(live(b"aabb", &symbols), [&b"aabb"[..]]);
    }

    #[test]
    fn spm_applies_highest_score_first() {
        let vocab: [(&[u8], f32); 3] = [(b"ab", -1.0), (b"bc", -0.5), (b"bcd", -2.0)];
        let score = |s: &[u8]| vocab.iter().find(|(t, _)| *t == s).map(|&(_, sc)| sc);
        let mut symbols = Vec::new();
        spm_merge(b"abc", &mut symbols, score);
        // "bc" scores higher than "ab"; "a"+"bc" is not a token.
        assert_eq!(live(b"abc", &symbols), [&b"a"[..], b"bc"]);
        spm_merge(b"abcd", &mut symbols, score);
        assert_eq!(live(b"abcd", &symbols), [&b"a"[..], b"bcd"]);
        // Multi-byte characters stay whole.
        spm_merge("é".as_bytes(), &mut symbols, score);
        assert_eq!(live("é".as_bytes(), &symbols), ["é".as_bytes()]);
    }
}
