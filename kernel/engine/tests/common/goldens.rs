//! llama.cpp's golden files (format: `benchmarks/engine/goldens/README.md`),
//! read one way for every golden test.

use serde_json::Value;

/// One teacher-forced position: llama.cpp's top ids and their logits, and
/// how much llama.cpp's own variants of the run move them (`spread`; 0 when
/// the file does not record it).
pub struct Position {
    pub top_ids: Vec<u32>,
    pub top_logits: Vec<f32>,
    pub spread: f32,
}

impl Position {
    /// The gap between llama.cpp's first and second logits.
    pub fn margin(&self) -> f32 {
        self.top_logits[0] - self.top_logits[1]
    }

    /// llama.cpp's top-1 is clear of its variants' disagreement: the margin
    /// exceeds `max(0.5, 2 * spread)`.
    pub fn confident(&self) -> bool {
        self.margin() > f32::max(0.5, 2.0 * self.spread)
    }
}

pub struct Case {
    pub name: String,
    /// The prompt's text, where the file records it.
    pub prompt: Option<String>,
    pub prompt_ids: Vec<u32>,
    pub greedy_ids: Vec<u32>,
    /// Greedy tokens before llama.cpp's first near-tie, where recorded.
    pub confident_tokens: Option<usize>,
    /// Per position of prompt + greedy tokens.
    pub teacher: Vec<Position>,
}

pub struct Goldens {
    /// The model file the goldens were made with (`model.file`), if named.
    pub model_file: Option<String>,
    pub cases: Vec<Case>,
}

/// Reads the golden file `rel` of the test data.
pub fn read(rel: &str) -> Goldens {
    let v: Value = serde_json::from_str(&axiom_testkit::read_testdata_string(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let ids = |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect::<Vec<_>>();
    let floats = |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect::<Vec<_>>();
    let cases = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            prompt: c["prompt"].as_str().map(str::to_string),
            prompt_ids: ids(&c["prompt_ids"]),
            greedy_ids: ids(&c["greedy_ids"]),
            confident_tokens: c["confident_tokens"].as_u64().map(|n| n as usize),
            teacher: c["teacher_forced"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| Position { top_ids: ids(&p["top_ids"]), top_logits: floats(&p["top_logits"]), spread: p["spread"].as_f64().unwrap_or(0.0) as f32 })
                .collect(),
        })
        .collect();
    Goldens { model_file: v["model"]["file"].as_str().map(str::to_string), cases }
}
