//! A conversation that remembers: the turns so far, and which tokens of the
//! context already sit in the KV cache.
//!
//! Each turn the whole conversation (system prompt, the earlier turns with
//! their answers, the new user line, the prompt for the reply) is rendered
//! and encoded as one token sequence, exactly as a one-shot prompt of that
//! conversation would be. Its longest common prefix with the tokens whose
//! keys and values are cached is *reused*; only the rest is evaluated, from
//! the position where the two part (llama.cpp's server reuses its cache the
//! same way). An answer whose text re-encodes to the ids that were generated
//! (the usual case) is reused whole, so a follow-up evaluates only its own
//! tokens; where the encoding differs, the cache is reused up to the first
//! difference. Either way the context is a pure function of the
//! conversation's text, so the kernel (turn by turn, on its cache) and the
//! host (the whole conversation at once, `axiom generate --messages`)
//! evaluate the same tokens and, the forward pass being bit-identical across
//! batch splits, produce the same answers.
//!
//! When the next turn and room for its answer do not fit the context, the
//! oldest turns are dropped (the system prompt stays): the cache is then
//! reused up to the end of the system prompt and the kept turns are
//! evaluated again.
//!
//! Without a chat template (`chat=0`), the conversation is plain text: each
//! turn's line and answer, turns separated by a newline.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::tokenizer::{ChatMessage, ChatTemplate, TokenId, Tokenizer, TokenizerError, Utf8Stream};

/// One finished turn: the user's line and the answer's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    pub user: String,
    pub answer: String,
}

/// How the conversation is written out for the model.
#[derive(Clone, Debug)]
enum Format {
    Chat { template: ChatTemplate, system: Option<String> },
    Plain,
}

/// The context for the next answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnPlan {
    /// The whole context, ending with the prompt for the reply.
    pub tokens: Vec<TokenId>,
    /// `tokens[..reused]` are in the cache already (positions `0..reused`).
    pub reused: usize,
    /// Oldest turns dropped to make room for this one.
    pub dropped_turns: usize,
    /// Most tokens the answer may have (the request, bounded by the context).
    pub max_new: usize,
}

impl TurnPlan {
    /// The tokens to evaluate, starting at position [`Self::start_pos`].
    pub fn new_tokens(&self) -> &[TokenId] {
        &self.tokens[self.reused..]
    }

    pub fn start_pos(&self) -> usize {
        self.reused
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ConversationError {
    /// The model's chat template cannot be used.
    Template(TokenizerError),
    /// The conversation encodes to no tokens.
    Empty,
    /// Even with every earlier turn dropped, the system prompt and this line
    /// leave no room for an answer.
    TooLong { tokens: usize, n_ctx: usize },
    /// A message list that is not a conversation (host input).
    BadMessages(&'static str),
}

impl fmt::Display for ConversationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Template(e) => write!(f, "chat template: {e}"),
            Self::Empty => f.write_str("the prompt encodes to no tokens"),
            Self::TooLong { tokens, n_ctx } => {
                write!(f, "the prompt has {tokens} tokens (with the system prompt); the context holds {n_ctx}: raise ctx= or shorten it")
            }
            Self::BadMessages(why) => write!(f, "messages: {why}"),
        }
    }
}

impl core::error::Error for ConversationError {}

/// The turns of one conversation and the cache's contents.
#[derive(Clone, Debug)]
pub struct Conversation {
    format: Format,
    turns: Vec<Turn>,
    /// Tokens whose keys and values are cached, at positions `0..len`.
    cached: Vec<TokenId>,
    n_ctx: usize,
}

impl Conversation {
    /// A conversation in the model's chat template (`chat`; a base model
    /// without one gets the completion framing, `Question: …\nAnswer:`, as
    /// [`Tokenizer::encode_chat`] does) or in plain text, in a context of
    /// `n_ctx` tokens. `system` replaces the template's default system
    /// message (chat only).
    pub fn new(tokenizer: &Tokenizer, chat: bool, system: Option<&str>, n_ctx: usize) -> Result<Self, ConversationError> {
        let format = if chat {
            let template = tokenizer.prompt_template().map_err(ConversationError::Template)?;
            Format::Chat { template, system: system.map(String::from) }
        } else {
            Format::Plain
        };
        Ok(Conversation { format, turns: Vec::new(), cached: Vec::new(), n_ctx })
    }

