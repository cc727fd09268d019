//! Unit tests of the GGUF reader on files built in memory.

use super::*;
use super::builder::GgufBuilder;
use alloc::vec;

fn sample() -> Vec<u8> {
    let mut b = GgufBuilder::new(3);
    b.kv_str("general.architecture", "llama");
    b.kv_u32("llama.block_count", 2);
    b.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    b.kv_bool("tokenizer.ggml.add_bos_token", false);
    b.kv_str_array("tokenizer.ggml.tokens", &["a", "bc", "<|im_start|>"]);
    b.kv_f32_array("tokenizer.ggml.scores", &[0.5, -1.0, 2.0]);
    b.kv_i32_array("tokenizer.ggml.token_type", &[1, 1, 3]);
    b.tensor_f32("norm.weight", &[4], &[1.0, 2.0, 3.0, 4.0]);
    b.tensor_raw("w.weight", &[32, 2], GgmlType::Q8_0, &[7u8; 68]);
    b.finish()
}

#[test]
fn parses_metadata_and_tensors() {
    let bytes = sample();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.get_str("general.architecture"), Some("llama"));
    assert_eq!(g.get_u32("llama.block_count"), Some(2));
    assert_eq!(g.get_f32("llama.attention.layer_norm_rms_epsilon"), Some(1e-5));
    assert_eq!(g.get_bool("tokenizer.ggml.add_bos_token"), Some(false));
    let toks = g.get_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(toks.len(), 3);
    let v: Vec<&[u8]> = toks.strings().unwrap().collect();
    assert_eq!(v, vec![&b"a"[..], b"bc", b"<|im_start|>"]);
    let scores: Vec<f32> = g.get_array("tokenizer.ggml.scores").unwrap().f32s().unwrap().collect();
    assert_eq!(scores, vec![0.5, -1.0, 2.0]);
    let types: Vec<i32> = g.get_array("tokenizer.ggml.token_type").unwrap().i32s().unwrap().collect();
    assert_eq!(types, vec![1, 1, 3]);
    assert_eq!(g.get_array("tokenizer.ggml.token_type").unwrap().get(2), Some(MetaValue::I32(3)));
    assert!(toks.f32s().is_none());

    let n = g.tensor("norm.weight").unwrap();
    assert_eq!(n.shape(), &[4]);
    assert_eq!(n.ty, GgmlType::F32);
    assert_eq!(g.tensor_bytes(n).unwrap(), &[0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64]);
    let w = g.tensor("w.weight").unwrap();
    assert_eq!((w.row_len(), w.rows(), w.size), (32, 2, 68));
    assert_eq!(g.data_offset() % 32, 0);
    assert_eq!(g.tensor_range(w).start % 32, 0);
    assert!(g.tensor("nope").is_none());
    assert!(matches!(g.req_tensor("nope"), Err(GgufError::MissingTensor { .. })));
}

#[test]
fn typed_getters_accept_fitting_ints_and_reject_wrong_types() {
    let mut b = GgufBuilder::new(3);
    b.kv_u64("a", 7);
    b.kv_i32("neg", -1);
    b.kv_str("s", "x");
    let bytes = b.finish();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.get_u32("a"), Some(7));
    assert_eq!(g.get_u32("neg"), None);
    assert!(matches!(g.opt_u32("neg"), Err(GgufError::BadMetadata { .. })));
    assert!(matches!(g.opt_u32("s"), Err(GgufError::BadMetadata { .. })));
    assert_eq!(g.opt_u32("absent"), Ok(None));
    assert!(matches!(g.req_u32("absent"), Err(GgufError::MissingKey { .. })));
}

#[test]
fn version_2_is_read() {
    let mut b = GgufBuilder::new(2);
    b.kv_u32("k", 1);
    let bytes = b.finish();
    assert_eq!(Gguf::parse(&bytes).unwrap().version(), 2);
}

#[test]
fn header_errors_are_typed() {
    let good = sample();
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    assert!(matches!(Gguf::parse(&bad_magic), Err(GgufError::BadMagic { .. })));
    let mut v1 = good.clone();
    v1[4] = 1;
    assert!(matches!(Gguf::parse(&v1), Err(GgufError::UnsupportedVersion { version: 1 })));
    let mut many = good.clone();
    many[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(Gguf::parse(&many), Err(GgufError::AbsurdCount { what: "tensor count", .. })));
    let mut many_kv = good.clone();
    many_kv[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(Gguf::parse(&many_kv), Err(GgufError::AbsurdCount { .. })));
    assert!(matches!(Gguf::parse(&good[..3]), Err(GgufError::Truncated { .. })));
    assert!(matches!(Gguf::parse(&[]), Err(GgufError::Truncated { .. })));
}

