//! Chat templates: the prompt format an instruct model was trained on.
//!
//! GGUF files carry the Hugging Face Jinja template in `tokenizer.chat_template`.
//! There is no Jinja engine here (nor should there be in a kernel): the
//! template is *recognized* as one of the known families and rendered by hand,
//! as llama.cpp's built-in templates do. A template that is not recognized is
//! an error naming it, never a silent guess.
//!
//! - **ChatML** (SmolLM2, Qwen, ...): `<|im_start|>{role}\n{content}<|im_end|>\n`
//!   per message, then `<|im_start|>assistant\n` to prompt a reply. If the
//!   template inserts a fixed system message when the conversation has none
//!   (SmolLM2's "You are a helpful AI assistant named SmolLM, trained by
//!   Hugging Face"), that literal is extracted from the template and inserted
//!   the same way.
//! - **Llama 3**: `<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>`
//!   with the content trimmed, then `<|start_header_id|>assistant<|end_header_id|>\n\n`
//!   (BOS comes from the tokenizer's add-BOS rule, as in llama.cpp).

use alloc::string::String;
use core::fmt;

/// One turn of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChatMessage<'a> {
    /// `system`, `user` or `assistant`.
    pub role: &'a str,
    pub content: &'a str,
}

/// A recognized chat template family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatTemplate {
    ChatMl {
        /// System message the template adds when the first message is not a
        /// system message.
        default_system: Option<String>,
    },
    Llama3,
    /// Gemma (2, 3): `<start_of_turn>user\n…<end_of_turn>\n`, the assistant
    /// called `model`, a system message merged into the first user turn
    /// (llama.cpp's built-in `gemma` template).
    Gemma,
    /// No template (a base model): plain-text completion framing,
    /// `Question: …\nAnswer:` (a system message first, as a paragraph).
    Completion,
}

/// Why a chat prompt cannot be rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatTemplateError {
    /// The model has no `tokenizer.chat_template` (a base model, not an
    /// instruct model).
    Missing,
    /// A template of a family this engine does not render.
    Unsupported { excerpt: String },
}

impl fmt::Display for ChatTemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str(
                "the model has no chat template (tokenizer.chat_template is absent): it is probably a base model; \
                 prompt it with plain text instead",
            ),
            Self::Unsupported { excerpt } => write!(
                f,
                "unsupported chat template (supported: ChatML, Llama 3, Gemma); it begins: {excerpt:?}"
            ),
        }
    }
}

impl core::error::Error for ChatTemplateError {}

impl ChatTemplate {
    /// Recognizes the family of the Jinja template `source`.
    pub fn detect(source: &str) -> Result<Self, ChatTemplateError> {
        if source.contains("<|im_start|>") && source.contains("<|im_end|>") {
            return Ok(Self::ChatMl { default_system: chatml_default_system(source) });
        }
        if source.contains("<|start_header_id|>") && source.contains("<|end_header_id|>") && source.contains("<|eot_id|>") {
            return Ok(Self::Llama3);
        }
        if source.contains("<start_of_turn>") && source.contains("<end_of_turn>") {
            return Ok(Self::Gemma);
        }
        let excerpt: String = source.chars().take(80).collect();
        Err(ChatTemplateError::Unsupported { excerpt })
    }

    /// Short name of the family.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ChatMl { .. } => "chatml",
            Self::Llama3 => "llama3",
            Self::Gemma => "gemma",
            Self::Completion => "completion",
        }
    }

    /// Renders `messages` as the prompt text (special tokens written as text,
    /// to be encoded with `parse_special`). With `add_generation_prompt`, ends
    /// with the header that asks the model for the assistant's reply.
    pub fn render(&self, messages: &[ChatMessage<'_>], add_generation_prompt: bool) -> String {
        let mut out = String::new();
        match self {
            Self::ChatMl { default_system } => {
                let has_system = messages.first().is_some_and(|m| m.role == "system");
                if let (false, Some(system)) = (has_system, default_system) {
                    push_chatml(&mut out, "system", system);
                }
                for m in messages {
                    push_chatml(&mut out, m.role, m.content);
                }
                if add_generation_prompt {
                    out.push_str("<|im_start|>assistant\n");
                }
            }
            Self::Llama3 => {
                for m in messages {
                    out.push_str("<|start_header_id|>");
                    out.push_str(m.role);
                    out.push_str("<|end_header_id|>\n\n");
                    out.push_str(m.content.trim());
                    out.push_str("<|eot_id|>");
                }
                if add_generation_prompt {
                    out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
                }
            }
            Self::Gemma => {
                let mut system = String::new();
                for m in messages {
                    if m.role == "system" {
                        system.push_str(m.content.trim());
                        continue;
                    }
                    let role = if m.role == "assistant" { "model" } else { m.role };
                    out.push_str("<start_of_turn>");
                    out.push_str(role);
                    out.push('\n');
                    if !system.is_empty() && role != "model" {
                        out.push_str(&system);
                        out.push_str("\n\n");
                        system.clear();
                    }
                    out.push_str(m.content.trim());
                    out.push_str("<end_of_turn>\n");
                }
                if add_generation_prompt {
                    out.push_str("<start_of_turn>model\n");
                }
            }
            Self::Completion => {
                let mut answered = true;
                for m in messages {
                    match m.role {
                        "system" => {
                            out.push_str(m.content.trim());
                            out.push_str("\n\n");
                        }
                        "assistant" => {
                            out.push_str("Answer: ");
                            out.push_str(m.content.trim());
                            out.push('\n');
                            answered = true;
                        }
                        _ => {
                            out.push_str("Question: ");
                            out.push_str(m.content.trim());
                            out.push('\n');
                            answered = false;
                        }
                    }
                }
                if add_generation_prompt || !answered {
                    out.push_str("Answer:");
                }
            }
        }
        out
    }
}