    /// The conversation of a message list (`system` first, optional; then
    /// `user` and `assistant` alternating; ending with the `user` message to
    /// answer): the conversation before the last message, and that message.
    pub fn from_messages<'m>(
        tokenizer: &Tokenizer,
        chat: bool,
        messages: &[ChatMessage<'m>],
        n_ctx: usize,
    ) -> Result<(Self, &'m str), ConversationError> {
        let (system, rest) = match messages.split_first() {
            Some((m, rest)) if m.role == "system" => (Some(m.content), rest),
            _ => (None, messages),
        };
        if system.is_some() && !chat {
            return Err(ConversationError::BadMessages("a system message needs the chat template"));
        }
        let Some((last, earlier)) = rest.split_last() else {
            return Err(ConversationError::BadMessages("no user message to answer"));
        };
        if last.role != "user" {
            return Err(ConversationError::BadMessages("the last message must be the user's"));
        }
        if earlier.len() % 2 != 0 {
            return Err(ConversationError::BadMessages("user and assistant messages must alternate"));
        }
        let mut conversation = Conversation::new(tokenizer, chat, system, n_ctx)?;
        for pair in earlier.chunks(2) {
            if pair[0].role != "user" || pair[1].role != "assistant" {
                return Err(ConversationError::BadMessages("user and assistant messages must alternate, starting with user"));
            }
            conversation.turns.push(Turn { user: pair[0].content.into(), answer: pair[1].content.into() });
        }
        Ok((conversation, last.content))
    }

    /// Forgets the turns. The cached tokens stay known: the next turn still
    /// reuses the system prompt's.
    pub fn reset(&mut self) {
        self.turns.clear();
    }

