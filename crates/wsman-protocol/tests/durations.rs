//! `xs:duration` values (CIM intervals, timeouts) are written back with the precision
//! they were read with: a Get then Put/Create/Invoke does not change an interval.

use std::time::Duration;

use proptest::prelude::*;
use wsman_protocol::cim::parse_duration;
use wsman_protocol::envelope::format_duration;

/// An `xs:duration` as Windows may write one (days, hours, minutes, seconds with up to
/// seven fraction digits, each part present or not) and the value it denotes, computed
/// here with integers.
fn duration_text() -> impl Strategy<Value = (String, Duration)> {
    (
        prop::option::of(0u64..20_000_000),
        prop::option::of(0u64..100_000),
        prop::option::of(0u64..100_000),
        prop::option::of((0u64..3_000_000_000, prop::option::of("[0-9]{1,7}"))),
    )
        .prop_filter("at least one part", |(d, h, m, s)| {
            d.is_some() || h.is_some() || m.is_some() || s.is_some()
        })
        .prop_map(|(d, h, m, s)| {
            let mut text = "P".to_string();
            let mut secs = 0u64;
            let mut nanos = 0u32;
            if let Some(d) = d {
                text += &format!("{d}D");
                secs += d * 86_400;
            }
            if h.is_some() || m.is_some() || s.is_some() {
                text.push('T');
            }
            if let Some(h) = h {
                text += &format!("{h}H");
                secs += h * 3600;
            }
            if let Some(m) = m {
                text += &format!("{m}M");
                secs += m * 60;
            }
            if let Some((s, fraction)) = s {
                secs += s;
                match fraction {
                    Some(f) => {
                        text += &format!("{s}.{f}S");
                        nanos = format!("{f:0<9}").parse().unwrap();
                    }
                    None => text += &format!("{s}S"),
                }
            }
            (text, Duration::new(secs, nanos))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Parsing is exact, and what is parsed writes back as the same value: parsing
    /// the written text gives it again, with no more fraction digits than it needs.
    #[test]
    fn every_parsed_duration_writes_back_equal((text, value) in duration_text()) {
        prop_assert_eq!(parse_duration(&text), Some(value), "{}", text);
        let written = format_duration(value);
        prop_assert_eq!(parse_duration(&written), Some(value), "{} -> {}", text, written);
        let fraction = written
            .split_once('.')
            .map_or(0, |(_, f)| f.trim_end_matches('S').len());
        prop_assert!(fraction <= 7, "{} -> {}", text, written);
    }

    /// Any duration (to the nanosecond) survives writing and parsing.
    #[test]
    fn any_duration_round_trips(secs in 0u64..86_400_000_000_000_000, nanos in 0u32..1_000_000_000) {
        let value = Duration::new(secs, nanos);
        let written = format_duration(value);
        prop_assert_eq!(parse_duration(&written), Some(value), "{}", written);
    }
}

/// The newcomer trial's examples: half a millisecond was written `PT0S`, and 100 ns
/// ticks were cut to milliseconds.
#[test]
fn sub_millisecond_digits_are_written() {
    let half_ms = parse_duration("PT0.0005S").unwrap();
    assert_eq!(half_ms, Duration::from_micros(500));
    assert_eq!(format_duration(half_ms), "PT0.0005S");

    let ticks = parse_duration("P3DT0H0M5.1234567S").unwrap();
    assert_eq!(ticks, Duration::new(3 * 86_400 + 5, 123_456_700));
    assert_eq!(format_duration(ticks), "PT259205.1234567S");

    // TimeSpan.MaxValue: past i32::MAX seconds, written in days, exact.
    let max = parse_duration("P10675199DT2H48M5.4775807S").unwrap();
    assert_eq!(max, Duration::new(922_337_203_685, 477_580_700));
    assert_eq!(format_duration(max), "P10675199DT2H48M5.4775807S");

    // Whole seconds and milliseconds as before (Windows' own form).
    assert_eq!(format_duration(Duration::from_secs(60)), "PT60S");
    assert_eq!(format_duration(Duration::from_millis(20_500)), "PT20.500S");
    assert_eq!(format_duration(Duration::from_nanos(1)), "PT0.000000001S");
    assert_eq!(format_duration(Duration::from_micros(1)), "PT0.000001S");
}
