//! Boot config edits, as lorax's mkksiso makes them (weldr/lorax
//! `src/pylorax/cmdline/mkksiso.py`: the udev-escaped volume id and the `append`/`linux`/`linuxefi` edits), as pure text functions, plus what
//! mkksiso leaves alone: [`remaster_config`] makes the unattended install the default entry without the media
//! check ([`isolinux_install_default`], [`grub_install_default`]) and sets the UEFI kernel commands of the
//! medium's release ([`grub_efi_commands`]); [`parse_append`]/[`parse_remove`] check the operator's arguments.
//!
//! Kernel arguments are an ordered multimap: the arguments named in `remove` are dropped (every occurrence), then
//! the new ones are appended. Unlike mkksiso's shlex split, backslashes are kept verbatim, so an escaped label like
//! `hd:LABEL=CentOS\x207\x20x86_64` survives; double-quoted values stay one argument (the kernel's splitting rules,
//! [`kubeha_model::kernel_args::split`]).

/// Characters udev escapes in a label (`\xNN`): ASCII printable minus `a-zA-Z0-9#+.:=@_-`, plus control chars
/// (lorax `udev_escape`).
const UDEV_BLACKLIST: &str = " !\"$%&'()*,/;<>?[\\]^`{|}~";

/// Escapes a volume id the way udev names `/dev/disk/by-label/` (and lorax writes `hd:LABEL=`).
pub fn udev_escape(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if UDEV_BLACKLIST.contains(c) || (c as u32) < 32 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// One kernel argument: `key` or `key=value` (the model's, quotes kept as written).
pub use kubeha_model::kernel_args::Arg;

/// Splits a kernel command line at unquoted ASCII whitespace, quotes kept (the model's one splitter).
pub use kubeha_model::kernel_args::split as split_args;

/// Removes every argument whose key is in `remove` or starts with a `remove` entry ending in `.` (a prefix like
/// `kubeha.`), then appends `add`.
pub fn alter_args(args: Vec<Arg>, remove: &[&str], add: &[Arg]) -> Vec<Arg> {
    let drop = |k: &str| {
        remove.iter().any(|r| {
            if r.ends_with('.') {
                k.starts_with(r)
            } else {
                k == *r
            }
        })
    };
    let mut out: Vec<Arg> = args.into_iter().filter(|a| !drop(&a.key)).collect();
    out.extend(add.iter().cloned());
    out
}

/// One change to the kernel arguments of every install entry: drop the arguments named in `remove` (a name
/// removes `NAME` and `NAME=...`; a name ending in `.` removes every argument with that prefix), then append `add`
/// (like mkksiso's `--rm-args` and `-c`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgEdit {
    /// Names (or `prefix.`) to drop.
    pub remove: Vec<String>,
    /// Arguments to append.
    pub add: Vec<Arg>,
}

impl ArgEdit {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }

    /// Applies the edit to an argument list. An argument already there exactly as one being added is dropped
    /// first, so editing an edited config again (remastering a remastered ISO) does not repeat it.
    pub fn apply(&self, args: Vec<Arg>) -> Vec<Arg> {
        let remove: Vec<&str> = self.remove.iter().map(String::as_str).collect();
        let args = args.into_iter().filter(|a| !self.add.contains(a)).collect();
        alter_args(args, &remove, &self.add)
    }
}

/// Characters that would end or change a kernel line in one of the configs kubeha writes: quotes (isolinux
/// keeps them, GRUB and iPXE parse them), `$` (GRUB and iPXE expand variables), `;` `|` `&` `<` `>` `{` `}`
/// (GRUB script and iPXE syntax), `#` (a GRUB comment), a backtick, and control characters (a newline starts a
/// new config line).
const UNSAFE_IN_CONFIGS: &str = "\"'`$;|&<>{}#";

