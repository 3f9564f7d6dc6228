//! From the command line (and target files) to a validated [`PurgeRequest`].

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use purgekit::{Action, Options, PurgeRequest, Target, TargetKind};

use crate::Failure;
use crate::args::PurgeArgs;

/// Builds the request from `args`, reading `--file -` from `stdin`. Every broken rule is a
/// usage failure naming the input (and the file and line it came from).
pub fn build_request(args: &PurgeArgs, stdin: impl Read) -> Result<PurgeRequest, Failure> {
    let mut targets = Vec::new();
    for text in &args.targets {
        targets.push(Target::parse(text).map_err(|e| Failure::Usage(e.to_string()))?);
    }
    let mut stdin = Some(stdin);
    for path in &args.file {
        if path == Path::new("-") {
            let Some(input) = stdin.take() else {
                return Err(Failure::Usage(
                    "`--file -` (stdin) may be given only once".to_owned(),
                ));
            };
            read_targets(BufReader::new(input), "<stdin>", &mut targets)?;
        } else {
            let file = std::fs::File::open(path).map_err(|e| {
                Failure::Usage(format!("cannot read target file {}: {e}", path.display()))
            })?;
            read_targets(
                BufReader::new(file),
                &path.display().to_string(),
                &mut targets,
            )?;
        }
    }
    for pattern in &args.pattern {
        targets.push(Target::pattern(pattern.as_str()).map_err(|e| Failure::Usage(e.to_string()))?);
    }
    for tag in &args.tag {
        targets.push(Target::tag(tag.as_str()).map_err(|e| Failure::Usage(e.to_string()))?);
    }
    for prefix in &args.prefix {
        targets.push(Target::prefix(prefix.as_str()).map_err(|e| Failure::Usage(e.to_string()))?);
    }
    for host in &args.host {
        targets.push(Target::hostname(host.as_str()).map_err(|e| Failure::Usage(e.to_string()))?);
    }
    if args.everything {
        targets.push(Target::everything());
    }
    if targets.is_empty() {
        return Err(Failure::Usage(
            "nothing to purge: give TARGETs, --file, --pattern, --tag, --prefix, --host or \
             --everything"
                .to_owned(),
        ));
    }
    let options = Options {
        action: if args.delete {
            Action::Delete
        } else {
            Action::Invalidate
        },
        ignore_case: args.ignore_case,
        include_query: args.include_query,
        notify: args.notify.clone(),
        callback: args.callback.clone(),
        note: args.note.clone(),
        dry_run: args.dry_run,
    };
    let request = PurgeRequest::new(targets, options).map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(request.with_wait(args.wait_timeout()))
}

