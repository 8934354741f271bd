//! `taskscope --help` and every subcommand's `--help`, held to the committed text in
//! `src/help/`: a change to what users read in the terminal shows up in review as a change
//! to those files (`INSTA_UPDATE=always cargo test -p taskscope-cli help_pinned` rewrites
//! them), and the docs that quote the help are checked against the same text.

use clap::CommandFactory;

use crate::cli::Cli;

/// Every command's long help, by its path (`taskscope`, `taskscope check`, ...), rendered
/// at a fixed width so that the terminal running the test does not matter.
fn every_help() -> Vec<(String, String)> {
    fn walk(command: &mut clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        out.push((path.to_owned(), command.render_long_help().to_string()));
        let names: Vec<String> = command
            .get_subcommands()
            .map(|sub| sub.get_name().to_owned())
            .filter(|name| name != "help")
            .filter(|name| {
                !command
                    .find_subcommand(name)
                    .is_some_and(clap::Command::is_hide_set)
            })
            .collect();
        for name in names {
            if let Some(sub) = command.find_subcommand_mut(&name) {
                walk(sub, &format!("{path} {name}"), out);
            }
        }
    }
    let mut command = Cli::command().term_width(100);
    command.build();
    let mut out = Vec::new();
    walk(&mut command, "taskscope", &mut out);
    out
}

#[test]
fn every_help_text_is_the_committed_one() {
    let helps = every_help();
    assert!(helps.len() > 5, "the commands were found: {helps:?}");
    for (path, help) in helps {
        let name = path.replace(' ', "-");
        insta::with_settings!({
            snapshot_path => "help",
            prepend_module_to_snapshot => false,
            omit_expression => true,
            description => format!("`{path} --help`"),
        }, {
            insta::assert_snapshot!(name, help);
        });
    }
}