/// Parses `--append` values (each one or more whitespace-separated `NAME` or `NAME=VALUE`, like mkksiso's `-c`):
/// an argument that would break an isolinux, GRUB or iPXE config is refused with the flag named.
pub fn parse_append(flag: &str, values: &[String]) -> crate::Result<Vec<Arg>> {
    let mut out = Vec::new();
    for v in values {
        if let Some(c) = v
            .chars()
            .find(|c| c.is_control() && !matches!(c, ' ' | '\t'))
        {
            return Err(bad_arg(
                flag,
                v,
                &format!(
                    "contains {} (a boot config line cannot hold it)",
                    c.escape_default()
                ),
            ));
        }
        if let Some(c) = v.chars().find(|c| UNSAFE_IN_CONFIGS.contains(*c)) {
            return Err(bad_arg(
                flag,
                v,
                &format!(
                    "contains '{c}', which would break the isolinux, GRUB or iPXE config line"
                ),
            ));
        }
        // No quotes (refused above): the words are the arguments.
        let words = split_args(v);
        if words.is_empty() {
            return Err(bad_arg(flag, v, "is empty"));
        }
        for w in words {
            if w.key.is_empty() {
                return Err(bad_arg(flag, v, &format!("'{w}' has no name before '='")));
            }
            out.push(w);
        }
    }
    Ok(out)
}

/// Parses `--remove-arg` values (like mkksiso's `--rm-args`): each a kernel argument name; `NAME` and every
/// `NAME=...` are removed.
pub fn parse_remove(flag: &str, values: &[String]) -> crate::Result<Vec<String>> {
    let mut out = Vec::new();
    for v in values {
        let ok = !v.is_empty()
            && !v.ends_with('.')
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            let why = if v.contains('=') {
                "takes the argument's name only, not a value (NAME removes NAME and NAME=...)"
            } else {
                "is not a kernel argument name (letters, digits, '.', '_', '-')"
            };
            return Err(bad_arg(flag, v, why));
        }
        out.push(v.clone());
    }
    Ok(out)
}

fn bad_arg(flag: &str, v: &str, why: &str) -> crate::Error {
    crate::Error::Value {
        field: flag.into(),
        message: format!("'{}' {why}", v.escape_default()),
    }
}

fn join(args: &[Arg]) -> String {
    args.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Edits the lines whose first word is one of `commands`: returns the new text and how many lines changed.
fn edit_lines(
    text: &str,
    commands: &[&str],
    edits: &[ArgEdit],
    keep_first: usize,
) -> (String, usize) {
    let mut out = String::with_capacity(text.len() + 256);
    let mut n = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let eol = &line[body.len()..];
        let trimmed = body.trim_start();
        let first = trimmed.split_whitespace().next().unwrap_or("");
        if commands.contains(&first) {
            let indent = &body[..body.len() - trimmed.len()];
            let rest = trimmed[first.len()..].trim();
            let args = split_args(rest);
            // grub's `linux PATH args...`: the kernel path stays first.
            let (head, tail) = args.split_at(keep_first.min(args.len()));
            let mut new = head.to_vec();
            new.extend(edits.iter().fold(tail.to_vec(), |a, e| e.apply(a)));
            out.push_str(&format!("{indent}{first} {}{eol}", join(&new)));
            n += 1;
        } else {
            out.push_str(line);
        }
    }
    (out, n)
}

/// Edits an isolinux/syslinux/pxelinux config: every line whose first word is `append`, the edits applied in
/// order.
pub fn edit_isolinux(text: &str, edits: &[ArgEdit]) -> (String, usize) {
    edit_lines(text, &["append", "APPEND"], edits, 0)
}

/// Edits a GRUB config: every line whose first word is `linux`, `linuxefi` or `linux16` (the kernel path kept).
pub fn edit_grub(text: &str, edits: &[ArgEdit]) -> (String, usize) {
    edit_lines(text, &["linux", "linuxefi", "linux16"], edits, 1)
}

/// The argument that makes dracut verify the medium's checksum before anything else (minutes on a DVD).
pub const MEDIA_CHECK: &str = "rd.live.check";

/// What [`isolinux_install_default`] and [`grub_install_default`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultEntry {
    /// The entry now default: the isolinux label or the GRUB menu title.
    pub entry: String,
    /// Whether it was made from the media-check entry (the base had no plain install entry).
    pub added: bool,
}

