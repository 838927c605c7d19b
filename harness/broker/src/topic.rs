//! MQTT topic names and filters (MQTT 3.1.1 §4.7, MQTT 5 §4.7). Own implementation because rumqttc's
//! `matches` refuses every `$`-topic, even for a filter that names it (`$SYS/+`).

/// A valid topic name: non-empty, no wildcards, no NUL.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

/// A valid topic filter: non-empty, `+` a whole level, `#` a whole and last level, no NUL.
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, l)| match *l {
        "#" => i == last,
        "+" => true,
        l => !l.contains(['+', '#']),
    })
}

/// Whether `topic` matches `filter`. Filters starting with a wildcard do not match `$`-topics.
pub fn matches(topic: &str, filter: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut t = topic.split('/');
    for f in filter.split('/') {
        if f == "#" {
            return true;
        }
        match t.next() {
            Some(level) if f == "+" || f == level => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

/// Whether every topic `requested` can match is also matched by `allowed` (both filters): the check for
/// a SUBSCRIBE against an ACL.
pub fn covers(allowed: &str, requested: &str) -> bool {
    if requested.starts_with('$') && (allowed.starts_with('+') || allowed.starts_with('#')) {
        return false;
    }
    let mut r = requested.split('/');
    let mut a = allowed.split('/');
    loop {
        match (a.next(), r.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(rl)) if rl != "#" => {}
            (Some(al), Some(rl)) if al == rl && rl != "+" && rl != "#" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_follows_the_spec() {
        assert!(matches("a/b/c", "a/b/c"));
        assert!(matches("a/b/c", "a/+/c"));
        assert!(matches("a/b/c", "#"));
        assert!(matches("a/b/c", "a/#"));
        assert!(matches("a", "a/#"), "# also matches the parent level");
        assert!(matches("a//c", "a/+/c"), "+ matches an empty level");
        assert!(!matches("a/b", "a/b/+"));
        assert!(!matches("a/b/c", "a/b"));
        assert!(!matches("a/b/c", "a/+"));
        assert!(!matches("b/b/c", "a/#"));
        assert!(!matches("$SYS/x", "#"));
        assert!(!matches("$SYS/x", "+/x"));
        assert!(matches("$SYS/x", "$SYS/+"));
        assert!(matches("$SYS/x", "$SYS/#"));
    }

    #[test]
    fn validity() {
        assert!(valid_filter("a/+/c/#"));
        assert!(valid_filter("#"));
        assert!(valid_filter("+"));
        assert!(!valid_filter("a/#/c"));
        assert!(!valid_filter("a/b#"));
        assert!(!valid_filter("a+/b"));
        assert!(!valid_filter(""));
        assert!(valid_topic("a/b"));
        assert!(!valid_topic("a/+"));
        assert!(!valid_topic(""));
    }

    #[test]
    fn coverage_for_subscribe_acls() {
        assert!(covers("#", "a/b"));
        assert!(covers("a/#", "a/#"));
        assert!(covers("a/#", "a/+/c"));
        assert!(covers("a/+", "a/b"));
        assert!(covers("a/+", "a/+"));
        assert!(covers("a/b", "a/b"));
        assert!(!covers("a/+", "a/#"));
        assert!(!covers("a/b", "a/+"));
        assert!(!covers("a/b", "a/#"));
        assert!(!covers("a/+", "a/b/c"));
        assert!(!covers("a/b/c", "a/b"));
        assert!(!covers("#", "$SYS/#"));
        assert!(covers("$SYS/#", "$SYS/broker"));
    }
}