fn push_chatml(out: &mut String, role: &str, content: &str) {
    out.push_str("<|im_start|>");
    out.push_str(role);
    out.push('\n');
    out.push_str(content);
    out.push_str("<|im_end|>\n");
}

/// Finds the literal system message a ChatML template inserts when
/// `messages[0]['role'] != 'system'`: the text between `<|im_start|>system`
/// plus a newline and `<|im_end|>` that follows that condition, provided it is
/// a plain string literal (no Jinja expressions inside).
fn chatml_default_system(source: &str) -> Option<String> {
    let cond = ["!= 'system'", "!= \"system\""].iter().filter_map(|c| source.find(c)).min()?;
    let rest = &source[cond..];
    let open = "<|im_start|>system";
    let body = &rest[rest.find(open)? + open.len()..];
    let body = body.strip_prefix('\n').or_else(|| body.strip_prefix("\\n"))?;
    let text = &body[..body.find("<|im_end|>")?];
    if text.contains("{{") || text.contains("{%") || text.contains('\'') || text.contains('"') {
        return None;
    }
    Some(text.replace("\\n", "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn smollm2_template_is_chatml_with_its_default_system_message() {
        let t = ChatTemplate::detect(SMOLLM2).unwrap();
        assert_eq!(
            t,
            ChatTemplate::ChatMl {
                default_system: Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face".into())
            }
        );
        let user = [ChatMessage { role: "user", content: "What is 2+2?" }];
        assert_eq!(
            t.render(&user, true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
        );
        let with_system = [ChatMessage { role: "system", content: "Be brief." }, user[0]];
        assert_eq!(
            t.render(&with_system, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        );
    }

    #[test]
    fn plain_chatml_has_no_default_system() {
        let src = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
        assert_eq!(ChatTemplate::detect(src).unwrap(), ChatTemplate::ChatMl { default_system: None });
    }

    #[test]
    fn gemma_template_as_llama_cpp_renders_it() {
        // The start of Gemma 3's own template (its metadata has the whole Jinja source).
        let src = "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}...{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}";
        let t = ChatTemplate::detect(src).unwrap();
        assert_eq!(t, ChatTemplate::Gemma);
        let user = ChatMessage { role: "user", content: "Why is the sky blue?" };
        // The golden case `chat-sky` of testdata/gemma3-270m.
        assert_eq!(t.render(&[user], true), "<start_of_turn>user\nWhy is the sky blue?<end_of_turn>\n<start_of_turn>model\n");
        let convo = [
            ChatMessage { role: "system", content: " Be brief. " },
            user,
            ChatMessage { role: "assistant", content: "Rayleigh scattering." },
            ChatMessage { role: "user", content: "Why?" },
        ];
        assert_eq!(
            t.render(&convo, false),
            "<start_of_turn>user\nBe brief.\n\nWhy is the sky blue?<end_of_turn>\n<start_of_turn>model\nRayleigh scattering.<end_of_turn>\n\
             <start_of_turn>user\nWhy?<end_of_turn>\n"
        );
    }

    #[test]
    fn completion_framing_for_base_models() {
        let t = ChatTemplate::Completion;
        let user = ChatMessage { role: "user", content: "Why is the sky blue?" };
        // The golden case `qa-sky` of testdata/gemma3-270m.
        assert_eq!(t.render(&[user], true), "Question: Why is the sky blue?\nAnswer:");
        let convo = [ChatMessage { role: "system", content: "Be brief." }, user, ChatMessage { role: "assistant", content: "Scattering." }, ChatMessage { role: "user", content: "Why?" }];
        assert_eq!(t.render(&convo, true), "Be brief.\n\nQuestion: Why is the sky blue?\nAnswer: Scattering.\nQuestion: Why?\nAnswer:");
        assert_eq!(t.name(), "completion");
    }

    #[test]
    fn llama3_and_unknown_templates() {
        let src = "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}";
        let t = ChatTemplate::detect(src).unwrap();
        assert_eq!(
            t.render(&[ChatMessage { role: "user", content: " hi " }], true),
            "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
        let err = ChatTemplate::detect("{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}").unwrap_err();
        assert!(matches!(err, ChatTemplateError::Unsupported { .. }));
        assert!(alloc::format!("{err}").contains("unsupported chat template"));
    }
}