fn first_word(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or("")
}

/// The first two words of an isolinux line, lowercase (its keywords are case-insensitive).
fn two_words(line: &str) -> (String, String) {
    let mut w = line.split_whitespace().map(str::to_ascii_lowercase);
    (w.next().unwrap_or_default(), w.next().unwrap_or_default())
}

fn has_media_check(line: &str) -> bool {
    line.split_whitespace()
        .any(|w| w == MEDIA_CHECK || w.starts_with("rd.live.check="))
}

fn drop_media_check(line: &str) -> String {
    let body = line.trim_end_matches(['\n', '\r']);
    let eol = &line[body.len()..];
    let trimmed = body.trim_start();
    let indent = &body[..body.len() - trimmed.len()];
    let words: Vec<&str> = trimmed
        .split_whitespace()
        .filter(|w| *w != MEDIA_CHECK && !w.starts_with("rd.live.check="))
        .collect();
    format!("{indent}{}{eol}", words.join(" "))
}

/// Makes the unattended install the default of an isolinux menu, without the media check.
///
/// lorax's isolinux.cfg (every EL release) marks `label check` ("Test this media & install", with
/// `rd.live.check`) `menu default`; mkksiso keeps that, so every unattended install first spends minutes
/// checking the DVD. Here the first top-level entry whose `append` has no `rd.live.check` (lorax's `label
/// linux`) gets the only top-level `menu default`, and a `default LABEL` directive (no menu) names it. When the
/// base has no such entry, one is made from the media-check entry without `rd.live.check` and put before it. The
/// media-check entry stays, not default. `None` when the menu has no top-level kernel entry at all.
pub fn isolinux_install_default(text: &str) -> Option<(String, DefaultEntry)> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // Top-level label blocks: [start, end) line ranges.
    let mut blocks: Vec<(usize, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut open: Option<usize> = None;
    for (i, l) in lines.iter().enumerate() {
        let (w, second) = two_words(l);
        let ends = w == "label" || (w == "menu" && (second == "begin" || second == "end"));
        if ends {
            if let Some(s) = open.take() {
                blocks.push((s, i));
            }
        }
        if w == "menu" && second == "begin" {
            depth += 1;
        } else if w == "menu" && second == "end" {
            depth = depth.saturating_sub(1);
        } else if w == "label" && depth == 0 {
            open = Some(i);
        }
    }
    if let Some(s) = open {
        blocks.push((s, lines.len()));
    }
    let append_of = |(s, e): (usize, usize)| {
        (s..e).find(|&i| first_word(lines[i]).eq_ignore_ascii_case("append"))
    };
    let label_of =
        |(s, _): (usize, usize)| lines[s].split_whitespace().nth(1).unwrap_or("").to_string();
    let kernels: Vec<(usize, usize)> = blocks
        .iter()
        .copied()
        .filter(|b| append_of(*b).is_some())
        .collect();
    let plain = kernels
        .iter()
        .copied()
        .find(|b| !has_media_check(lines[append_of(*b).expect("has append")]));
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + 8);
    let (install, added, insert_at) = match plain {
        Some(b) => (b, false, None),
        None => {
            let check = *kernels.first()?;
            (check, true, Some(check.0))
        }
    };
    let in_install = |i: usize| i >= install.0 && i < install.1;
    let install_label = if added {
        "kubeha".to_string()
    } else {
        label_of(install)
    };
    // The indentation the block's own lines use.
    let indent = (install.0 + 1..install.1)
        .map(|i| lines[i])
        .find(|l| !l.trim().is_empty())
        .map(|l| l[..l.len() - l.trim_start().len()].to_string())
        .unwrap_or_else(|| "  ".into());
    // A copy ends at its append line (what follows, separators and blank lines, belongs to the menu).
    let copy_end = append_of(install).map_or(install.1, |a| a + 1);
    let new_block = |out: &mut Vec<String>, copy: bool| {
        let end = if copy { copy_end } else { install.1 };
        for (n, l) in lines[install.0..end].iter().enumerate() {
            let (w, second) = two_words(l);
            if w == "menu" && second == "default" {
                continue;
            }
            if n == 0 {
                if copy {
                    out.push(format!("label {install_label}\n"));
                } else {
                    out.push(l.to_string());
                }
                out.push(format!("{indent}menu default\n"));
                continue;
            }
            if copy && w == "menu" && second == "label" {
                out.push(format!(
                    "{indent}menu label ^Install (kubeha: unattended, wipes the disk)\n"
                ));
                continue;
            }
            if w == "append" {
                out.push(drop_media_check(l));
            } else {
                out.push(l.to_string());
            }
        }
        if copy {
            out.push("\n".into());
        }
    };
    let mut depth = 0usize;
    for (i, l) in lines.iter().enumerate() {
        if Some(i) == insert_at {
            new_block(&mut out, true);
        }
        let (w, second) = two_words(l);
        if w == "menu" && second == "begin" {
            depth += 1;
        } else if w == "menu" && second == "end" {
            depth = depth.saturating_sub(1);
        }
        if !added && in_install(i) {
            if i == install.0 {
                new_block(&mut out, false);
            }
            continue;
        }
        if depth == 0 && w == "menu" && second == "default" {
            continue;
        }
        if depth == 0 && w == "default" && !second.ends_with(".c32") && !second.is_empty() {
            // No menu module: `default` names the entry itself.
            out.push(format!("default {install_label}\n"));
            continue;
        }
        out.push(l.to_string());
    }
    Some((
        out.concat(),
        DefaultEntry {
            entry: install_label,
            added,
        },
    ))
}

