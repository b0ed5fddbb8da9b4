//! Parsing and printing of the units the command line speaks: byte sizes (`4KiB`, `1MiB`,
//! `64MiB`, `10MB`) and durations (`20`, `20s`, `500ms`, `2m`).

use std::time::Duration;

/// Binary multipliers (`KiB`, and the bare `K` that most S3 load tools treat as binary).
const BINARY_UNITS: [(&str, u64); 9] = [
    ("b", 1),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
    ("k", 1 << 10),
    ("m", 1 << 20),
    ("g", 1 << 30),
    ("t", 1 << 40),
];

/// Decimal multipliers (`KB`, `MB`, ...), as storage vendors write them.
const DECIMAL_UNITS: [(&str, u64); 4] =
    [("kb", 1_000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("tb", 1_000_000_000_000)];

/// Parses a byte size such as `4KiB`, `1 MiB`, `64MiB`, `10MB` or `4096`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!("size {text:?} has no number"));
    }
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier = if unit.is_empty() {
        1
    } else {
        BINARY_UNITS
            .iter()
            .chain(DECIMAL_UNITS.iter())
            .find(|(name, _)| *name == unit)
            .map(|(_, multiplier)| *multiplier)
            .ok_or_else(|| format!("size {text:?} has an unknown unit (use B, KiB, MiB, GiB, KB, MB, GB)"))?
    };
    let bytes = if number.contains('.') {
        let value: f64 = number.parse().map_err(|_| format!("size {text:?} is not a number"))?;
        let bytes = value * multiplier as f64;
        if bytes.fract() != 0.0 {
            return Err(format!("size {text:?} is not a whole number of bytes"));
        }
        bytes as u64
    } else {
        let value: u64 = number.parse().map_err(|_| format!("size {text:?} is not a number"))?;
        value.checked_mul(multiplier).ok_or_else(|| format!("size {text:?} is too large"))?
    };
    Ok(bytes)
}

/// Prints a size in the largest binary unit that divides it exactly (`4KiB`, `1MiB`, `1000B`).
pub fn format_size(bytes: u64) -> String {
    for (unit, multiplier) in [("TiB", 1u64 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= multiplier && bytes.is_multiple_of(multiplier) {
            return format!("{}{unit}", bytes / multiplier);
        }
    }
    format!("{bytes}B")
}

/// Parses a duration: plain seconds (`20`, `2.5`) or with a unit (`500ms`, `20s`, `2m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("duration {text:?} is not a number"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1_000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3_600.0,
        other => return Err(format!("duration {text:?} has an unknown unit {other:?} (use ms, s, m, h)")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("duration {text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Prints a latency given in microseconds with a unit that keeps three significant figures.
pub fn format_micros(micros: f64) -> String {
    if micros >= 1_000_000.0 {
        format!("{:.2} s", micros / 1_000_000.0)
    } else if micros >= 1_000.0 {
        format!("{:.2} ms", micros / 1_000.0)
    } else {
        format!("{micros:.0} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_units_are_powers_of_two() {
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("4kib"), Ok(4096));
        assert_eq!(parse_size("0.5MiB"), Ok(512 << 10));
    }

    #[test]
    fn decimal_units_and_plain_bytes() {
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("7B"), Ok(7));
    }

    #[test]
    fn bad_sizes_are_rejected_with_a_reason() {
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("4XB").is_err());
        assert!(parse_size("1.5B").is_err());
        assert!(parse_size("99999999999TiB").is_err());
    }

    #[test]
    fn sizes_print_in_the_largest_exact_unit() {
        assert_eq!(format_size(4096), "4KiB");
        assert_eq!(format_size(1 << 20), "1MiB");
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(1536), "1536B");
        for size in ["4KiB", "1MiB", "64MiB", "3GiB"] {
            assert_eq!(format_size(parse_size(size).unwrap()), size);
        }
    }

    #[test]
    fn durations_accept_plain_seconds_and_units() {
        assert_eq!(parse_duration("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn latencies_print_with_a_readable_unit() {
        assert_eq!(format_micros(850.0), "850 µs");
        assert_eq!(format_micros(1_234.0), "1.23 ms");
        assert_eq!(format_micros(2_500_000.0), "2.50 s");
    }
}
