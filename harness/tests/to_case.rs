//! A finding becomes a suite case (`witness::finding`, `witness to-case`). The finding comes
//! from a campaign against Wasmtime with no expectations, so that the divergences the
//! repository's expectations explain (Wasmtime 48's known ones) count; the case written from it
//! must fail on Wasmtime the same way through the suite runner, be explained by those
//! expectations again, and be smaller than what the campaign generated.

use std::path::Path;

use witness::diff::{DiffConfig, run_campaign};
use witness::engine::Selection;
use witness::finding::{from_repro, to_case};
use witness::suite::cases::{Status, run_file};
use witness::suite::expectations::Expectations;

fn repository_expectations() -> Expectations {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../expectations");
    let mut paths: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.retain(|p| p.extension().is_some_and(|x| x == "toml"));
    Expectations::load(&paths).unwrap()
}

#[test]
fn a_campaign_divergence_becomes_a_failing_shrunk_case() {
    let scratch = std::env::temp_dir().join(format!("witness-to-case-test-{}", std::process::id()));
    let repro = scratch.join("repro");
    let suite = scratch.join("suite");
    std::fs::create_dir_all(&suite).unwrap();
    let none = Expectations::load(&[] as &[&Path]).unwrap();
    let wasmtime = Selection::parse("wasmtime").unwrap();
    let cfg = DiffConfig {
        seed: 1,
        worlds: 20,
        cases: 50,
        engines: vec![wasmtime.clone()],
        repro_dir: Some(repro.clone()),
        ..DiffConfig::default()
    };
    let summary = run_campaign(&cfg, &none, |_, _| {}, |_| {}).unwrap();
    let divergence = summary
        .divergences
        .iter()
        .find(|d| d.repro.is_some() && d.differences.iter().all(|x| x.area.to_string() != "compile"))
        .expect("20 worlds against Wasmtime with no expectations diverge somewhere (its known divergences)");
    let dir = divergence.repro.as_ref().unwrap();

    let finding = from_repro(dir).unwrap();
    let written = to_case(&finding, &none, &scratch.join("scratch.toml")).unwrap();
    assert!(written.steps.1 <= written.steps.0, "steps {:?}", written.steps);
    assert!(written.world_lines.1 < written.world_lines.0, "world lines {:?}", written.world_lines);

    let file = suite.join("finding.toml");
    std::fs::write(&file, &written.text).unwrap();
    let rows = run_file(&file, std::slice::from_ref(&wasmtime), &none, &|_, _, _| true).unwrap();
    let status = |engine: &str| rows.iter().find(|r| r.engine == engine).map(|r| r.status.clone());
    assert_eq!(status("reference"), Some(Status::Passed), "{}", written.text);
    let Some(Status::Failed(why)) = status("wasmtime") else { panic!("{rows:?}\n{}", written.text) };
    let area = format!("[{}]", divergence.differences[0].area);
    assert!(why.contains(&area), "the case fails otherwise than the finding ({area}): {why}");

    // The divergence was one the repository's expectations know; so is the case's.
    if divergence.differences.iter().all(|d| repository_expectations().explain("wasmtime", d).is_some()) {
        let rows = run_file(&file, &[wasmtime], &repository_expectations(), &|_, _, _| true).unwrap();
        let xfail = rows.iter().any(|r| r.engine == "wasmtime" && matches!(r.status, Status::Xfail(_)));
        assert!(xfail, "{rows:?}");
    }
    let _ = std::fs::remove_dir_all(scratch);
}
