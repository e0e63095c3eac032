//! A CUPTI window-summary frame as the agent receives it from an injection library: any bytes
//! must decode to a summary or a clear error, and a decoded summary re-encodes to the same bytes
//! (the format is canonical). The same bytes as a window request (what the library reads from
//! the agent): a request or an error, and a decoded request re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(summary) = gpuscope_cupti::decode(data) {
        let again = gpuscope_cupti::encode(&summary).expect("a decoded summary is within the limits");
        assert_eq!(again, data, "decode then encode must give the same bytes");
    }
    if let Ok(window_ns) = gpuscope_cupti::decode_request(data) {
        let again = gpuscope_cupti::encode_request(window_ns).expect("a decoded request is within the range");
        assert_eq!(again.as_slice(), data, "decode then encode must give the same bytes");
    }
    // The stream path: header first, then the payload it announces.
    if let Some(header) = data.get(..gpuscope_cupti::wire::HEADER_BYTES)
        && let Ok(header) = gpuscope_cupti::wire::Header::parse(header.try_into().expect("12 bytes"))
        && let Some(payload) = data.get(gpuscope_cupti::wire::HEADER_BYTES..)
    {
        let _ = gpuscope_cupti::wire::decode_payload(&payload[..header.payload_len.min(payload.len())]);
    }
});