#[test]
fn every_truncation_is_an_error_and_prefixes_ask_for_more() {
    let good = sample();
    let g = Gguf::parse(&good).unwrap();
    let header_len = g.header_len() as usize;
    for cut in 0..good.len() {
        let r = Gguf::parse(&good[..cut]);
        assert!(r.is_err(), "cut at {cut} parsed");
        // As a prefix of the real file: NeedMore inside the header, OK after it.
        match Gguf::parse_header(&good[..cut], good.len() as u64) {
            Err(GgufError::NeedMore { bytes }) => {
                assert!(cut < header_len);
                assert!(bytes > cut as u64 && bytes <= good.len() as u64);
            }
            Ok(h) => {
                assert!(cut >= header_len, "cut {cut}");
                assert_eq!(h.tensors().len(), 2);
                assert_eq!(h.tensor_bytes(&h.tensors()[0]).is_some(), cut as u64 >= h.tensor_range(&h.tensors()[0]).end);
            }
            Err(e) => panic!("cut {cut}: {e}"),
        }
    }
}

#[test]
fn need_more_converges() {
    let good = sample();
    let mut len = 16usize;
    let mut rounds = 0;
    loop {
        match Gguf::parse_header(&good[..len], good.len() as u64) {
            Ok(_) => break,
            Err(GgufError::NeedMore { bytes }) => len = bytes as usize,
            Err(e) => panic!("{e}"),
        }
        rounds += 1;
        assert!(rounds < 64);
    }
}

#[test]
fn tensor_errors_are_typed() {
    let build = |dims: &[u64], ty: u32, offset_bump: u64, data: usize| {
        let mut b = GgufBuilder::new(3);
        b.tensor_custom("t", dims, ty, offset_bump, &vec![0u8; data]);
        b.finish()
    };
    assert!(Gguf::parse(&build(&[4], 0, 0, 16)).is_ok());
    assert!(matches!(Gguf::parse(&build(&[4], 12345, 0, 16)), Err(GgufError::UnknownTensorType { id: 12345, .. })));
    assert!(matches!(Gguf::parse(&build(&[0], 0, 0, 16)), Err(GgufError::BadTensorShape { .. })));
    assert!(matches!(Gguf::parse(&build(&[33], 2, 0, 64)), Err(GgufError::RaggedTensorRow { row: 33, .. })));
    assert!(matches!(Gguf::parse(&build(&[1 << 40, 1 << 40], 0, 0, 16)), Err(GgufError::BadTensorShape { .. })));
    assert!(matches!(Gguf::parse(&build(&[8], 0, 0, 16)), Err(GgufError::TensorOutOfBounds { .. })));
    assert!(matches!(Gguf::parse(&build(&[4], 0, 4, 16)), Err(GgufError::MisalignedTensor { .. })));
    assert!(matches!(Gguf::parse(&build(&[4], 0, 1 << 62, 16)), Err(GgufError::TensorOutOfBounds { .. })));
    // An IQ type parses (tools can inspect it) but is not supported.
    let iq2 = build(&[256], GgmlType::IQ2_XS.id(), 0, 74);
    let g = Gguf::parse(&iq2).unwrap();
    let err = g.tensors()[0].check_supported().unwrap_err();
    let msg = alloc::format!("{err}");
    assert!(msg.contains("unsupported type iq2_xs in tensor t; convert with `cargo axiom pack --type"), "{msg}");
    // The K-quants, Q5_0/Q5_1, IQ4_NL and BF16 are supported.
    for (ty, bytes) in [(GgmlType::Q4_K, 144), (GgmlType::Q6_K, 210), (GgmlType::Q2_K, 84), (GgmlType::Q5_0, 8 * 22), (GgmlType::BF16, 512)] {
        let file = build(&[256], ty.id(), 0, bytes);
        let g = Gguf::parse(&file).unwrap();
        g.tensors()[0].check_supported().unwrap();
    }
}

