//! `cutover key generate NAME`: a new TSIG key with a random secret, printed
//! as a BIND `key` statement (what `tsig-keygen` prints), with the same key
//! in Knot's form and in cutover's config form as comments.

use anyhow::Context;
use clap::Subcommand;
use cutover_nameserver::tsig::{Algorithm, Key};

/// The `key` verbs.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print a new TSIG key with a random secret (BIND format).
    Generate {
        /// The key's name, e.g. transfer.example.
        name: String,
        /// hmac-sha256 (default), hmac-sha384, hmac-sha512; hmac-sha1 and
        /// hmac-md5 only for peers that need them.
        #[arg(long, default_value = "hmac-sha256")]
        algorithm: String,
    },
}

/// Runs a `key` verb.
pub fn run(command: &KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Generate { name, algorithm } => {
            print!("{}", generate(name, algorithm)?);
            Ok(())
        }
    }
}

/// A new key as the text `key generate` prints.
fn generate(name: &str, algorithm: &str) -> anyhow::Result<String> {
    let algorithm: Algorithm = algorithm.parse()?;
    // As tsig-keygen and keymgr do: a secret as long as the HMAC's output.
    let mut secret = vec![0u8; algorithm.output_len()];
    getrandom::fill(&mut secret).context("cannot read random bytes from the OS")?;
    let key = Key::new(name, algorithm, secret)?;
    Ok(render(&key))
}

/// The printed form: BIND statement, then Knot and cutover forms as comments.
fn render(key: &Key) -> String {
    let mut out = key.to_bind();
    out.push_str("# Knot DNS (knot.conf):\n");
    for line in key.to_knot().lines() {
        out.push_str("#   ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("# cutover (cutover.toml):\n");
    out.push_str("#   [[key]]\n");
    out.push_str(&format!("#   name = \"{}\"\n", key.name.to_ascii()));
    out.push_str(&format!("#   algorithm = \"{}\"\n", key.algorithm));
    out.push_str(&format!("#   secret = \"{}\"\n", key.secret_base64()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The printed key parses back as BIND and (uncommented) as Knot.
    #[test]
    fn generated_key_reads_back_in_both_formats() {
        let text = generate("xfr.example", "hmac-sha512").unwrap();
        let bind = Key::parse_bind(&text).unwrap();
        assert_eq!(bind.len(), 1, "{text}");
        assert_eq!(bind[0].name.to_ascii(), "xfr.example.");
        assert_eq!(bind[0].algorithm, Algorithm::HmacSha512);
        assert_eq!(bind[0].secret.len(), 64);
        let knot: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("#   "))
            .take_while(|l| !l.starts_with("[[key]]"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(Key::parse_knot(&knot).unwrap(), bind, "{knot}");
        let other = generate("xfr.example", "hmac-sha512").unwrap();
        assert_ne!(text, other, "two keys must have different secrets");
    }

    /// An unknown algorithm is named in the error.
    #[test]
    fn unknown_algorithm_is_refused() {
        let error = generate("k", "hmac-sha224").unwrap_err().to_string();
        assert!(error.contains("hmac-sha224"), "{error}");
    }
}
