use std::io::Write;

use super::*;

const SAMPLE: &str = "\
# Akamai's sample, with comments and both key spellings
[default]
client_secret = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=
host = akab-default.luna.akamaiapis.net/
access_token = akab-access-default
client_token = akab-client-default

[ccu]
client-secret = c2VjcmV0PQ==   # the secret
host = akab-ccu.purge.akamaiapis.net
access_token = akab-access-ccu ; inline
client_token = akab-client-ccu
max-body = 2048
";

fn field_of(e: Error) -> String {
    match e {
        Error::Config { field, .. } => field,
        other => panic!("expected a config error, got {other:?}"),
    }
}

fn edgerc_file(text: &str) -> (PathBuf, impl Drop) {
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let path = std::env::temp_dir().join(format!(
        "purgekit-akamai-edgerc-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    (path.clone(), Remove(path))
}

#[test]
fn edgerc_sections_keys_and_comments() {
    let ccu = parse_edgerc(SAMPLE, "ccu").unwrap();
    assert_eq!(ccu["client_secret"], "c2VjcmV0PQ==");
    assert_eq!(ccu["access_token"], "akab-access-ccu");
    assert_eq!(ccu["max_body"], "2048");
    let default = parse_edgerc(SAMPLE, "default").unwrap();
    assert_eq!(
        default["client_secret"],
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx="
    );
    assert!(parse_edgerc(SAMPLE, "papi").is_none());
    assert!(parse_edgerc("[empty]\n", "empty").unwrap().is_empty());
}

#[test]
fn edgerc_supplies_what_the_table_does_not_and_the_table_wins() {
    let (path, _guard) = edgerc_file(SAMPLE);
    let config = AkamaiConfig {
        edgerc: Some(path.clone()),
        section: Some("ccu".into()),
        access_token: Some("akab-from-table".into()),
        ..AkamaiConfig::default()
    };
    let a = Account::new(config).unwrap();
    assert_eq!(a.endpoint, "https://akab-ccu.purge.akamaiapis.net");
    assert_eq!(a.host, "akab-ccu.purge.akamaiapis.net");
    assert_eq!(a.client_token, "akab-client-ccu");
    assert_eq!(a.access_token, "akab-from-table");
    assert_eq!(a.client_secret.expose(), "c2VjcmV0PQ==");
    assert_eq!(a.max_body, 2048);
    // Section `default`, whose host has Akamai's trailing slash.
    let a = Account::new(AkamaiConfig {
        edgerc: Some(path),
        ..AkamaiConfig::default()
    })
    .unwrap();
    assert_eq!(a.host, "akab-default.luna.akamaiapis.net");
    assert_eq!(a.max_body, DEFAULT_MAX_BODY);
}

#[test]
fn a_missing_file_or_section_names_both() {
    let e = Account::new(AkamaiConfig {
        edgerc: Some("/nonexistent/purgekit/.edgerc".into()),
        section: Some("ccu".into()),
        ..AkamaiConfig::default()
    })
    .err()
    .unwrap();
    let text = e.to_string();
    assert!(
        text.contains("/nonexistent/purgekit/.edgerc") && text.contains("[ccu]"),
        "{text}"
    );
    assert_eq!(field_of(e), "edgerc");
    let (path, _guard) = edgerc_file(SAMPLE);
    let e = Account::new(AkamaiConfig {
        edgerc: Some(path.clone()),
        section: Some("papi".into()),
        ..AkamaiConfig::default()
    })
    .err()
    .unwrap();
    let text = e.to_string();
    assert!(
        text.contains(&path.display().to_string()) && text.contains("[papi]"),
        "{text}"
    );
    assert_eq!(field_of(e), "section");
}

#[test]
fn required_keys_are_named_and_the_secret_is_never_shown() {
    let full = || {
        AkamaiConfig::new(
            "akab-h.purge.akamaiapis.net",
            "akab-c",
            "s3cr3t-value",
            "akab-a",
        )
    };
    assert!(Account::new(full()).is_ok());
    for (key, config) in [
        (
            "host",
            AkamaiConfig {
                host: None,
                ..full()
            },
        ),
        (
            "client_token",
            AkamaiConfig {
                client_token: None,
                ..full()
            },
        ),
        (
            "client_secret",
            AkamaiConfig {
                client_secret: None,
                ..full()
            },
        ),
        (
            "access_token",
            AkamaiConfig {
                access_token: Some("  ".into()),
                ..full()
            },
        ),
        (
            "host",
            AkamaiConfig {
                host: Some("https://x.example".into()),
                ..full()
            },
        ),
        (
            "max_body",
            AkamaiConfig {
                max_body: Some(0),
                ..full()
            },
        ),
        (
            "cpcodes",
            AkamaiConfig {
                cpcodes: vec![0],
                ..full()
            },
        ),
        (
            "cpcodes",
            AkamaiConfig {
                cpcodes: (1..=301).collect(),
                ..full()
            },
        ),
        (
            "client_token",
            AkamaiConfig {
                client_token: Some("a;b".into()),
                ..full()
            },
        ),
    ] {
        let e = Account::new(config).err().unwrap();
        assert!(!e.to_string().contains("s3cr3t-value"), "{e}");
        assert_eq!(field_of(e), key);
    }
    assert!(!format!("{:?}", full()).contains("s3cr3t-value"));
}

#[test]
fn the_table_is_strict_toml() {
    let e = toml::from_str::<AkamaiConfig>("host = \"h\"\nclient_tokn = \"x\"\n").unwrap_err();
    assert!(e.to_string().contains("client_tokn"), "{e}");
    let e = toml::from_str::<AkamaiConfig>("network = \"prod\"\n").unwrap_err();
    assert!(e.to_string().contains("production"), "{e}");
    let c: AkamaiConfig = toml::from_str("network = \"staging\"\ncpcodes = [1, 2]\n").unwrap();
    assert_eq!((c.network, c.cpcodes), (Network::Staging, vec![1, 2]));
}

#[test]
fn endpoint_overrides_the_host_for_sending_and_signing() {
    let config = AkamaiConfig::new("akab-h.purge.akamaiapis.net", "c", "s", "a")
        .with_endpoint("http://127.0.0.1:8080/");
    let a = Account::new(config).unwrap();
    assert_eq!(
        (a.scheme.as_str(), a.host.as_str()),
        ("http", "127.0.0.1:8080")
    );
}
