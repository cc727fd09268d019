// llama.cpp's reference outputs for the engine's golden tests. Built and run by
// make-goldens.sh (next to this file) against the static llama.cpp build of
// benchmarks/engine/build-llama.sh; see that script for the file formats.
//
//   goldens tokenize MODEL INP            llama.cpp's tokenizer test strings (INP, cases separated by
//                                         "\n__ggml_vocab_test__\n") -> the `.out` format on stdout:
//                                         one line per case, " id id id" (add_special=false, parse_special=false)
//   goldens count MODEL FILE              number of tokens of FILE as llama-perplexity tokenizes it
//                                         (add_special=true, parse_special=false)
//   goldens run MODEL CASES N_PREDICT HEADER
//                                         CASES: JSON [{"name","prompt"}]; HEADER: a JSON object whose
//                                         fields start the output; -> goldens JSON on stdout
//
// The model is evaluated with an F16 KV cache, flash attention off and n_batch = n_ubatch = 512,
// n_ctx 512 (llama-cpp-python's defaults, which made the first SmolLM2 goldens; llama.cpp's own
// "auto" turns flash attention on for the CPU, which moves SmolLM2's logits by up to 0.5), the
// prompt tokenized with add_special=true (BOS only if the model's metadata asks for it) and
// parse_special=true.
//
// Each teacher-forced position also gets `spread`: how far llama.cpp's own variants move the five
// listed logits (the same batch with flash attention on, and, along the greedy continuation, the
// one-token-at-a-time evaluation of the greedy run): the disagreement a test should tolerate.
#include "llama.h"
#include "nlohmann/json.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

using json = nlohmann::ordered_json;