/// Counts `{` and `}` outside quotes on a GRUB config line (menu titles are quoted).
fn brace_delta(line: &str) -> i32 {
    let mut d = 0;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '{') => d += 1,
            (None, '}') => d -= 1,
            (None, '#') => break,
            _ => {}
        }
    }
    d
}

/// The quoted title of a `menuentry 'TITLE' ...` line.
fn grub_title(line: &str) -> String {
    let t = line.trim_start();
    let rest = t[first_word(t).len()..].trim_start();
    match rest.chars().next() {
        Some(q @ ('\'' | '"')) => rest[1..].split(q).next().unwrap_or("").to_string(),
        _ => first_word(rest).to_string(),
    }
}

/// Makes the unattended install the default of a GRUB menu (`EFI/BOOT/grub.cfg`, `BOOT.conf`,
/// `boot/grub2/grub.cfg`), without the media check.
///
/// lorax's grub.cfg says `set default="1"`: the second entry, "Test this media & install" with `rd.live.check`.
/// Here `set default` names the first top-level `menuentry` whose kernel line has no `rd.live.check` (by its
/// index among the top-level entries and submenus, as GRUB counts); when there is none, one is made from the
/// media-check entry without `rd.live.check` and put before it. `None` when there is no top-level kernel entry.
pub fn grub_install_default(text: &str) -> Option<(String, DefaultEntry)> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // Top-level menuentry/submenu blocks: (start, end exclusive, is menuentry).
    let mut blocks: Vec<(usize, usize, bool)> = Vec::new();
    let mut depth = 0i32;
    let mut open: Option<(usize, bool)> = None;
    for (i, l) in lines.iter().enumerate() {
        let w = first_word(l);
        if depth == 0 && (w == "menuentry" || w == "submenu") {
            open = Some((i, w == "menuentry"));
        }
        depth += brace_delta(l);
        if depth <= 0 {
            depth = 0;
            if let Some((s, m)) = open.take() {
                blocks.push((s, i + 1, m));
            }
        }
    }
    let kernel_line = |(s, e): (usize, usize)| {
        (s..e).find(|&i| matches!(first_word(lines[i]), "linux" | "linuxefi" | "linux16"))
    };
    let entries: Vec<(usize, usize, usize)> = blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| b.2)
        .filter_map(|(n, b)| kernel_line((b.0, b.1)).map(|k| (n, b.0, k)))
        .collect();
    let plain = entries
        .iter()
        .find(|(_, _, k)| !has_media_check(lines[*k]))
        .copied();
    let (index, start, added) = match plain {
        Some((n, s, _)) => (n, s, false),
        None => {
            let (n, s, _) = *entries.first()?;
            (n, s, true)
        }
    };
    let block = blocks[index];
    let title = if added {
        let t = grub_title(lines[start]);
        let new = t.replacen("Test this media & install", "Install", 1);
        if new == t {
            format!("Install (kubeha) {t}")
        } else {
            new
        }
    } else {
        grub_title(lines[start])
    };
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + 8);
    let mut set_default = false;
    let mut depth = 0i32;
    for (i, l) in lines.iter().enumerate() {
        if added && i == start {
            // The media-check entry's own line, retitled.
            out.push(l.replacen(&grub_title(l), &title, 1));
            for m in lines.iter().take(block.1).skip(start + 1) {
                if matches!(first_word(m), "linux" | "linuxefi" | "linux16") {
                    out.push(drop_media_check(m));
                } else {
                    out.push(m.to_string());
                }
            }
        }
        let t = l.trim_start();
        if depth == 0 && first_word(t) == "set" && t[3..].trim_start().starts_with("default=") {
            if !set_default {
                out.push(format!("set default=\"{index}\"\n"));
                set_default = true;
            }
        } else if !added
            && i > start
            && i < block.1
            && matches!(first_word(l), "linux" | "linuxefi" | "linux16")
        {
            out.push(drop_media_check(l));
        } else {
            out.push(l.to_string());
        }
        depth = (depth + brace_delta(l)).max(0);
    }
    if !set_default {
        out.insert(0, format!("set default=\"{index}\"\n"));
    }
    Some((
        out.concat(),
        DefaultEntry {
            entry: title,
            added,
        },
    ))
}

