//! Argument values several binaries parse alike.

/// Parses `HxW` (height × width, as Keras' `image_size`) or a single side for a square.
pub fn parse_size(text: &str) -> Result<(usize, usize), String> {
    let parse = |s: &str| {
        s.trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| (1..=8192).contains(&n))
    };
    let size = match text.split_once(['x', 'X']) {
        Some((h, w)) => parse(h).zip(parse(w)),
        None => parse(text).map(|n| (n, n)),
    };
    size.ok_or_else(|| format!("size '{text}' is not HxW (e.g. 100x100) with sides 1..=8192"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_height_by_width() {
        assert_eq!(parse_size("100x120"), Ok((100, 120)));
        assert_eq!(parse_size("64"), Ok((64, 64)));
        assert!(parse_size("0x5").is_err());
        assert!(parse_size("big").unwrap_err().contains("HxW"));
    }
}
