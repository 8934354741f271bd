//! The docs held to the code: the environment tables (the README's, the guide's, the
//! probe's API docs') list exactly the variables the probe and the CLI read, `docs/ci.md`
//! lists what `check` sets with the values it sets, every flag of every command has an
//! example, the dashboard's key table is the key help the dashboard itself shows, and the
//! sizes `docs/architecture.md` quotes are the constants' values; every `taskscope`
//! command the docs and `--help` show parses, every file of the repository they name
//! exists, and CI runs the README's test command. A change to either side that the other
//! does not follow fails here, naming what to add or remove.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};

use crate::cli::Cli;
use crate::tui::keys::KEY_HELP;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    let full = workspace().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The project's markdown: the READMEs (each published crate's too), the changelog, the
/// contributing guide and every page of `docs/`.
fn markdown_docs() -> Vec<String> {
    let mut docs = vec![
        "README.md".to_owned(),
        "CHANGELOG.md".to_owned(),
        "CONTRIBUTING.md".to_owned(),
        "crates/README.md".to_owned(),
        "tests/README.md".to_owned(),
    ];
    for entry in std::fs::read_dir(workspace().join("crates")).expect("crates/") {
        let name = entry.expect("a crates entry").file_name();
        let readme = format!("crates/{}/README.md", name.to_string_lossy());
        if workspace().join(&readme).is_file() {
            docs.push(readme);
        }
    }
    for entry in std::fs::read_dir(workspace().join("docs")).expect("docs/") {
        let name = entry.expect("a docs entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".md") {
            docs.push(format!("docs/{name}"));
        }
    }
    docs
}

/// The text of every `.rs` file under `dir` (relative to the workspace).
fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut pending = vec![workspace().join(dir)];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                out.push((path, text));
            }
        }
    }
    out
}

/// Every variable name (`TASKSCOPE_` then capitals) written in `text`; `TASKSCOPE_*`
/// names none.
fn variables_in(text: &str) -> BTreeSet<String> {
    text.match_indices("TASKSCOPE_")
        .filter_map(|(at, prefix)| {
            let rest = &text[at + prefix.len()..];
            let len = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                .unwrap_or(rest.len());
            let name = rest[..len].trim_end_matches('_');
            (!name.is_empty()).then(|| format!("{prefix}{name}"))
        })
        .collect()
}

/// The probe's variables: the constants of `config.rs`'s `env` module, through which the
/// probe reads every one.
fn probe_variables() -> BTreeSet<String> {
    let config = read("crates/taskscope/src/base/config.rs");
    let start = config
        .find("mod env {")
        .expect("crates/taskscope/src/base/config.rs has a `mod env` of variable names");
    let end = start + config[start..].find("\n}").expect("the env module ends");
    variables_in(&config[start..end])
}

