//! The user's subordinate ids: `/etc/subuid` and `/etc/subgid` (`NAME:START:COUNT` or
//! `UID:START:COUNT`), and the id map a rootless namespace gets from them: root is the user,
//! 1.. are the ranges in order, as podman maps them.

/// One range of subordinate ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

/// Every range `text` gives `user` (by name or by id), in the file's order; a range of count 0
/// is an error (it names the file's line), as newuidmap would refuse it less clearly.
pub fn ranges(text: &str, user: &str, id: u32) -> Result<Vec<Range>, String> {
    let id = id.to_string();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(':');
        let (Some(owner), Some(start), Some(count)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if owner != user && owner != id {
            continue;
        }
        let (Ok(start), Ok(count)) = (start.trim().parse(), count.trim().parse()) else {
            return Err(format!("unreadable range {line:?}"));
        };
        if count == 0 {
            return Err(format!("the range {line:?} is empty (count 0)"));
        }
        out.push(Range { start, count });
    }
    Ok(out)
}

/// newuidmap's (newgidmap's) arguments after the pid: `0 ID 1`, then each range from inside
/// id 1 on.
pub fn map_args(id: u32, ranges: &[Range]) -> Vec<String> {
    let mut args = vec!["0".to_string(), id.to_string(), "1".to_string()];
    let mut inside: u32 = 1;
    for r in ranges {
        args.extend([inside.to_string(), r.start.to_string(), r.count.to_string()]);
        inside = inside.saturating_add(r.count);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_found_by_name_or_id_in_order() {
        let text = "# comment\nother:200000:65536\nalice:100000:65536\n1000:300000:10\n";
        assert_eq!(
            ranges(text, "alice", 1000),
            Ok(vec![
                Range {
                    start: 100000,
                    count: 65536
                },
                Range {
                    start: 300000,
                    count: 10
                }
            ])
        );
        assert_eq!(ranges(text, "bob", 1001), Ok(vec![]));
    }

    #[test]
    fn an_empty_range_is_refused() {
        let err = ranges("alice:100000:0\n", "alice", 1000).unwrap_err();
        assert!(err.contains("empty"), "{err}");
    }

    #[test]
    fn root_is_the_user_and_the_ranges_follow() {
        let r = [
            Range {
                start: 100000,
                count: 65536,
            },
            Range {
                start: 300000,
                count: 10,
            },
        ];
        assert_eq!(
            map_args(1000, &r),
            ["0", "1000", "1", "1", "100000", "65536", "65537", "300000", "10"]
        );
        assert_eq!(map_args(1000, &[]), ["0", "1000", "1"]);
    }
}