    pub fn turns(&self) -> &[Turn] {
        &self.turns
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Tokens whose keys and values are in the cache.
    pub fn cached_tokens(&self) -> usize {
        self.cached.len()
    }

    /// The context for answering `user` after `turns`.
    fn encode(&self, tokenizer: &Tokenizer, turns: &[Turn], user: &str) -> Vec<TokenId> {
        match &self.format {
            Format::Chat { template, system } => {
                let mut messages = Vec::with_capacity(2 * turns.len() + 2);
                if let Some(s) = system {
                    messages.push(ChatMessage { role: "system", content: s });
                }
                for t in turns {
                    messages.push(ChatMessage { role: "user", content: &t.user });
                    messages.push(ChatMessage { role: "assistant", content: &t.answer });
                }
                messages.push(ChatMessage { role: "user", content: user });
                tokenizer.encode(&template.render(&messages, true), true, true)
            }
            Format::Plain => {
                let mut text = String::new();
                for t in turns {
                    text.push_str(&t.user);
                    text.push_str(&t.answer);
                    text.push('\n');
                }
                text.push_str(user);
                tokenizer.encode(&text, true, true)
            }
        }
    }

    /// Plans the answer to `user`, of at most `max_new` tokens: drops the
    /// oldest turns while the context and `max_new` tokens do not fit (if
    /// dropping every turn is not enough, the answer gets what room is left),
    /// and finds the cached prefix to reuse. The cache beyond that prefix is
    /// forgotten now: it is overwritten by this turn.
    pub fn plan(&mut self, tokenizer: &Tokenizer, user: &str, max_new: usize) -> Result<TurnPlan, ConversationError> {
        let mut dropped = 0;
        let tokens = loop {
            let tokens = self.encode(tokenizer, &self.turns[dropped..], user);
            if tokens.len() + max_new <= self.n_ctx || dropped == self.turns.len() {
                break tokens;
            }
            dropped += 1;
        };
        if tokens.is_empty() {
            return Err(ConversationError::Empty);
        }
        if tokens.len() >= self.n_ctx {
            return Err(ConversationError::TooLong { tokens: tokens.len(), n_ctx: self.n_ctx });
        }
        self.turns.drain(..dropped);
        // At least one token is evaluated: its logits give the first answer token.
        let common = self.cached.iter().zip(&tokens).take_while(|(a, b)| a == b).count();
        let reused = common.min(tokens.len() - 1);
        self.cached.truncate(reused);
        let max_new = max_new.min(self.n_ctx - tokens.len());
        Ok(TurnPlan { tokens, reused, dropped_turns: dropped, max_new })
    }

    /// Records the answer to `user` planned by `plan`: the `generated` ids
    /// (stop token excluded) of which the cache holds those below `end_pos`
    /// (the generation's [`crate::forward::GenerateOutcome::end_pos`]).
    pub fn finish(&mut self, tokenizer: &Tokenizer, plan: TurnPlan, user: &str, generated: &[TokenId], end_pos: usize) {
        let mut cached = plan.tokens;
        cached.extend_from_slice(generated);
        cached.truncate(end_pos);
        self.cached = cached;
        self.turns.push(Turn { user: user.into(), answer: answer_text(tokenizer, generated) });
    }
}

/// The text of generated ids, as it streams out (whole characters; bytes that
/// never form one become U+FFFD).
pub fn answer_text(tokenizer: &Tokenizer, ids: &[TokenId]) -> String {
    let mut stream = Utf8Stream::new();
    let mut text = String::new();
    for &id in ids {
        stream.push(tokenizer.token_piece(id), &mut text);
    }
    stream.finish(&mut text);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::VocabConfig;
    use alloc::vec;

    const TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nBe kind<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    /// A byte-level vocabulary (one token per byte: "Ā".."ÿ" style symbols of
    /// GPT-2's byte table are not needed for ASCII) with the ChatML tokens.
    fn tokenizer(chat_template: Option<&'static str>) -> Tokenizer {
        let mut owned: Vec<Vec<u8>> = Vec::new();
        for b in 0..=255u8 {
            let mut s = String::new();
            s.push(gpt2_byte_char(b));
            owned.push(s.into_bytes());
        }
        owned.push(b"<|im_start|>".to_vec());
        owned.push(b"<|im_end|>".to_vec());
        let n = owned.len();
        let mut types = vec![1; n];
        types[n - 2] = 3;
        types[n - 1] = 3;
        let cfg = VocabConfig {
            model: "gpt2",
            pre: Some("gpt-2"),
            tokens: owned.iter().map(|v| v.as_slice()).collect(),
            token_types: types,
            eos: Some(n as u32 - 1),
            add_bos: Some(false),
            chat_template,
            ..Default::default()
        };
        Tokenizer::new(cfg).unwrap()
    }

    /// GPT-2's byte-to-character table.
    fn gpt2_byte_char(b: u8) -> char {
        let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        if printable(b) {
            return b as char;
        }
        let shift = (0..b).filter(|&x| !printable(x)).count() as u32;
        char::from_u32(256 + shift).unwrap()
    }

    fn ids(t: &Tokenizer, text: &str) -> Vec<u32> {
        t.encode(text, false, true)
    }

    #[test]
    fn follow_ups_evaluate_only_their_new_tokens() {
        let t = tokenizer(Some(TEMPLATE));
        let mut c = Conversation::new(&t, true, None, 512).unwrap();
        let p1 = c.plan(&t, "Hi", 8).unwrap();
        assert_eq!(p1.tokens, t.encode_chat(&[ChatMessage { role: "user", content: "Hi" }], true).unwrap());
        assert_eq!((p1.reused, p1.dropped_turns, p1.max_new), (0, 0, 8));
        // Stopped by the limit: the last token was sampled, not evaluated.
        let answer = ids(&t, "Hello");
        let end = p1.tokens.len() + answer.len() - 1;
        c.finish(&t, p1.clone(), "Hi", &answer, end);
        assert_eq!(c.turns(), &[Turn { user: "Hi".into(), answer: "Hello".into() }]);

        let p2 = c.plan(&t, "Bye", 8).unwrap();
        let whole = t
            .encode_chat(
                &[
                    ChatMessage { role: "user", content: "Hi" },
                    ChatMessage { role: "assistant", content: "Hello" },
                    ChatMessage { role: "user", content: "Bye" },
                ],
                true,
            )
            .unwrap();
        assert_eq!(p2.tokens, whole, "the context is the whole conversation's encoding");
        assert_eq!(p2.reused, end, "everything the cache holds is reused");
        assert_eq!(&p2.new_tokens()[..1], &answer[answer.len() - 1..], "the answer's last token is evaluated now");
        assert_eq!(p2.new_tokens(), &whole[end..]);

        // Stopped at the end-of-turn token: every answer token is cached.
        let answer2 = ids(&t, "Ok");
        let end2 = p2.tokens.len() + answer2.len();
        c.finish(&t, p2, "Bye", &answer2, end2);
        let p3 = c.plan(&t, "Again", 8).unwrap();
        assert_eq!(p3.reused, end2);
        assert_eq!(t.token_piece_special(p3.new_tokens()[0]), b"<|im_end|>");
    }

    #[test]
    fn an_answer_that_encodes_differently_is_reused_up_to_the_difference() {
        let t = tokenizer(Some(TEMPLATE));
        let mut c = Conversation::new(&t, true, None, 512).unwrap();
        let p1 = c.plan(&t, "Hi", 8).unwrap();
        let n = p1.tokens.len();
        // "<|im_end|>" generated as plain bytes would encode as one control token.
        let mut answer = ids(&t, "ab");
        answer.extend(t.encode("x", false, false));
        c.finish(&t, p1, "Hi", &answer, n + 3);
        let p2 = c.plan(&t, "Yo", 8).unwrap();
        assert_eq!(p2.reused, n + 3, "same ids: all reused");
        // Now a generated sequence whose text encodes to other ids.
        let mut c = Conversation::new(&t, true, None, 512).unwrap();
        let p1 = c.plan(&t, "Hi", 8).unwrap();
        let mut odd = ids(&t, "a");
        odd.extend(t.encode("<|im_end|>", false, false)); // the same text as bytes
        let end = n + odd.len();
        c.finish(&t, p1, "Hi", &odd, end);
        let p2 = c.plan(&t, "Yo", 8).unwrap();
        assert_eq!(p2.reused, n + 1, "reused up to the first token that differs");
    }

    #[test]
    fn a_full_context_drops_the_oldest_turns_but_keeps_the_system_prompt() {
        let t = tokenizer(Some(TEMPLATE));
        let head_ids = t.encode("<|im_start|>system\nBe kind<|im_end|>\n", false, true);
        let head = head_ids.len();
        let n_ctx = 80;
        let mut c = Conversation::new(&t, true, None, n_ctx).unwrap();
        let mut dropped = 0;
        for (i, line) in ["one", "two", "three", "four", "five", "six"].iter().enumerate() {
            let cached = c.cached_tokens();
            let p = c.plan(&t, line, 6).unwrap();
            assert!(p.tokens.len() + 6 <= n_ctx, "turn {i} fits with room for its answer");
            assert_eq!(p.tokens[..head], head_ids, "the system prompt is kept");
            if p.dropped_turns > 0 {
                // The system prompt and the next turn's "<|im_start|>user\n" match.
                assert!(p.reused >= head && p.reused < head + 8 && p.reused < cached, "after a drop only the system prompt is reused ({})", p.reused);
                dropped += p.dropped_turns;
            }
            let answer = ids(&t, "ans");
            let end = p.tokens.len() + answer.len();
            c.finish(&t, p, line, &answer, end);
        }
        assert!(dropped > 0, "six turns overflow a context of {n_ctx}");
        assert_eq!(c.turns().last().unwrap().user, "six");
        assert_eq!(c.turns().len() + dropped, 6);
    }

    #[test]
    fn a_line_too_long_for_the_context_is_an_error_and_answers_shrink_to_fit() {
        let t = tokenizer(Some(TEMPLATE));
        let mut c = Conversation::new(&t, true, None, 60).unwrap();
        let e = c.plan(&t, &"x".repeat(60), 4).unwrap_err();
        assert!(matches!(e, ConversationError::TooLong { n_ctx: 60, .. }), "{e}");
        assert!(alloc::format!("{e}").contains("raise ctx="));
        let p = c.plan(&t, "0123456789", 100).unwrap();
        assert_eq!(p.max_new, 60 - p.tokens.len());
    }

    #[test]
    fn reset_forgets_turns_but_reuses_the_system_prompt() {
        let t = tokenizer(Some(TEMPLATE));
        let mut c = Conversation::new(&t, true, Some("S"), 512).unwrap();
        let p = c.plan(&t, "Hi", 4).unwrap();
        let end = p.tokens.len();
        c.finish(&t, p, "Hi", &[], end);
        c.reset();
        let p = c.plan(&t, "Yo", 4).unwrap();
        assert_eq!(p.tokens, t.encode("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nYo<|im_end|>\n<|im_start|>assistant\n", false, true));
        assert_eq!(p.reused, t.encode("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n", false, true).len());
    }

    #[test]
    fn plain_text_turns_are_separated_by_newlines() {
        let t = tokenizer(None);
        let mut c = Conversation::new(&t, false, None, 64).unwrap();
        let p = c.plan(&t, "ab", 4).unwrap();
        assert_eq!(p.tokens, ids(&t, "ab"));
        let end = p.tokens.len() + 1;
        c.finish(&t, p, "ab", &ids(&t, "cd"), end);
        let p = c.plan(&t, "ef", 4).unwrap();
        assert_eq!(p.tokens, ids(&t, "abcd\nef"));
        assert_eq!(p.reused, 3);
    }

    /// A base model (no template) asked to chat gets the completion framing
    /// of `encode_chat`, turn after turn.
    #[test]
    fn chat_with_a_base_model_uses_the_completion_framing() {
        let t = tokenizer(None);
        let mut c = Conversation::new(&t, true, None, 128).unwrap();
        let m = |role, content| ChatMessage { role, content };
        let p = c.plan(&t, "ab", 4).unwrap();
        assert_eq!(p.tokens, t.encode_chat(&[m("user", "ab")], true).unwrap());
        assert_eq!(p.tokens, t.encode("Question: ab\nAnswer:", true, true));
        let end = p.tokens.len() + 1;
        c.finish(&t, p, "ab", &ids(&t, " cd"), end);
        let p = c.plan(&t, "ef", 4).unwrap();
        assert_eq!(p.tokens, t.encode_chat(&[m("user", "ab"), m("assistant", "cd"), m("user", "ef")], true).unwrap());
    }

    #[test]
    fn message_lists_must_be_a_conversation() {
        let t = tokenizer(Some(TEMPLATE));
        let m = |role, content| ChatMessage { role, content };
        let (c, last) = Conversation::from_messages(&t, true, &[m("system", "S"), m("user", "a"), m("assistant", "b"), m("user", "c")], 64).unwrap();
        assert_eq!((c.turns().len(), last), (1, "c"));
        for bad in [
            vec![],
            vec![m("user", "a"), m("assistant", "b")],
            vec![m("assistant", "b"), m("user", "a"), m("user", "c")],
            vec![m("user", "a"), m("user", "c")],
        ] {
            assert!(matches!(Conversation::from_messages(&t, true, &bad, 64), Err(ConversationError::BadMessages(_))), "{bad:?}");
        }
        assert!(Conversation::from_messages(&t, false, &[m("system", "S"), m("user", "a")], 64).is_err());
    }
}
