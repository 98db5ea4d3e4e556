//! `quiver serve --config FILE`: the serve flags from a TOML file. Keys are the long flag names
//! (`port`, `max_limit` or `max-limit`, `model = ["jina=/models/jina-v4", "minilm=/models/minilm"]`).
//! The file is the lowest layer: an environment variable named in `--help` overrides a key, and a
//! command-line flag overrides both. Repeatable flags (`model`) add up across layers.
//!
//! The file is turned into flags placed right after `serve`, so clap parses and validates every value
//! exactly as it does on the command line.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Command};

/// The arguments with the config file's settings spliced in after `serve`, or unchanged when no
/// config file is named (`--config FILE`, `--config=FILE` or `QUIVER_CONFIG`).
pub fn expand(args: Vec<OsString>, cli: &Command) -> Result<Vec<OsString>> {
    let Some(serve_at) = args.iter().position(|a| a == "serve") else {
        return Ok(args);
    };
    let mut path: Option<OsString> = None;
    let mut iter = args[serve_at + 1..].iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            path = iter.next().cloned();
        } else if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            path = Some(value.into());
        }
    }
    let path = match path.or_else(|| std::env::var_os("QUIVER_CONFIG")) {
        Some(p) if !p.is_empty() => p,
        _ => return Ok(args),
    };
    let serve = cli
        .find_subcommand("serve")
        .expect("the CLI has a serve subcommand");
    let flags = flags_from_file(Path::new(&path), cli, serve)?;
    let mut out = args;
    out.splice(serve_at + 1..serve_at + 1, flags);
    Ok(out)
}

/// The flags a config file stands for.
fn flags_from_file(path: &Path, cli: &Command, serve: &Command) -> Result<Vec<OsString>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--config {}: cannot read", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("--config {}: not valid TOML", path.display()))?;
    let mut flags = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg = serve
            .get_arguments()
            .chain(cli.get_arguments())
            .find(|a| a.get_long() == Some(long.as_str()) && long != "config");
        let Some(arg) = arg else {
            bail!(
                "--config {}: unknown setting `{key}`; settings are the long flags of \
                 `quiver serve --help` (port, host, model, api_key, …)",
                path.display()
            );
        };
        if arg
            .get_env()
            .is_some_and(|env| std::env::var_os(env).is_some())
        {
            continue;
        }
        let is_switch = matches!(arg.get_action(), ArgAction::SetTrue);
        let repeatable = matches!(arg.get_action(), ArgAction::Append);
        let flag = format!("--{long}");
        let scalar = |v: &toml::Value| -> Result<String> {
            Ok(match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => bail!(
                    "--config {}: `{key}` must be a string, number or boolean",
                    path.display()
                ),
            })
        };
        match value {
            toml::Value::Boolean(on) if is_switch => {
                if *on {
                    flags.push(flag.into());
                }
            }
            _ if is_switch => bail!(
                "--config {}: `{key}` is a switch: write `{key} = true` or `false`",
                path.display()
            ),
            toml::Value::Array(items) if repeatable => {
                for item in items {
                    flags.push(flag.clone().into());
                    flags.push(scalar(item)?.into());
                }
            }
            toml::Value::Array(_) => bail!(
                "--config {}: `{key}` takes one value, not a list",
                path.display()
            ),
            other => {
                flags.push(flag.into());
                flags.push(scalar(other)?.into());
            }
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn cli() -> Command {
        Command::new("quiver")
            .args_override_self(true)
            .arg(Arg::new("data-dir").long("data-dir").global(true))
            .subcommand(
                Command::new("serve")
                    .arg(Arg::new("config").long("config"))
                    .arg(Arg::new("port").long("port").env("QUIVER_TEST_PORT_UNSET"))
                    .arg(Arg::new("host").long("host").env("QUIVER_TEST_HOST_SET"))
                    .arg(Arg::new("model").long("model").action(ArgAction::Append))
                    .arg(
                        Arg::new("model-bf16")
                            .long("model-bf16")
                            .action(ArgAction::SetTrue),
                    ),
            )
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn settings_become_flags_after_serve_and_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("quiver.toml");
        std::fs::write(
            &file,
            "port = 7000\nhost = \"0.0.0.0\"\nmodel = [\"a=/x\", \"b=/y\"]\nmodel_bf16 = true\n\
             data_dir = \"/data\"\n",
        )
        .unwrap();
        // SAFETY: this test alone reads or writes this variable.
        unsafe { std::env::set_var("QUIVER_TEST_HOST_SET", "127.0.0.1") };
        let path = file.to_str().unwrap();
        let out = expand(
            os(&["quiver", "serve", "--config", path, "--port", "1"]),
            &cli(),
        )
        .unwrap();
        let want = os(&[
            "quiver",
            "serve",
            "--data-dir",
            "/data",
            "--model",
            "a=/x",
            "--model",
            "b=/y",
            "--model-bf16",
            "--port",
            "7000",
            "--config",
            path,
            "--port",
            "1",
        ]);
        assert_eq!(out, want);
        let m = cli().get_matches_from(out);
        let serve = m.subcommand_matches("serve").unwrap();
        assert_eq!(
            serve.get_one::<String>("port").unwrap(),
            "1",
            "the flag wins"
        );
        assert_eq!(
            serve.get_many::<String>("model").unwrap().count(),
            2,
            "models from the file"
        );
    }

    #[test]
    fn bad_settings_name_the_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let check = |body: &str, want: &str| {
            let file = dir.path().join("bad.toml");
            std::fs::write(&file, body).unwrap();
            let args = os(&["quiver", "serve", &format!("--config={}", file.display())]);
            let err = format!("{:#}", expand(args, &cli()).unwrap_err());
            assert!(err.contains(want), "{err}");
        };
        check("prot = 1\n", "unknown setting `prot`");
        check("port = [1, 2]\n", "takes one value");
        check("model_bf16 = \"yes\"\n", "is a switch");
        check("port = \n", "not valid TOML");
        let missing = os(&["quiver", "serve", "--config", "/no/such/file.toml"]);
        assert!(expand(missing, &cli()).is_err());
        let untouched = os(&["quiver", "collection", "list"]);
        assert_eq!(expand(untouched.clone(), &cli()).unwrap(), untouched);
    }
}