/// The GRUB commands that load the installer's kernel and initrd on UEFI, per EL release and architecture, as
/// each release's own install media write them (lorax's `grub2-efi.cfg` on its rhel7-branch, rhel8-branch and
/// rhel9-branch, which RHEL, CentOS, Rocky and Alma media are made from): `linuxefi`/`initrdefi` on x86_64 EL7,
/// EL8 and EL9. EL7's grub2 2.02 needs them under Secure Boot (the shim-verified EFI loader of Red Hat's
/// patches); EL8's and EL9's grub2 keep them (newer ones as aliases of `linux`/`initrd`). aarch64 media use
/// `linux`/`initrd` on every release, and later x86_64 releases too (upstream lorax dropped the suffix in 2025,
/// commit 3d5f7ecc).
pub fn grub_efi_commands(el: u8, arch: &str) -> (&'static str, &'static str) {
    match (el, arch) {
        (7..=9, "x86_64") => ("linuxefi", "initrdefi"),
        _ => ("linux", "initrd"),
    }
}

/// Rewrites `linux`/`linuxefi` and `initrd`/`initrdefi` lines of a UEFI GRUB config to the given commands.
pub fn set_grub_commands(text: &str, (linux, initrd): (&str, &str)) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let w = first_word(t);
        let to = match w {
            "linux" | "linuxefi" => linux,
            "initrd" | "initrdefi" => initrd,
            _ => {
                out.push_str(line);
                continue;
            }
        };
        out.push_str(&line[..line.len() - t.len()]);
        out.push_str(to);
        out.push_str(&t[w.len()..]);
    }
    out
}

/// Which kind of boot config a medium's file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    /// isolinux (BIOS): `append` lines.
    Isolinux,
    /// GRUB for UEFI (`EFI/BOOT/grub.cfg`, `BOOT.conf`, the copies in the EFI image): `linux*` lines, whose
    /// commands follow [`grub_efi_commands`].
    GrubEfi,
    /// GRUB for BIOS (`boot/grub2/grub.cfg`): `linux` lines (no EFI loader there).
    GrubBios,
}

/// One boot config after [`remaster_config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remastered {
    /// The new text.
    pub text: String,
    /// How many kernel lines were edited.
    pub lines: usize,
    /// The entry made default; `None` when the config has no top-level kernel entry (left as it was).
    pub default: Option<DefaultEntry>,
}