/// The CLI's variables: every `env = ...` of its arguments, from clap itself.
fn cli_variables() -> BTreeSet<String> {
    fn walk(command: &clap::Command, out: &mut BTreeSet<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(&Cli::command(), &mut out);
    out
}

fn all_variables() -> BTreeSet<String> {
    probe_variables().union(&cli_variables()).cloned().collect()
}

/// The variables in the first column of a doc's tables (rows starting ``| `TASKSCOPE_``).
fn table_variables(doc: &str) -> BTreeSet<String> {
    doc.lines()
        .filter_map(|line| line.strip_prefix("| `TASKSCOPE_"))
        .filter_map(|rest| rest.split('`').next())
        .map(|name| format!("TASKSCOPE_{name}"))
        .collect()
}

fn differences(expected: &BTreeSet<String>, found: &BTreeSet<String>) -> String {
    let missing: Vec<_> = expected.difference(found).collect();
    let unknown: Vec<_> = found.difference(expected).collect();
    format!("missing {missing:?}, not in the code {unknown:?}")
}

#[test]
fn the_probe_reads_variables_only_through_its_env_module() {
    let listed = probe_variables();
    assert!(
        listed.len() >= 10,
        "the env module of crates/taskscope/src/base/config.rs lists only {listed:?}"
    );
    for (path, text) in sources("crates/taskscope/src") {
        let unknown: Vec<_> = variables_in(&text).difference(&listed).cloned().collect();
        assert!(
            unknown.is_empty(),
            "{} names {unknown:?}, which config.rs's env module does not define",
            path.display()
        );
    }
}

#[test]
fn the_cli_names_only_variables_that_exist() {
    let known = all_variables();
    assert!(cli_variables().contains("TASKSCOPE_KILL_AFTER"));
    for (path, text) in sources("crates/taskscope-cli/src") {
        let unknown: Vec<_> = variables_in(&text).difference(&known).cloned().collect();
        assert!(
            unknown.is_empty(),
            "{} names {unknown:?}, which neither the probe nor the CLI reads",
            path.display()
        );
    }
}

#[test]
fn readme_and_guide_tables_list_exactly_the_variables_read() {
    let expected = all_variables();
    for doc in ["README.md", "docs/guide.md"] {
        let found = table_variables(&read(doc));
        assert_eq!(
            found,
            expected,
            "{doc}'s variable tables: {}",
            differences(&expected, &found)
        );
    }
}

/// The variable that makes the protocol code's test rewrite the committed copy, which the
/// contributing guide names: read by that test, not by the probe or the CLI.
fn maintainer_variables() -> BTreeSet<String> {
    variables_in(&read("crates/taskscope-api/tests/generated_is_fresh.rs"))
}

/// The variables in the first column of the settings table of the probe's API docs
/// (`crates/taskscope/src/lib.rs`, rows starting ``//! | `TASKSCOPE_``); a row may name
/// two (`TASKSCOPE_TLS_CERT`, `TASKSCOPE_TLS_KEY`).
fn api_docs_table_variables() -> BTreeSet<String> {
    read("crates/taskscope/src/lib.rs")
        .lines()
        .filter_map(|line| line.strip_prefix("//! | `TASKSCOPE_"))
        .filter_map(|rest| rest.split(" |").next())
        .flat_map(|first| variables_in(&format!("`TASKSCOPE_{first}")))
        .collect()
}

#[test]
fn the_probes_api_docs_list_exactly_the_variables_it_reads() {
    let expected = probe_variables();
    let found = api_docs_table_variables();
    assert_eq!(
        found,
        expected,
        "the settings table of crates/taskscope/src/lib.rs: {}",
        differences(&expected, &found)
    );
}

/// The variables `check` gives the processes it starts (`check/child.rs`, each
/// `.env("TASKSCOPE_…", value)`), with the value where it is a literal.
fn check_sets() -> Vec<(String, Option<String>)> {
    let code = read("crates/taskscope-cli/src/check/child.rs");
    code.split(".env(")
        .skip(1)
        .filter_map(|call| {
            let call = call.trim_start().strip_prefix('"')?;
            let (name, rest) = call.split_once('"')?;
            let value = rest
                .trim_start()
                .strip_prefix(',')?
                .trim_start()
                .strip_prefix('"')
                .and_then(|literal| literal.split_once('"'))
                .map(|(value, _)| value.to_owned());
            name.starts_with("TASKSCOPE_")
                .then(|| (name.to_owned(), value))
        })
        .collect()
}

#[test]
fn the_ci_docs_list_exactly_what_check_sets() {
    let sets = check_sets();
    assert!(sets.len() >= 4, "only {sets:?} found in check/child.rs");
    let docs = read("docs/ci.md");
    let rows: Vec<&str> = docs
        .lines()
        .skip_while(|line| !line.starts_with("`check` gives the processes it starts"))
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .collect();
    let expected: BTreeSet<String> = sets.iter().map(|(name, _)| name.clone()).collect();
    let found: BTreeSet<String> = rows.iter().flat_map(|row| variables_in(row)).collect();
    assert_eq!(
        found,
        expected,
        "docs/ci.md's table of what `check` sets: {}",
        differences(&expected, &found)
    );
    for (name, value) in sets {
        let Some(value) = value else { continue };
        let row = format!("| `{name}` | `{value}` |");
        assert!(
            rows.iter().any(|line| line.starts_with(&row)),
            "check/child.rs sets {name}={value}; docs/ci.md's table should say `{row}`"
        );
    }
}

#[test]
fn docs_name_only_variables_that_exist() {
    let known: BTreeSet<String> = all_variables()
        .union(&maintainer_variables())
        .cloned()
        .collect();
    for doc in markdown_docs() {
        let unknown: Vec<_> = variables_in(&read(&doc))
            .difference(&known)
            .cloned()
            .collect();
        assert!(
            unknown.is_empty(),
            "{doc} names {unknown:?}, which neither the probe nor the CLI reads"
        );
    }
}

/// Whether `line` has `--flag` as a whole flag (not the start of a longer one).
/// Where the docs name this repository's own files: the crates (`crates/taskscope…`) and
/// the end-to-end suites (`tests/tests/…`, `tests/src/…`). Paths the docs show as a
/// user's (`tests/api.rs`, `crates/app/…`) have other prefixes.
const REPOSITORY_PREFIXES: [&str; 3] = ["crates/taskscope", "tests/tests/", "tests/src/"];

/// The repository paths `text` names (a `:line:col` or `:*` after one cut off), where a
/// path starts a word (after a space, a backtick, a parenthesis or a bracket).
fn repository_paths(text: &str) -> BTreeSet<String> {
    let in_path = |c: char| c.is_ascii_alphanumeric() || "_-./".contains(c);
    REPOSITORY_PREFIXES
        .iter()
        .flat_map(|prefix| text.match_indices(prefix))
        .filter(|(at, _)| {
            text[..*at]
                .chars()
                .next_back()
                .is_none_or(|c| " \n`([".contains(c))
        })
        .map(|(at, _)| {
            let rest = &text[at..];
            let len = rest.find(|c: char| !in_path(c)).unwrap_or(rest.len());
            rest[..len].trim_end_matches('.').to_owned()
        })
        .collect()
}

#[test]
fn every_repository_path_the_docs_name_exists() {
    let mut missing = Vec::new();
    for doc in markdown_docs() {
        for path in repository_paths(&read(&doc)) {
            if !workspace().join(&path).exists() {
                missing.push(format!("{doc}: {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the docs name files that do not exist (moved or renamed? follow them in the \
         docs): {missing:#?}"
    );
}

fn has_flag(line: &str, flag: &str) -> bool {
    line.match_indices(flag).any(|(at, _)| {
        let next = line[at + flag.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

#[test]
fn every_flag_of_every_command_has_an_example_in_the_guide_or_ci_docs() {
    let docs = format!("{}\n{}", read("docs/guide.md"), read("docs/ci.md"));
    let root = Cli::command();
    let global: Vec<_> = root
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .collect();
    let mut missing = Vec::new();
    for sub in root.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        let invocation = format!("taskscope {}", sub.get_name());
        let flags = sub.get_arguments().chain(global.iter().copied());
        for long in flags
            .filter(|arg| !arg.is_hide_set())
            .filter_map(|arg| arg.get_long())
            .filter(|long| !matches!(*long, "help" | "version"))
        {
            let flag = format!("--{long}");
            let shown = docs
                .lines()
                .any(|line| line.contains(&invocation) && has_flag(line, &flag));
            // A global flag needs one example, with any command.
            let shown_global = global.iter().any(|g| g.get_long() == Some(long))
                && docs
                    .lines()
                    .any(|line| line.contains("taskscope ") && has_flag(line, &flag));
            if !(shown || shown_global) {
                missing.push(format!("{invocation} {flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "no example (a line with the command and the flag) in docs/guide.md or docs/ci.md \
         for: {missing:?}"
    );
}

/// The markdown table `docs/dashboard.md` must hold: each row of the key help, its keys
/// in backticks.
fn key_table() -> Vec<String> {
    KEY_HELP
        .iter()
        .map(|row| {
            let keys: Vec<String> = row
                .keys
                .split(", ")
                .map(|group| {
                    let names: Vec<String> =
                        group.split(' ').map(|name| format!("`{name}`")).collect();
                    names.join(" ")
                })
                .collect();
            format!("| {} | {} |", keys.join(", "), row.does)
        })
        .collect()
}

#[test]
fn the_dashboard_docs_list_exactly_the_keys_of_the_help() {
    let docs = read("docs/dashboard.md");
    let section = docs
        .split("\n## Keys\n")
        .nth(1)
        .expect("docs/dashboard.md has a `## Keys` section");
    let rows: Vec<&str> = section
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .collect();
    let expected = key_table();
    assert!(
        rows == expected,
        "docs/dashboard.md's key table differs from the key help (tui/keys.rs KEY_HELP); \
         it should read:\n| key | does |\n|---|---|\n{}",
        expected.join("\n")
    );
}

#[test]
fn ci_runs_the_readmes_test_command_and_the_readme_names_plain_cargo_test() {
    let readme = read("README.md");
    let ci = read(".ci/run");
    let commands: Vec<&str> = readme
        .lines()
        .filter(|line| line.starts_with("cargo "))
        .map(|line| line.split(" #").next().unwrap_or(line).trim())
        .collect();
    assert!(
        commands.contains(&"cargo test --workspace"),
        "the README's set-up names no plain `cargo test --workspace`: {commands:?}"
    );
    let nextest = commands
        .iter()
        .find(|command| command.starts_with("cargo nextest run"))
        .expect("the README's set-up names its `cargo nextest run` command");
    assert!(
        ci.lines().any(|line| line.starts_with(nextest)),
        ".ci/run does not run the README's test command `{nextest}`"
    );
}

/// `line` split as a shell would for the simple commands the docs show: words, with
/// `'...'` and `"..."` quoting; `None` if a quote is left open.
fn shell_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    quote.is_none().then_some(words)
}

/// Every `taskscope ...` command in the docs' code blocks (prompt, comment and pipe
/// removed), with where it is; synopses (`[OPTIONS]`) left out.
fn documented_commands() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for doc in markdown_docs() {
        // The language of the code block the line is in, if any.
        let mut block: Option<&str> = None;
        let text = read(&doc);
        for (number, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if let Some(language) = trimmed.strip_prefix("```") {
                block = if block.is_some() {
                    None
                } else {
                    Some(language)
                };
                continue;
            }
            // Shell blocks hold commands; other blocks (screens, output) only after a prompt.
            let shell = matches!(block, Some("sh" | "bash" | "shell" | "console"));
            let command = match trimmed.strip_prefix("$ ") {
                Some(command) if block.is_some() => command,
                _ if shell => trimmed,
                _ => continue,
            };
            let command = command.split(" #").next().unwrap_or(command);
            let command = command.split(" | ").next().unwrap_or(command);
            let command = command.split(';').next().unwrap_or(command).trim();
            if command.starts_with("taskscope ") && !command.contains("[OPTIONS]") {
                out.push((format!("{doc}:{}", number + 1), command.to_owned()));
            }
        }
    }
    out
}

/// The examples of `--help`: the `taskscope ...` lines of each command's long help.
fn help_examples() -> Vec<(String, String)> {
    let root = Cli::command();
    let mut out = Vec::new();
    for sub in root.get_subcommands() {
        let help = sub
            .get_long_about()
            .map(ToString::to_string)
            .unwrap_or_default();
        for line in help.lines().map(str::trim) {
            let command = line.split(" | ").next().unwrap_or(line).trim();
            if command.starts_with("taskscope ") {
                let at = format!("taskscope {} --help", sub.get_name());
                out.push((at, command.to_owned()));
            }
        }
    }
    out
}

#[test]
fn every_documented_command_parses() {
    let mut commands = documented_commands();
    let examples = help_examples();
    assert!(examples.len() >= 10, "only {examples:?} in --help");
    commands.extend(examples);
    assert!(
        commands.len() >= 20,
        "only {} commands found",
        commands.len()
    );
    let mut refused = Vec::new();
    for (at, command) in commands {
        let Some(words) = shell_words(&command) else {
            refused.push(format!("{at}: `{command}`: an open quote"));
            continue;
        };
        if let Err(e) = Cli::try_parse_from(&words) {
            let why = e.to_string();
            let why = why.lines().next().unwrap_or_default().to_owned();
            refused.push(format!("{at}: `{command}`: {why}"));
        }
    }
    assert!(
        refused.is_empty(),
        "the docs show commands taskscope refuses:\n{}",
        refused.join("\n")
    );
}

/// The sizes `docs/architecture.md` quotes, each with the constant that sets it: the file
/// (found by name anywhere under `crates/taskscope/src`, so that moving it between
/// folders does not matter), the constant, and the phrase the docs quote it in, `{}`
/// standing for its value (counts as `16,384`, byte sizes as `16 MiB`).
const QUOTED_SIZES: [(&str, &str, &str); 8] = [
    ("task_table.rs", "INDEX_SLOTS", "{}-slot index"),
    ("task_table.rs", "SHARDS", "one of {} shard locks"),
    ("watchers.rs", "BUDGET", "{} beyond the first snapshot"),
    (
        "server.rs",
        "STREAMS_PER_CONNECTION",
        "connections of {} streams",
    ),
    ("recycle.rs", "POOL", "a pool of at most {}"),
    ("intern.rs", "MAX_NAMES", "at most {} names"),
    ("aggregator.rs", "RETAINED_STALLS", "Ended stalls: {}"),
    ("aggregator.rs", "MAX_UPDATE_BYTES", "No message over {}"),
];

/// The value of `const NAME: type = EXPR;` in the one file called `file` under the
/// probe's sources, where EXPR is a product of integers and shifts (`16 * 1024`,
/// `1_000`, `1 << 20`).
fn constant(file: &str, name: &str) -> u64 {
    let mut found: Vec<u64> = sources("crates/taskscope/src")
        .into_iter()
        .filter(|(path, _)| path.file_name().is_some_and(|f| f == file))
        .filter_map(|(path, text)| {
            let at = text.find(&format!("const {name}: "))?;
            let (_, rest) = text[at..].split_once('=')?;
            let expression = rest.split(';').next()?.replace('_', "");
            let value = expression
                .split('*')
                .map(|term| match term.split_once("<<") {
                    Some((base, shift)) => {
                        Some(base.trim().parse::<u64>().ok()? << shift.trim().parse::<u32>().ok()?)
                    }
                    None => term.trim().parse::<u64>().ok(),
                });
            let product = value.product::<Option<u64>>();
            Some(product.unwrap_or_else(|| {
                panic!("{}: `{name}` is not a product of integers", path.display())
            }))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "`const {name}` in one file called {file}: {found:?}"
    );
    found.remove(0)
}

/// `value` as the docs write it: a byte size in whole MiB (`16 MiB`) when `MiB` is meant,
/// otherwise with thousands separated (`16,384`).
fn as_docs_write(value: u64, bytes: bool) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes && value.is_multiple_of(MIB) {
        return format!("{} MiB", value / MIB);
    }
    let digits = value.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[test]
fn the_sizes_the_architecture_quotes_are_the_codes() {
    // Line breaks and indentation are spaces to a reader.
    let docs = read("docs/architecture.md")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut wrong = Vec::new();
    for (file, name, phrase) in QUOTED_SIZES {
        let bytes = name.ends_with("BYTES") || name == "BUDGET";
        let quoted = phrase.replace("{}", &as_docs_write(constant(file, name), bytes));
        if !docs.contains(&quoted) {
            wrong.push(format!("{file} {name}: \"{quoted}\""));
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/architecture.md does not quote these sizes as the code sets them (say them \
         so, or follow a change of wording in QUOTED_SIZES): {wrong:#?}"
    );
}