/// `purge` of `everything` is destructive: refused without `--yes` (`plan` shows what it
/// becomes without it).
pub fn confirm_destructive(args: &PurgeArgs, request: &PurgeRequest) -> Result<(), Failure> {
    let everything = request
        .targets()
        .iter()
        .any(|t| t.kind() == TargetKind::Everything);
    if everything && !args.yes {
        return Err(Failure::Usage(
            "`everything` purges the whole property, service or zone of every selected provider: \
             add --yes to confirm (run `purgekit plan` first to see what it becomes)"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Longest line read from a target file: the longest target core accepts, its `tag:` prefix and
/// some surrounding white space. Reading stops at this many bytes of one line, so a huge line
/// costs no more memory than this.
const MAX_LINE_BYTES: usize = purgekit::MAX_TARGET_LEN + 1024;

/// Appends the targets in `reader`, one per line; blank lines and `#` comments are skipped.
/// Errors name `name:line`: a line that is not UTF-8, longer than [`MAX_LINE_BYTES`], or not a
/// valid target.
fn read_targets(
    mut reader: impl BufRead,
    name: &str,
    targets: &mut Vec<Target>,
) -> Result<(), Failure> {
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        number += 1;
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| Failure::Usage(format!("cannot read {name}:{number}: {e}")))?;
        if read == 0 {
            return Ok(());
        }
        if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
            return Err(Failure::Usage(format!(
                "{name}:{number}: the line is longer than {MAX_LINE_BYTES} bytes (a target is \
                 at most {} bytes); nothing was sent",
                purgekit::MAX_TARGET_LEN
            )));
        }
        let text = std::str::from_utf8(&line).map_err(|e| {
            Failure::Usage(format!(
                "{name}:{number}: not UTF-8 (invalid byte at column {}); nothing was sent",
                e.valid_up_to() + 1
            ))
        })?;
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let target =
            Target::parse(text).map_err(|e| Failure::Usage(format!("{name}:{number}: {e}")))?;
        targets.push(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use purgekit::{MAX_TARGET_LEN, OptionKind, TargetKind};
    use std::time::Duration;

    fn args() -> PurgeArgs {
        PurgeArgs::default()
    }

    fn usage(result: Result<PurgeRequest, Failure>) -> String {
        match result.unwrap_err() {
            Failure::Usage(m) => m,
            other => panic!("expected a usage failure, got {other:?}"),
        }
    }

    #[test]
    fn targets_come_from_args_stdin_patterns_and_tags_in_order() {
        let a = PurgeArgs {
            targets: vec!["https://a.example/x.js".into(), "tag:home".into()],
            file: vec!["-".into()],
            pattern: vec!["https://a.example/img/*".into()],
            tag: vec!["product-1".into()],
            ..args()
        };
        let stdin = "\n# a comment\n  https://b.example/y.css  \n\t\nhttps://b.example/*.png\n   # indented comment\ntag:from-file\n";
        let request = build_request(&a, stdin.as_bytes()).unwrap();
        let shown: Vec<String> = request.targets().iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "https://a.example/x.js",
                "tag:home",
                "https://b.example/y.css",
                "https://b.example/*.png",
                "tag:from-file",
                "https://a.example/img/*",
                "tag:product-1",
            ]
        );
        let kinds: Vec<TargetKind> = request.targets().iter().map(Target::kind).collect();
        assert_eq!(kinds[3], TargetKind::Pattern);
        assert_eq!(request.wait(), None);
    }

    #[test]
    fn wide_targets_from_flags_and_file_lines() {
        let a = PurgeArgs {
            file: vec!["-".into()],
            prefix: vec!["https://a.example/img/".into()],
            host: vec!["b.example".into()],
            everything: true,
            ..args()
        };
        let stdin = "prefix:https://c.example/css/\nhost:d.example\neverything\n";
        let request = build_request(&a, stdin.as_bytes()).unwrap();
        let shown: Vec<String> = request.targets().iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "prefix:https://c.example/css/",
                "host:d.example",
                "everything",
                "prefix:https://a.example/img/",
                "host:b.example",
                "everything",
            ]
        );
        let m = usage(confirm_destructive(&a, &request).map(|()| request.clone()));
        assert!(m.contains("--yes"), "{m}");
        confirm_destructive(
            &PurgeArgs {
                yes: true,
                ..a.clone()
            },
            &request,
        )
        .unwrap();
        let m = usage(build_request(
            &PurgeArgs {
                prefix: vec!["https://a.example/img".into()],
                ..args()
            },
            std::io::empty(),
        ));
        assert!(m.contains("end with `/`"), "{m}");
        let m = usage(build_request(
            &PurgeArgs {
                host: vec!["https://a.example/".into()],
                ..args()
            },
            std::io::empty(),
        ));
        assert!(m.contains("bare host name"), "{m}");
    }

    #[test]
    fn file_errors_name_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("purgekit-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("urls.txt");
        std::fs::write(&path, "# ok\nhttps://a.example/ok\n/relative.jpg\n").unwrap();
        let a = PurgeArgs {
            file: vec![path.clone()],
            ..args()
        };
        let m = usage(build_request(&a, std::io::empty()));
        assert!(
            m.starts_with(&format!(
                "{}:3: invalid input `/relative.jpg`",
                path.display()
            )),
            "{m}"
        );
        std::fs::remove_dir_all(&dir).unwrap();

        let a = PurgeArgs {
            file: vec![dir.join("missing.txt")],
            ..args()
        };
        assert!(usage(build_request(&a, std::io::empty())).contains("cannot read target file"));
        let m = usage(build_request(
            &PurgeArgs {
                file: vec!["-".into()],
                ..args()
            },
            "\nftp://x.example/a\n".as_bytes(),
        ));
        assert!(m.starts_with("<stdin>:2: "), "{m}");
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let a = PurgeArgs {
            file: vec!["-".into()],
            ..args()
        };
        let m = usage(build_request(
            &a,
            &b"https://a.example/ok\n\nhttps://a.example/\xff\xfe\n"[..],
        ));
        assert!(m.starts_with("<stdin>:3: not UTF-8"), "{m}");
        // A final line without a line break is read too.
        let r = build_request(&a, &b"https://a.example/x\r\nhttps://a.example/y"[..]).unwrap();
        assert_eq!(r.targets().len(), 2);
    }

    #[test]
    fn a_huge_line_is_refused_without_reading_it_all() {
        /// An endless line: reading it all would never end.
        struct Endless(usize);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0 += buf.len();
                assert!(self.0 < 1 << 20, "read {} bytes of one line", self.0);
                buf.fill(b'x');
                Ok(buf.len())
            }
        }
        let a = PurgeArgs {
            file: vec!["-".into()],
            ..args()
        };
        let stdin = std::io::Read::chain(&b"https://a.example/1\n"[..], Endless(0));
        let m = usage(build_request(&a, stdin));
        assert!(m.starts_with("<stdin>:2: the line is longer than"), "{m}");
        // The longest target itself still fits on a line.
        let longest = format!("https://a.example/{}", "x".repeat(MAX_TARGET_LEN - 18));
        assert_eq!(longest.len(), MAX_TARGET_LEN);
        assert!(build_request(&a, format!("  {longest}  \n").as_bytes()).is_ok());
    }

    #[test]
    fn stdin_only_once() {
        let a = PurgeArgs {
            file: vec!["-".into(), "-".into()],
            ..args()
        };
        assert!(usage(build_request(&a, "https://a.example/".as_bytes())).contains("only once"));
    }

    #[test]
    fn no_targets_is_a_usage_error() {
        assert!(usage(build_request(&args(), std::io::empty())).contains("nothing to purge"));
        let a = PurgeArgs {
            file: vec!["-".into()],
            ..args()
        };
        assert!(
            usage(build_request(&a, "# only comments\n\n".as_bytes())).contains("nothing to purge")
        );
    }

    #[test]
    fn pattern_and_tag_flags_are_checked_as_such() {
        let a = PurgeArgs {
            pattern: vec!["https://a.example/no-star".into()],
            ..args()
        };
        assert!(usage(build_request(&a, std::io::empty())).contains("must contain `*`"));
        let a = PurgeArgs {
            tag: vec!["two words".into()],
            ..args()
        };
        assert!(usage(build_request(&a, std::io::empty())).contains("white space"));
    }

    #[test]
    fn options_map_onto_the_request() {
        let a = PurgeArgs {
            targets: vec!["https://a.example/".into()],
            delete: true,
            ignore_case: true,
            include_query: true,
            notify: vec!["ops@example.com".into()],
            note: Some("deploy".into()),
            callback: Some("https://cb.example/done".into()),
            dry_run: true,
            wait: true,
            timeout: Some(Duration::from_secs(5)),
            ..args()
        };
        let r = build_request(&a, std::io::empty()).unwrap();
        assert_eq!(r.options().requested(), OptionKind::ALL);
        assert_eq!(r.options().action, Action::Delete);
        assert_eq!(r.wait(), Some(Duration::from_secs(5)));
        let bad = PurgeArgs {
            notify: vec!["not-an-email".into()],
            ..a
        };
        assert!(usage(build_request(&bad, std::io::empty())).contains("not a valid email"));
    }
}