namespace {

constexpr int TOP_K = 5;
// Top-1 minus top-2 logit at or below this is a near-tie, where engines may legitimately differ.
constexpr float NEAR_TIE = 0.5f;

[[noreturn]] void die(const std::string &msg) {
    fprintf(stderr, "goldens: %s\n", msg.c_str());
    exit(1);
}

void quiet_log(ggml_log_level level, const char *text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

llama_model *load(const std::string &path, bool vocab_only) {
    llama_model_params mp = llama_model_default_params();
    mp.vocab_only = vocab_only;
    llama_model *model = llama_model_load_from_file(path.c_str(), mp);
    if (!model) die("cannot load " + path);
    return model;
}

std::vector<llama_token> tokenize(const llama_vocab *vocab, const std::string &text, bool add_special,
                                  bool parse_special) {
    int n = -llama_tokenize(vocab, text.data(), (int32_t)text.size(), nullptr, 0, add_special, parse_special);
    std::vector<llama_token> ids(std::max(n, 0));
    if (n > 0 && llama_tokenize(vocab, text.data(), (int32_t)text.size(), ids.data(), n, add_special,
                                parse_special) != n)
        die("tokenization failed");
    return ids;
}

std::string detokenize(const llama_vocab *vocab, const std::vector<llama_token> &ids) {
    std::string out(ids.size() * 16 + 16, '\0');
    int n = llama_detokenize(vocab, ids.data(), (int32_t)ids.size(), out.data(), (int32_t)out.size(), false, true);
    if (n < 0) {
        out.resize(-n);
        n = llama_detokenize(vocab, ids.data(), (int32_t)ids.size(), out.data(), (int32_t)out.size(), false, true);
    }
    out.resize(std::max(n, 0));
    return out;
}

int cmd_tokenize(const std::string &model_path, const std::string &inp_path) {
    std::ifstream f(inp_path, std::ios::binary);
    if (!f) die("cannot read " + inp_path);
    std::string raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    // The same split as llama.cpp's tests/test-tokenizer-0.cpp.
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> cases;
    for (size_t pos = 0; pos < raw.size();) {
        size_t next = raw.find(sep, pos);
        if (next == std::string::npos) {
            cases.push_back(raw.substr(pos));
            break;
        }
        cases.push_back(raw.substr(pos, next - pos));
        pos = next + sep.size();
    }
    llama_model *model = load(model_path, true);
    const llama_vocab *vocab = llama_model_get_vocab(model);
    for (const std::string &text : cases) {
        for (llama_token id : tokenize(vocab, text, false, false)) printf(" %d", id);
        printf("\n");
    }
    llama_model_free(model);
    return 0;
}

// Feeds `ids` starting at position `pos0` (sequence 0) in one batch; logits for all of them if `all`,
// else for the last one.
void decode(llama_context *ctx, const std::vector<llama_token> &ids, int pos0, bool all) {
    llama_batch batch = llama_batch_init((int32_t)ids.size(), 0, 1);
    for (size_t i = 0; i < ids.size(); i++) {
        batch.token[i] = ids[i];
        batch.pos[i] = pos0 + (int)i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = all || i + 1 == ids.size();
    }
    batch.n_tokens = (int32_t)ids.size();
    if (llama_decode(ctx, batch) != 0) die("llama_decode failed");
    llama_batch_free(batch);
}

// First index of the largest logit (llama.cpp's greedy sampler breaks ties the same way).
llama_token argmax(const float *logits, int n_vocab) {
    return (llama_token)(std::max_element(logits, logits + n_vocab) - logits);
}

// The TOP_K largest logits' ids, largest first (ties: lower id first).
std::vector<int> top_ids(const float *logits, int n_vocab) {
    std::vector<int> idx(n_vocab);
    for (int i = 0; i < n_vocab; i++) idx[i] = i;
    std::partial_sort(idx.begin(), idx.begin() + TOP_K, idx.end(), [&](int a, int b) {
        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    idx.resize(TOP_K);
    return idx;
}

double round4(double x) { return std::round(x * 1e4) / 1e4; }

int cmd_count(const std::string &model_path, const std::string &file_path) {
    std::ifstream f(file_path, std::ios::binary);
    if (!f) die("cannot read " + file_path);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    llama_model *model = load(model_path, true);
    printf("%zu\n", tokenize(llama_model_get_vocab(model), text, true, false).size());
    llama_model_free(model);
    return 0;
}

int cmd_run(const std::string &model_path, const std::string &cases_path, int n_predict, const std::string &header) {
    std::ifstream f(cases_path);
    if (!f) die("cannot read " + cases_path);
    json cases_in = json::parse(f);

    llama_model *model = load(model_path, false);
    const llama_vocab *vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = cp.type_v = GGML_TYPE_F16;
    cp.n_threads = cp.n_threads_batch = (int32_t)std::max(1u, std::thread::hardware_concurrency());
    llama_context *ctx = llama_init_from_model(model, cp);
    // The same with flash attention: one of the variants that measure llama.cpp's own spread.
    llama_context_params cp_fa = cp;
    cp_fa.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    llama_context *ctx_fa = llama_init_from_model(model, cp_fa);
    if (!ctx || !ctx_fa) die("cannot create a context");

    json cases = json::array();
    for (const json &c : cases_in) {
        const std::string prompt = c.at("prompt").get<std::string>();
        const std::vector<llama_token> prompt_ids = tokenize(vocab, prompt, true, true);
        if (prompt_ids.empty()) die("empty prompt in case " + c.at("name").get<std::string>());

        // Greedy run: the prompt in one batch, then one token at a time.
        llama_memory_clear(llama_get_memory(ctx), true);
        decode(ctx, prompt_ids, 0, false);
        std::vector<llama_token> greedy;
        // one_token[k]: the one-token path's logits after the prompt and k + 1 greedy tokens.
        std::vector<std::vector<float>> one_token;
        while (true) {
            const float *logits = llama_get_logits_ith(ctx, -1);
            if (!greedy.empty()) one_token.emplace_back(logits, logits + n_vocab);
            llama_token next = argmax(logits, n_vocab);
            if ((int)greedy.size() == n_predict || llama_vocab_is_eog(vocab, next)) break;
            greedy.push_back(next);
            decode(ctx, {next}, (int)(prompt_ids.size() + greedy.size() - 1), false);
        }

        // Teacher forcing: prompt + continuation in one batch, logits at every position.
        std::vector<llama_token> all = prompt_ids;
        all.insert(all.end(), greedy.begin(), greedy.end());
        llama_memory_clear(llama_get_memory(ctx), true);
        decode(ctx, all, 0, true);
        llama_memory_clear(llama_get_memory(ctx_fa), true);
        decode(ctx_fa, all, 0, true);
        json forced = json::array();
        std::vector<float> margins;
        for (size_t i = 0; i < all.size(); i++) {
            const float *logits = llama_get_logits_ith(ctx, (int32_t)i);
            const float *logits_fa = llama_get_logits_ith(ctx_fa, (int32_t)i);
            const size_t step = i - prompt_ids.size();  // wraps around (no step) before the continuation
            const float *logits_one = i >= prompt_ids.size() && step < one_token.size() ? one_token[step].data() : nullptr;
            std::vector<int> ids = top_ids(logits, n_vocab);
            json values = json::array();
            double spread = 0.0;
            for (int id : ids) {
                values.push_back(round4(logits[id]));
                spread = std::max(spread, (double)std::fabs(logits_fa[id] - logits[id]));
                if (logits_one) spread = std::max(spread, (double)std::fabs(logits_one[id] - logits[id]));
            }
            forced.push_back(json{{"pos", i}, {"top_ids", ids}, {"top_logits", values}, {"spread", round4(spread)}});
            margins.push_back(logits[ids[0]] - logits[ids[1]]);
        }
        size_t confident = 0;
        while (confident < greedy.size() && margins[prompt_ids.size() - 1 + confident] > NEAR_TIE) confident++;

        json out;
        out["name"] = c.at("name");
        out["prompt"] = prompt;
        out["prompt_ids"] = prompt_ids;
        out["greedy_ids"] = greedy;
        out["greedy_text"] = detokenize(vocab, greedy);
        out["teacher_forced"] = forced;
        out["confident_tokens"] = confident;
        out["confident_text"] = detokenize(vocab, std::vector<llama_token>(greedy.begin(), greedy.begin() + confident));
        cases.push_back(out);
    }

    json settings;
    settings["n_ctx"] = llama_n_ctx(ctx);
    settings["n_batch"] = llama_n_batch(ctx);
    settings["n_ubatch"] = llama_n_ubatch(ctx);
    settings["type_k"] = ggml_type_name(cp.type_k);
    settings["type_v"] = ggml_type_name(cp.type_v);
    settings["flash_attn"] = llama_flash_attn_type_name(cp.flash_attn_type);
    settings["add_bos"] = llama_vocab_get_add_bos(vocab);
    settings["n_predict"] = n_predict;
    json doc = json::parse(header);
    doc["settings"] = settings;
    doc["cases"] = cases;
    // A text cut after a partial UTF-8 sequence gets U+FFFD in place of the bytes it lacks.
    printf("%s\n", doc.dump(1, ' ', false, json::error_handler_t::replace).c_str());
    llama_free(ctx);
    llama_free(ctx_fa);
    llama_model_free(model);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    llama_log_set(quiet_log, nullptr);
    llama_backend_init();
    std::string cmd = argc > 1 ? argv[1] : "";
    int rc;
    if (cmd == "tokenize" && argc == 4) rc = cmd_tokenize(argv[2], argv[3]);
    else if (cmd == "count" && argc == 4) rc = cmd_count(argv[2], argv[3]);
    else if (cmd == "run" && argc == 6) rc = cmd_run(argv[2], argv[3], atoi(argv[4]), argv[5]);
    else {
        fprintf(stderr, "usage: %s tokenize MODEL INP | count MODEL FILE | run MODEL CASES.json N_PREDICT HEADER_JSON\n", argv[0]);
        rc = 2;
    }
    llama_backend_free();
    return rc;
}
