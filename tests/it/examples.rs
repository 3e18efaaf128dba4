//! The CI examples under `examples/` are valid YAML with the shape their CI expects, every
//! `ca-replay` command in them parses with the real command line (so they cannot drift from it),
//! and `run` and `diff` pseudonymize with the key from a CI secret.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn load(name: &str) -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(docs.len(), 1, "{name}: one YAML document");
    docs.remove(0)
}

/// Splits a shell command line into words: double and single quotes group, `&&`, `||`, `;` and
/// newlines end a command. Enough for the examples' commands (no nested quoting).
fn commands(script: &str) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, ' ' | '\t') => out.last_mut().unwrap().extend(word.take()),
            (None, '\n' | ';') => {
                out.last_mut().unwrap().extend(word.take());
                out.push(Vec::new());
            }
            (None, '&' | '|') if chars.peek() == Some(&c) => {
                chars.next();
                out.last_mut().unwrap().extend(word.take());
                out.push(Vec::new());
            }
            (None, '\\') if chars.peek() == Some(&'\n') => {
                chars.next();
            }
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.last_mut().unwrap().extend(word.take());
    out.retain(|c| !c.is_empty());
    out
}

/// Every `ca-replay …` command of `scripts` parses; returns the subcommands seen.
fn check_commands(name: &str, scripts: &[&str]) -> Vec<String> {
    use clap::Parser;
    let mut seen = Vec::new();
    for script in scripts {
        for words in commands(script) {
            if words[0] != "ca-replay" {
                continue;
            }
            if let Err(e) = ca_replay::cli::Cli::try_parse_from(&words) {
                panic!("{name}: `{}` does not parse:\n{e}", words.join(" "));
            }
            seen.push(words[1].clone());
        }
    }
    seen.sort();
    seen.dedup();
    seen
}

fn str_of<'a>(y: &'a Yaml, key: &str) -> Option<&'a str> {
    y[key].as_str()
}

/// A step that runs `ca-replay … --pseudonymize` maps the key from a secret into its own
/// environment (`expected`: how the CI names the secret), and `run` and `diff` both use it.
fn check_pseudonymized(name: &str, steps: &[(&Yaml, &str)], expected: &str) {
    let mut pseudonymized = Vec::new();
    for (step, script) in steps {
        for words in commands(script) {
            if words[0] == "ca-replay" && words.iter().any(|w| w == "--pseudonymize") {
                assert_eq!(
                    str_of(&step["env"], "CA_REPLAY_PSEUDONYM_KEY"),
                    Some(expected),
                    "{name}: `{}` has no key from the secret",
                    words.join(" ")
                );
                pseudonymized.push(words[1].clone());
            }
        }
    }
    pseudonymized.sort();
    assert_eq!(pseudonymized, ["diff", "run"], "{name}");
}

#[test]
fn github_actions_workflow_is_valid() {
    let w = load("github-actions.yml");
    assert!(str_of(&w, "name").is_some());
    assert!(
        !w["on"]["pull_request"].is_badvalue(),
        "triggers on pull requests"
    );
    let jobs = w["jobs"].as_hash().expect("jobs");
    assert!(!jobs.is_empty());
    let mut scripts = Vec::new();
    let mut steps = Vec::new();
    for (job, j) in jobs {
        assert!(str_of(j, "runs-on").is_some(), "{job:?}: runs-on");
        for step in j["steps"].as_vec().expect("steps") {
            let uses = str_of(step, "uses");
            let run = str_of(step, "run");
            assert!(
                uses.is_some() != run.is_some(),
                "{job:?}: a step has exactly one of `uses` and `run`: {step:?}"
            );
            if let Some(u) = uses {
                let (action, version) = u.split_once('@').expect("actions pinned with @");
                assert!(action.contains('/') && !version.is_empty(), "{u}");
            }
            scripts.extend(run);
            steps.extend(run.map(|r| (step, r)));
        }
    }
    assert_eq!(
        check_commands("github-actions.yml", &scripts),
        ["diff", "lint", "run"]
    );
    check_pseudonymized(
        "github-actions.yml",
        &steps,
        "${{ secrets.CA_REPLAY_PSEUDONYM_KEY }}",
    );
}

#[test]
fn azure_devops_pipeline_is_valid() {
    let p = load("azure-pipelines.yml");
    assert!(!p["pr"].is_badvalue(), "triggers on pull requests");
    let steps = p["steps"].as_vec().expect("steps");
    let mut scripts = Vec::new();
    let mut with_script = Vec::new();
    for step in steps {
        let kinds: Vec<&str> = ["script", "task", "checkout", "publish", "bash"]
            .into_iter()
            .filter(|k| !step[*k].is_badvalue())
            .collect();
        assert_eq!(kinds.len(), 1, "one step kind: {step:?}");
        if let Some(task) = str_of(step, "task") {
            assert!(task.contains('@'), "tasks name their major version: {task}");
            scripts.extend(str_of(&step["inputs"], "inlineScript"));
        }
        scripts.extend(str_of(step, "script"));
        with_script.extend(str_of(step, "script").map(|r| (step, r)));
    }
    assert_eq!(
        check_commands("azure-pipelines.yml", &scripts),
        ["diff", "lint", "run"]
    );
    check_pseudonymized(
        "azure-pipelines.yml",
        &with_script,
        "$(CA_REPLAY_PSEUDONYM_KEY)",
    );
}

#[test]
fn shell_words_split_like_a_shell() {
    assert_eq!(
        commands("a \"b c\" 'd'\\\n e && f || g; h\n"),
        [vec!["a", "b c", "d", "e"], vec!["f"], vec!["g"], vec!["h"]]
    );
}
