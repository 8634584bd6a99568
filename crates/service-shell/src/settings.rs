//! Layered, typed configuration (the `config` crate): serde defaults, then an optional file,
//! then `APP__SECTION__KEY` environment variables (the Kubernetes way to inject secrets).

use std::path::Path;

use serde::de::DeserializeOwned;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SettingsError {
    /// A readable message naming the key or file at fault. Never contains secret values:
    /// the config crate reports keys and types, not the values it failed to parse.
    #[error("configuration error: {0}")]
    Invalid(String),
}

/// Loads `T` from (in increasing priority) its serde defaults, the TOML file at `file` (when
/// given; a missing explicit file is an error, a typo must not silently fall back to
/// defaults), and environment variables with the `APP__` prefix and `__` as the nesting
/// separator: `APP__DATABASE__URL` sets `database.url`.
pub fn load<T: DeserializeOwned>(file: Option<&Path>) -> Result<T, SettingsError> {
    load_with_env(file, "APP")
}

/// Same as [`load`] with another env prefix (tests use a unique prefix to stay isolated).
pub fn load_with_env<T: DeserializeOwned>(
    file: Option<&Path>,
    env_prefix: &str,
) -> Result<T, SettingsError> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        if !path.exists() {
            return Err(SettingsError::Invalid(format!(
                "config file {} does not exist",
                path.display()
            )));
        }
        builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
    }
    builder = builder.add_source(
        config::Environment::with_prefix(env_prefix)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true),
    );
    builder
        .build()
        .and_then(|c| c.try_deserialize::<T>())
        .map_err(|e| SettingsError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::io::Write;

    #[derive(Debug, Deserialize)]
    struct Demo {
        #[serde(default = "default_port")]
        port: u16,
        name: String,
        #[serde(default)]
        nested: Nested,
    }
    #[derive(Debug, Deserialize, Default)]
    struct Nested {
        #[serde(default)]
        level: u32,
    }
    fn default_port() -> u16 {
        8080
    }

    #[test]
    fn file_then_env_override_defaults() {
        let mut f = tempfile_in_target("a.toml");
        writeln!(
            f.1,
            "name = \"from-file\"\nport = 9000\n[nested]\nlevel = 2"
        )
        .unwrap();
        std::env::set_var("SSTEST1__NESTED__LEVEL", "7");
        let d: Demo = load_with_env(Some(&f.0), "SSTEST1").unwrap();
        assert_eq!(d.name, "from-file");
        assert_eq!(d.port, 9000);
        assert_eq!(d.nested.level, 7);
    }

    #[test]
    fn defaults_apply_and_missing_required_key_is_named() {
        std::env::set_var("SSTEST2__NAME", "env");
        let d: Demo = load_with_env(None, "SSTEST2").unwrap();
        assert_eq!(d.port, 8080);
        let err = load_with_env::<Demo>(None, "SSTEST3").unwrap_err();
        assert!(err.to_string().contains("name"), "{err}");
    }

    #[test]
    fn missing_file_and_bad_types_are_errors_not_panics() {
        let err =
            load_with_env::<Demo>(Some(Path::new("/nonexistent/x.toml")), "SSTEST4").unwrap_err();
        assert!(err.to_string().contains("does not exist"));
        let mut f = tempfile_in_target("b.toml");
        writeln!(f.1, "name = \"x\"\nport = \"not a number\"").unwrap();
        assert!(load_with_env::<Demo>(Some(&f.0), "SSTEST5").is_err());
        let mut g = tempfile_in_target("c.toml");
        writeln!(g.1, "this is [ not toml").unwrap();
        assert!(load_with_env::<Demo>(Some(&g.0), "SSTEST6").is_err());
    }

    fn tempfile_in_target(name: &str) -> (std::path::PathBuf, std::fs::File) {
        let dir = std::env::temp_dir().join(format!("service-shell-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let file = std::fs::File::create(&path).unwrap();
        (path, file)
    }
}
