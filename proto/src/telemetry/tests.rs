use super::events::*;
use super::*;
use crate::json::FixedBuf;
use std::string::String;

fn line<E: Event>(e: &E) -> String {
    let mut buf = FixedBuf::<MAX_EVENT>::new();
    write_event(e, &mut buf).unwrap();
    String::from(buf.as_str())
}

#[test]
fn events_write_their_fields_in_order_with_their_precision() {
    let t = Token { i: 3, id: 7042, text: " Paris\n\"x\"".into(), us: 474_221 };
    assert_eq!(line(&t), r#"@token {"i":3,"id":7042,"text":" Paris\n\"x\"","us":474221}"#);
    let l = Load { mode: "resident".into(), layers: 30, bytes: 96_808_960, ms: 1738.44, mib_per_s: 53.123, verified: 31 };
    assert_eq!(line(&l), r#"@load {"mode":"resident","layers":30,"bytes":96808960,"ms":1738.4,"mib_per_s":53.1,"verified":31}"#);
}

#[test]
fn absent_options_are_left_out_and_hex_is_a_string() {
    let e = Error { cpu: Some(1), rip: Some(Hex(0xffff_8000_0010_0000)), cr2: Some(Hex(0x7f00_dead_0000)), ..Error::msg("boom") };
    assert_eq!(line(&e), r#"@error {"msg":"boom","cpu":1,"rip":"0xffff800000100000","cr2":"0x7f00dead0000"}"#);
    let r = NvmeRead {
        bytes: 512,
        crc32c: Some(Crc32c(0xab)),
        mib_per_s: 1.25,
        queue_depth: 1,
        max_in_flight: 1,
        xfer_bytes: 512,
        buffer_bytes: 4096,
        requests: 1,
        commands: 1,
        doorbells: 1,
        elapsed_ms: 0.5,
        busy_fraction: 0.25,
        driver_busy_fraction: 0.125,
    };
    assert!(line(&r).contains(r#""crc32c":"000000ab","mib_per_s":1.2,"#), "{}", line(&r));
}

#[test]
fn nested_objects_and_lists() {
    let ids = [1u32, 2, 3];
    let p = Prompt { answer: 0, tokens: 3, max_new: 16, chat: false, text: "Hi".into(), ids: Some(ids[..].into()) };
    assert_eq!(line(&p), r#"@prompt {"answer":0,"tokens":3,"max_new":16,"chat":false,"text":"Hi","ids":[1,2,3]}"#);
    let shares = [CoreShare { cpu: 0, stream_wait: 0.0, attn: 12.345, ffn: 20.0, barrier: 1.0 }];
    let s = Summary {
        mode: "resident".into(),
        compute_cores: 1,
        io_core: false,
        io_core_idle: true,
        layers: "repacked".into(),
        prompt_tokens: 5,
        generated: 2,
        stop: "limit".into(),
        ttft_ms: 474.22,
        prefill_ms: 400.0,
        prefill_tok_s: 12.5,
        decode_tok_s: 2.25,
        decode_ms_median: None,
        decode_ms_min: None,
        decode_ms_max: None,
        stream_wait_frac: 0.0,
        attn_frac: 0.4,
        ffn_frac: 0.5,
        barrier_frac: 0.1,
        bytes_per_token: 0,
        io_mib_per_s: 0.0,
        per_core_ms_per_token: shares[..].into(),
        text: " Paris.".into(),
    };
    let text = line(&s);
    assert!(text.contains(r#""ttft_ms":474.2,"#) && text.contains(r#""per_core_ms_per_token":[{"cpu":0,"stream_wait":0.00,"attn":12.35,"ffn":20.00,"barrier":1.00}]"#), "{text}");
    assert!(!text.contains("decode_ms_median"));
}

#[cfg(feature = "serde")]
mod read_back {
    use super::*;
    use std::string::ToString;

    fn json<E: Event>(e: &E) -> String {
        let l = line(e);
        String::from(l.split_once(' ').unwrap().1)
    }

    #[test]
    fn the_host_reads_what_the_kernel_writes() {
        let unanswered = [Unanswered { apic_id: 2, stage: "real mode".into() }];
        let b = Boot {
            cpus_found: 4,
            cpus_online: 3,
            cpus_disabled: 0,
            cpus_unanswered: 1,
            unanswered: Some(unanswered[..].into()),
            apic: "x2apic".into(),
            tsc_mhz: 2995.1,
            tsc_source: "hpet".into(),
            tsc_invariant: true,
            boot: "multiboot1".into(),
            acpi: true,
            rsdp: None,
            mem_usable_mib: 1023,
            mem_free_mib: 900,
            heap_mib: 64,
            largest_free_mib: 800,
            avx: true,
            avx2: true,
            fma: true,
            avx512f: false,
            xcr0: Hex(0x7),
            framebuffer: Some(Framebuffer { width: 640, height: 480, bpp: 32 }),
            cmdline: "selftest=smp rounds=500".into(),
        };
        let back: Boot = serde_json::from_str(&json(&b)).unwrap();
        assert_eq!(back, b);
        let e = Error { kind: Some("exception".into()), vector: Some(14), cr2: Some(Hex(0x7f00_dead_0000)), ..Error::msg("CPU 1: page fault") };
        assert_eq!(serde_json::from_str::<Error>(&json(&e)).unwrap(), e);
        let r = NvmeRead {
            bytes: 38_797_824,
            crc32c: Some(Crc32c(0xdead_beef)),
            mib_per_s: 100.0,
            queue_depth: 1023,
            max_in_flight: 32,
            xfer_bytes: 4096,
            buffer_bytes: 1 << 20,
            requests: 10,
            commands: 100,
            doorbells: 5,
            elapsed_ms: 12.5,
            busy_fraction: 0.5,
            driver_busy_fraction: 0.25,
        };
        assert_eq!(serde_json::from_str::<NvmeRead>(&json(&r)).unwrap(), r);
    }

    #[test]
    fn unknown_fields_are_ignored_and_missing_ones_refused() {
        let newer = r#"{"i":0,"id":5,"text":" Paris","us":1,"logprob":-0.25}"#;
        let t: Token = serde_json::from_str(newer).unwrap();
        assert_eq!((t.i, t.id, t.text.as_ref(), t.us), (0, 5, " Paris", 1));
        let older = r#"{"i":0,"id":5,"us":1}"#;
        let e = serde_json::from_str::<Token>(older).unwrap_err().to_string();
        assert!(e.contains("missing field `text`"), "{e}");
        assert!(serde_json::from_str::<Error>(r#"{"msg":"x","rip":"123"}"#).is_err(), "hex needs its 0x");
    }

    #[test]
    fn check_accepts_any_schema_of_the_name() {
        let smp = serde_json::json!({"test":"smp","cpus":2,"rounds":5,"counter_ok":true,"counter_errors":0,
            "round_trip_ns":{"min":1,"median":2,"p99":3,"max":4,"mean":2},"spin_us":50,"park":"hlt","elapsed_ms":3});
        assert!(matches!(check("summary", || &smp), Some(Ok(()))), "the self-test's @summary");
        let broken = serde_json::json!({"test":"smp"});
        assert!(matches!(check("summary", || &broken), Some(Err(_))));
        assert!(check("future_event", || &broken).is_none(), "unknown events are not judged");
        let token = serde_json::json!({"i":0,"id":1,"text":"x","us":2});
        assert!(matches!(check("token", || &token), Some(Ok(()))));
    }
}
