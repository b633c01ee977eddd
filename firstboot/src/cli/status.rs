//! `kubeha-firstboot status`.

use anyhow::{bail, Result};

use super::StatusConfig;
use crate::engine::Journal;

/// Prints the status (stdout: machine output).
pub fn run(cfg: StatusConfig) -> Result<()> {
    let Some(s) = crate::status::load(&cfg.root)? else {
        bail!("no status yet: kubeha-firstboot has not run on this node");
    };
    if cfg.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let j = Journal::load(&cfg.root)?;
    println!(
        "node:     {} ({})",
        s.node.as_deref().unwrap_or("?"),
        s.role.as_deref().unwrap_or("?")
    );
    println!("source:   {}", s.source.as_deref().unwrap_or("?"));
    println!(
        "state:    {} (phase {}{})",
        s.state,
        s.phase,
        s.step
            .as_ref()
            .map(|t| format!(", step {t}"))
            .unwrap_or_default()
    );
    println!(
        "done:     {}",
        if j.done.is_empty() {
            "-".into()
        } else {
            j.done.join(" ")
        }
    );
    println!("started:  {}", s.started);
    println!("updated:  {}", s.updated);
    if let Some(f) = &s.finished {
        println!("finished: {f}");
    }
    if let Some(w) = &s.waiting {
        println!("waiting:  {w}");
    }
    if let Some(e) = &s.error {
        println!("error:    {e}");
    }
    Ok(())
}