/// K-quant tensors that do not fit their super-blocks: a row length that is
/// not a multiple of 256, and data that ends inside the last super-block.
#[test]
fn bad_k_quant_tensors_are_clear_errors() {
    let build = |dims: &[u64], ty: u32, data: usize| {
        let mut b = GgufBuilder::new(3);
        b.tensor_custom("t", dims, ty, 0, &vec![0u8; data]);
        b.finish()
    };
    for (ty, bytes) in [(GgmlType::Q4_K, 144), (GgmlType::Q5_K, 176), (GgmlType::Q6_K, 210), (GgmlType::Q3_K, 110), (GgmlType::Q2_K, 84)] {
        // 576 columns (SmolLM2's width) is 2.25 super-blocks.
        let err = Gguf::parse(&build(&[576, 2], ty.id(), 4 * bytes)).unwrap_err();
        assert!(matches!(err, GgufError::RaggedTensorRow { row: 576, .. }), "{ty}: {err:?}");
        let msg = alloc::format!("{err}");
        assert!(msg.contains(&alloc::format!("rows of 576 elements, which is not a whole number of {ty} blocks of 256")), "{ty}: {msg}");
        // Two rows of 512 need 4 super-blocks; the file ends one byte into the last.
        let err = Gguf::parse(&build(&[512, 2], ty.id(), 3 * bytes + 1)).unwrap_err();
        assert!(matches!(err, GgufError::TensorOutOfBounds { .. }), "{ty}: {err:?}");
        let msg = alloc::format!("{err}");
        assert!(msg.starts_with("truncated GGUF file: tensor \"t\" occupies bytes"), "{ty}: {msg}");
    }
}

#[test]
fn duplicates_and_overlaps_are_rejected() {
    let mut b = GgufBuilder::new(3);
    b.kv_u32("k", 1);
    b.kv_u32("k", 2);
    assert!(matches!(Gguf::parse(&b.finish()), Err(GgufError::DuplicateKey { .. })));
    let mut b = GgufBuilder::new(3);
    b.tensor_f32("t", &[4], &[0.0; 4]);
    b.tensor_f32("t", &[4], &[0.0; 4]);
    assert!(matches!(Gguf::parse(&b.finish()), Err(GgufError::DuplicateTensor { .. })));
    let mut b = GgufBuilder::new(3);
    b.tensor_f32("a", &[16], &[0.0; 16]);
    b.tensor_custom("b", &[4], 0, u64::MAX, &[]); // placed at offset 0: overlaps "a"
    assert!(matches!(Gguf::parse(&b.finish()), Err(GgufError::TensorOverlap { .. })));
}

#[test]
fn metadata_errors_are_typed() {
    let mut b = GgufBuilder::new(3);
    b.kv_raw("k", 99, &[]);
    assert!(matches!(Gguf::parse(&b.finish()), Err(GgufError::UnknownValueType { id: 99, .. })));
    let mut b = GgufBuilder::new(3);
    // array of arrays
    b.kv_raw("k", 9, &[9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(matches!(Gguf::parse(&b.finish()), Err(GgufError::NestedArray { .. })));
    let mut b = GgufBuilder::new(3);
    let mut raw = vec![4u8, 0, 0, 0];
    raw.extend_from_slice(&(1u64 << 60).to_le_bytes());
    b.kv_raw("k", 9, &raw);
    assert!(matches!(Gguf::parse(&b.finish()), Err(GgufError::AbsurdCount { .. })));
    let mut b = GgufBuilder::new(3);
    b.kv_u32("general.alignment", 24);
    assert!(matches!(Gguf::parse(&b.finish()), Err(GgufError::BadAlignment { value: 24 })));
    let mut b = GgufBuilder::new(3);
    b.kv_raw("k", 8, &[0xff, 0, 0, 0, 0, 0, 0, 0x7f]);
    assert!(matches!(Gguf::parse(&b.finish()), Err(GgufError::Truncated { .. })));
    // invalid UTF-8 key
    let mut bytes = GgufBuilder::new(3);
    bytes.kv_u32("ab", 1);
    let mut bytes = bytes.finish();
    let at = 24 + 8;
    bytes[at] = 0xff;
    assert!(matches!(Gguf::parse(&bytes), Err(GgufError::InvalidUtf8 { .. })));
}

#[test]
fn custom_alignment_is_honoured() {
    let mut b = GgufBuilder::new(3);
    b.set_alignment(4096);
    b.tensor_f32("a", &[3], &[1.0, 2.0, 3.0]);
    b.tensor_f32("b", &[3], &[4.0, 5.0, 6.0]);
    let bytes = b.finish();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.alignment(), 4096);
    assert_eq!(g.data_offset(), 4096);
    assert_eq!(g.tensor("b").unwrap().offset, 4096);
    assert_eq!(g.tensor_bytes(g.tensor("b").unwrap()).unwrap()[..4], 4.0f32.to_le_bytes());
}

#[test]
fn error_messages_are_clear() {
    let e = GgufError::Truncated { what: "tensor info", at: 10, needed: 20, file_size: 25 };
    assert_eq!(alloc::format!("{e}"), "truncated GGUF file: tensor info at byte 10 needs 20 bytes, but the file ends at byte 25");
    let e = GgufError::BadMagic { found: *b"GGJT" };
    assert!(alloc::format!("{e}").contains("old pre-GGUF"));
}