/// Every edit kubeha makes to one boot config of an EL medium: the unattended install entry made default without
/// the media check, the UEFI kernel commands of the medium's release (`efi_commands`, from [`grub_efi_commands`]),
/// then `edits` applied in order to every kernel line (as mkksiso applies its arguments to every entry).
pub fn remaster_config(
    kind: ConfigKind,
    text: &str,
    efi_commands: (&str, &str),
    edits: &[ArgEdit],
) -> Remastered {
    let made = match kind {
        ConfigKind::Isolinux => isolinux_install_default(text),
        ConfigKind::GrubEfi | ConfigKind::GrubBios => grub_install_default(text),
    };
    let (text, default) = match made {
        Some((t, d)) => (t, Some(d)),
        None => (text.to_string(), None),
    };
    let (text, lines) = match kind {
        ConfigKind::Isolinux => edit_isolinux(&text, edits),
        ConfigKind::GrubEfi => edit_grub(&set_grub_commands(&text, efi_commands), edits),
        ConfigKind::GrubBios => edit_grub(&text, edits),
    };
    Remastered {
        text,
        lines,
        default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udev_escapes_like_lorax() {
        for (l, want) in [
            ("CentOS 7 x86_64", "CentOS\\x207\\x20x86_64"),
            ("Rocky-9-4-x86_64-dvd", "Rocky-9-4-x86_64-dvd"),
            ("a/b(c)", "a\\x2fb\\x28c\\x29"),
            ("OL:8.9@#+=_", "OL:8.9@#+=_"),
        ] {
            assert_eq!(udev_escape(l), want, "{l}");
        }
    }

    #[test]
    fn isolinux_append_lines_only() {
        let cfg = "label linux\n  kernel vmlinuz\n  append initrd=initrd.img inst.stage2=hd:LABEL=CentOS\\x207\\x20x86_64 inst.ks=old quiet\n  # append not me\nmenu end\n";
        let edit = [ArgEdit {
            remove: vec!["inst.ks".into(), "kubeha.".into()],
            add: vec![
                Arg::kv("inst.ks", "hd:LABEL=CentOS\\x207\\x20x86_64:/ks.cfg"),
                Arg::kv("kubeha.role", "master"),
            ],
        }];
        let (out, n) = edit_isolinux(cfg, &edit);
        assert_eq!(n, 1);
        assert_eq!(
            out,
            "label linux\n  kernel vmlinuz\n  append initrd=initrd.img inst.stage2=hd:LABEL=CentOS\\x207\\x20x86_64 quiet inst.ks=hd:LABEL=CentOS\\x207\\x20x86_64:/ks.cfg kubeha.role=master\n  # append not me\nmenu end\n"
        );
        // Editing again gives the same text: old kubeha.* and inst.ks are replaced, not repeated.
        let (again, _) = edit_isolinux(&out, &edit);
        assert_eq!(again, out);
    }

    #[test]
    fn grub_linux_and_linuxefi_keep_kernel_path() {
        let cfg = "menuentry 'x' {\n\tlinuxefi /images/pxeboot/vmlinuz inst.stage2=hd:LABEL=X quiet\n\tinitrdefi /images/pxeboot/initrd.img\n}\n  linux /vmlinuz a=\"b c\" d\nlinuxx no\n";
        let (out, n) = edit_grub(
            cfg,
            &[ArgEdit {
                remove: vec!["inst.ks".into()],
                add: vec![Arg::kv("inst.ks", "hd:LABEL=X:/ks.cfg")],
            }],
        );
        assert_eq!(n, 2);
        assert!(out.contains("\tlinuxefi /images/pxeboot/vmlinuz inst.stage2=hd:LABEL=X quiet inst.ks=hd:LABEL=X:/ks.cfg\n"), "{out}");
        assert!(
            out.contains("  linux /vmlinuz a=\"b c\" d inst.ks=hd:LABEL=X:/ks.cfg\n"),
            "{out}"
        );
        assert!(out.contains("linuxx no\n"));
    }
}
