//! From the command line (and target files) to a validated [`PurgeRequest`].

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use purgekit::{Action, Options, PurgeRequest, Target, TargetKind};

use crate::Failure;
use crate::args::{DryRun, PurgeArgs};

/// At most this many input problems are reported (then how many more there were).
pub const MAX_PROBLEMS: usize = 20;

/// Input problems, gathered so that all of them (up to [`MAX_PROBLEMS`]) are reported at once.
#[derive(Default)]
struct Problems {
    shown: Vec<String>,
    more: usize,
}

impl Problems {
    fn push(&mut self, problem: String) {
        if self.shown.len() < MAX_PROBLEMS {
            self.shown.push(problem);
        } else {
            self.more += 1;
        }
    }

    fn into_failure(self) -> Option<Failure> {
        if self.shown.is_empty() {
            return None;
        }
        let count = self.shown.len() + self.more;
        let mut text = if count == 1 {
            self.shown.into_iter().next().unwrap_or_default()
        } else {
            let mut text = format!("{count} input problems; nothing was sent:");
            for problem in &self.shown {
                text.push_str("\n  ");
                text.push_str(problem);
            }
            if self.more > 0 {
                text.push_str(&format!("\n  … and {} more", self.more));
            }
            text
        };
        if count == 1 && !text.contains("nothing was sent") {
            text.push_str("; nothing was sent");
        }
        Some(Failure::Usage(text))
    }
}

/// The parse error of a target, with a hint for a bare word (`homepage`: did you mean
/// `tag:homepage`?).
fn target_problem(text: &str, error: &purgekit::Error) -> String {
    let bare_word =
        !text.is_empty() && !text.contains(['/', ':', '*', '.']) && Target::tag(text).is_ok();
    if bare_word {
        format!("{error} (did you mean tag:{text}?)")
    } else {
        error.to_string()
    }
}

