//! Human-readable figures for command output: sizes in binary units and
//! durations in the largest unit that divides them. Shared by the site
//! commands and the benchmarks (`peerhost-bench`).

/// Bytes in binary units, e.g. `2.4 MiB`.
pub fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Seconds in the largest unit that divides them, e.g. `24h`, `90m`, `7d`.
pub fn fmt_duration(secs: u64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_bytes(5), "5 bytes");
        assert_eq!(fmt_bytes(2048), "2.0 KiB");
        assert_eq!(fmt_bytes(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
        assert_eq!(fmt_duration(86_400), "1d");
        assert_eq!(fmt_duration(5400), "90m");
        assert_eq!(fmt_duration(61), "61s");
    }
}
