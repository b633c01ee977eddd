//! Boot config edits, as lorax's mkksiso makes them (contracts §8.1 step 3-4), as pure text functions.
//!
//! Kernel arguments are an ordered multimap: the arguments named in `remove` are dropped (every occurrence), then
//! the new ones are appended. Unlike mkksiso's shlex split, backslashes are kept verbatim, so an escaped label like
//! `hd:LABEL=CentOS\x207\x20x86_64` survives; double-quoted values stay one argument.

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

/// One kernel argument: `key` or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The name.
    pub key: String,
    /// The value, if any (quotes kept as written).
    pub value: Option<String>,
}

impl Arg {
    /// `key=value`.
    pub fn kv(key: &str, value: &str) -> Arg {
        Arg {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

impl std::fmt::Display for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.key),
            None => f.write_str(&self.key),
        }
    }
}

/// Splits a kernel command line at unquoted whitespace.
pub fn split_args(cmdline: &str) -> Vec<Arg> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Arg::kv(k, v),
            None => Arg {
                key: w,
                value: None,
            },
        })
        .collect()
}

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
    remove: &[&str],
    add: &[Arg],
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
            new.extend(alter_args(tail.to_vec(), remove, add));
            out.push_str(&format!("{indent}{first} {}{eol}", join(&new)));
            n += 1;
        } else {
            out.push_str(line);
        }
    }
    (out, n)
}

/// Edits an isolinux/syslinux/pxelinux config: every line whose first word is `append`.
pub fn edit_isolinux(text: &str, remove: &[&str], add: &[Arg]) -> (String, usize) {
    edit_lines(text, &["append", "APPEND"], remove, add, 0)
}

/// Edits a GRUB config: every line whose first word is `linux`, `linuxefi` or `linux16` (the kernel path kept).
pub fn edit_grub(text: &str, remove: &[&str], add: &[Arg]) -> (String, usize) {
    edit_lines(text, &["linux", "linuxefi", "linux16"], remove, add, 1)
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
        let (out, n) = edit_isolinux(
            cfg,
            &["inst.ks", "kubeha."],
            &[
                Arg::kv("inst.ks", "hd:LABEL=CentOS\\x207\\x20x86_64:/ks.cfg"),
                Arg::kv("kubeha.role", "master"),
            ],
        );
        assert_eq!(n, 1);
        assert_eq!(
            out,
            "label linux\n  kernel vmlinuz\n  append initrd=initrd.img inst.stage2=hd:LABEL=CentOS\\x207\\x20x86_64 quiet inst.ks=hd:LABEL=CentOS\\x207\\x20x86_64:/ks.cfg kubeha.role=master\n  # append not me\nmenu end\n"
        );
        // Editing again gives the same text: old kubeha.* and inst.ks are replaced, not repeated.
        let (again, _) = edit_isolinux(
            &out,
            &["inst.ks", "kubeha."],
            &[
                Arg::kv("inst.ks", "hd:LABEL=CentOS\\x207\\x20x86_64:/ks.cfg"),
                Arg::kv("kubeha.role", "master"),
            ],
        );
        assert_eq!(again, out);
    }

    #[test]
    fn grub_linux_and_linuxefi_keep_kernel_path() {
        let cfg = "menuentry 'x' {\n\tlinuxefi /images/pxeboot/vmlinuz inst.stage2=hd:LABEL=X quiet\n\tinitrdefi /images/pxeboot/initrd.img\n}\n  linux /vmlinuz a=\"b c\" d\nlinuxx no\n";
        let (out, n) = edit_grub(
            cfg,
            &["inst.ks"],
            &[Arg::kv("inst.ks", "hd:LABEL=X:/ks.cfg")],
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