/// Builds the request from `args`, reading `--file -` from `stdin`. Every broken rule is
/// reported (up to [`MAX_PROBLEMS`]), naming the input and the file and line it came from, as
/// one usage failure. Inputs that hold no target at all give `Ok(None)` ("nothing to purge"),
/// or a usage failure with `--require-targets` or when no input was given at all.
pub fn build_request(args: &PurgeArgs, stdin: impl Read) -> Result<Option<PurgeRequest>, Failure> {
    let mut targets = Vec::new();
    let mut problems = Problems::default();
    for text in &args.targets {
        match Target::parse(text) {
            Ok(target) => targets.push(target),
            Err(e) => problems.push(target_problem(text, &e)),
        }
    }
    let mut stdin = Some(stdin);
    for path in &args.file {
        if path == Path::new("-") {
            let Some(input) = stdin.take() else {
                problems.push("`--file -` (stdin) may be given only once".to_owned());
                continue;
            };
            read_targets(
                BufReader::new(input),
                "<stdin>",
                &mut targets,
                &mut problems,
            );
        } else {
            match std::fs::File::open(path) {
                Ok(file) => read_targets(
                    BufReader::new(file),
                    &path.display().to_string(),
                    &mut targets,
                    &mut problems,
                ),
                Err(e) => problems.push(format!("cannot read target file {}: {e}", path.display())),
            }
        }
    }
    let mut flag = |name: &str, text: &str, target: purgekit::Result<Target>| match target {
        Ok(target) => targets.push(target),
        Err(e) => problems.push(format!("--{name} {text}: {e}")),
    };
    for pattern in &args.pattern {
        flag("pattern", pattern, Target::pattern(pattern.as_str()));
    }
    for tag in &args.tag {
        match tag.strip_prefix("tag:") {
            Some(name) => flag(
                "tag",
                tag,
                Err(purgekit::Error::invalid(
                    tag,
                    format!(
                        "--tag takes the tag's name, without `tag:`: give `--tag {name}` (or \
                         the target `tag:{name}`)"
                    ),
                )),
            ),
            None => flag("tag", tag, Target::tag(tag.as_str())),
        }
    }
    for prefix in &args.prefix {
        flag("prefix", prefix, Target::prefix(prefix.as_str()));
    }
    for host in &args.host {
        flag("host", host, Target::hostname(host.as_str()));
    }
    if args.everything {
        targets.push(Target::everything());
    }
    let options = Options {
        action: if args.options.delete {
            Action::Delete
        } else {
            Action::Invalidate
        },
        ignore_case: args.options.ignore_case,
        include_query: args.options.include_query,
        notify: args.options.notify.clone(),
        callback: args.options.callback.clone(),
        note: args.options.note.clone(),
        dry_run: args.dry_run.is_some(),
    };
    if let Err(e) = options.validate() {
        problems.push(e.to_string());
    }
    if let Some(failure) = problems.into_failure() {
        return Err(failure);
    }
    if targets.is_empty() {
        let no_input = args.targets.is_empty()
            && args.file.is_empty()
            && args.pattern.is_empty()
            && args.tag.is_empty()
            && args.prefix.is_empty()
            && args.host.is_empty()
            && !args.everything;
        if no_input || args.require_targets {
            return Err(Failure::Usage(if no_input {
                "nothing to purge: give TARGETs, --file, --pattern, --tag, --prefix, --host or \
                 --everything"
                    .to_owned()
            } else {
                "nothing to purge: the input holds no target (--require-targets)".to_owned()
            }));
        }
        return Ok(None);
    }
    let request = PurgeRequest::new(targets, options).map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(Some(
        request
            .with_wait(args.wait_timeout())
            .with_local_dry_run(args.dry_run == Some(DryRun::Client)),
    ))
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
/// Each bad line is a problem naming `name:line`: not UTF-8, longer than [`MAX_LINE_BYTES`], or
/// not a valid target. A read error or an over-long line ends the file.
fn read_targets(
    mut reader: impl BufRead,
    name: &str,
    targets: &mut Vec<Target>,
    problems: &mut Problems,
) {
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        number += 1;
        line.clear();
        let read = match (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(read) => read,
            Err(e) => {
                problems.push(format!("cannot read {name}:{number}: {e}"));
                return;
            }
        };
        if read == 0 {
            return;
        }
        if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
            problems.push(format!(
                "{name}:{number}: the line is longer than {MAX_LINE_BYTES} bytes (a target is \
                 at most {} bytes)",
                purgekit::MAX_TARGET_LEN
            ));
            // Reading stops here: the line may never end (a device, a broken generator).
            return;
        }
        let text = match std::str::from_utf8(&line) {
            Ok(text) => text.trim(),
            Err(e) => {
                problems.push(format!(
                    "{name}:{number}: not UTF-8 (invalid byte at column {})",
                    e.valid_up_to() + 1
                ));
                continue;
            }
        };
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        match Target::parse(text) {
            Ok(target) => targets.push(target),
            Err(e) => problems.push(format!("{name}:{number}: {}", target_problem(text, &e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::OptionArgs;
    use purgekit::{MAX_TARGET_LEN, OptionKind, TargetKind};
    use std::time::Duration;

    fn args() -> PurgeArgs {
        PurgeArgs::default()
    }

    /// The request, which these inputs all have.
    fn build_request(args: &PurgeArgs, stdin: impl Read) -> Result<PurgeRequest, Failure> {
        super::build_request(args, stdin).map(|r| r.expect("some target"))
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
    fn no_targets_is_nothing_to_purge_and_no_input_a_usage_error() {
        assert!(usage(build_request(&args(), std::io::empty())).contains("nothing to purge"));
        let a = PurgeArgs {
            file: vec!["-".into()],
            ..args()
        };
        // An empty input (a pipeline's empty diff) is not an error...
        assert!(
            super::build_request(&a, "# only comments\n\n".as_bytes())
                .unwrap()
                .is_none()
        );
        // ...unless targets are required.
        let required = PurgeArgs {
            require_targets: true,
            ..a
        };
        let m = usage(super::build_request(&required, std::io::empty()).map(|_| unreachable!()));
        assert!(m.contains("--require-targets"), "{m}");
    }

    #[test]
    fn every_problem_is_reported_with_hints() {
        let a = PurgeArgs {
            targets: vec!["homepage".into()],
            file: vec!["-".into()],
            tag: vec!["tag:foo".into(), "ok".into()],
            options: OptionArgs {
                notify: vec!["not-an-email".into()],
                ..OptionArgs::default()
            },
            ..args()
        };
        let stdin = "https://a.example/1\n/bad-2\nhttps://a.example/3\n\nftp://bad-5/\n";
        let m = usage(build_request(&a, stdin.as_bytes()));
        assert!(m.starts_with("5 input problems; nothing was sent:"), "{m}");
        assert!(m.contains("(did you mean tag:homepage?)"), "{m}");
        assert!(m.contains("\n  <stdin>:2: "), "{m}");
        assert!(m.contains("\n  <stdin>:5: "), "{m}");
        assert!(m.contains("give `--tag foo`"), "{m}");
        assert!(m.contains("not a valid email"), "{m}");
        // Capped.
        let many: String = (0..30).map(|i| format!("bad{i}\n")).collect();
        let m = usage(build_request(
            &PurgeArgs {
                file: vec!["-".into()],
                ..args()
            },
            many.as_bytes(),
        ));
        assert!(m.starts_with("30 input problems"), "{m}");
        assert_eq!(m.lines().count(), 1 + MAX_PROBLEMS + 1, "{m}");
        assert!(m.ends_with("… and 10 more"), "{m}");
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
            options: OptionArgs {
                delete: true,
                ignore_case: true,
                include_query: true,
                notify: vec!["ops@example.com".into()],
                note: Some("deploy".into()),
                callback: Some("https://cb.example/done".into()),
            },
            dry_run: Some(DryRun::Client),
            wait: true,
            timeout: Some(Duration::from_secs(5)),
            ..args()
        };
        let r = build_request(&a, std::io::empty()).unwrap();
        assert_eq!(r.options().requested(), OptionKind::ALL);
        assert_eq!(r.options().action, Action::Delete);
        assert_eq!(r.wait(), Some(Duration::from_secs(5)));
        let mut bad = a;
        bad.options.notify = vec!["not-an-email".into()];
        assert!(usage(build_request(&bad, std::io::empty())).contains("not a valid email"));
    }
}
