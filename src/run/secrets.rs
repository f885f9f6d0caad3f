//! Secrets of the configuration that should not have to live in its text: the ESL password of a switch may come
//! from an environment variable (`password_env`) or a file (`password_file`, e.g. a mounted secret; one trailing
//! line break is dropped) instead of `password`.

use super::config::SwitchSection;

/// The ESL password of `switches[index]`: `password_env`, else `password_file`, else `password`. Naming both
/// sources, an unset variable or an unreadable or empty file is an error naming the field.
pub fn switch_password(
    index: usize,
    s: &SwitchSection,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let at = |field: &str| format!("switches[{index}].{field}");
    match (&s.password_env, &s.password_file) {
        (Some(_), Some(_)) => Err(format!(
            "{}: give password_env or password_file, not both",
            at("password_env")
        )),
        (Some(var), None) => env(var).filter(|p| !p.is_empty()).ok_or_else(|| {
            format!(
                "{}: the environment variable {var} is not set",
                at("password_env")
            )
        }),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{}: {}: {e}", at("password_file"), path.display()))?;
            let password = text
                .strip_suffix('\n')
                .map(|p| p.strip_suffix('\r').unwrap_or(p))
                .unwrap_or(&text);
            if password.is_empty() {
                return Err(format!(
                    "{}: {} is empty",
                    at("password_file"),
                    path.display()
                ));
            }
            Ok(password.to_string())
        }
        (None, None) => Ok(s.password.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> SwitchSection {
        toml::from_str(&format!("name = \"fs\"\naddress = \"h:8021\"\n{toml_text}")).unwrap()
    }

    #[test]
    fn the_password_comes_from_the_environment_a_file_or_the_text() {
        let env = |k: &str| (k == "FS_PASS").then(|| "from-env".to_string());
        assert_eq!(switch_password(0, &section(""), &env).unwrap(), "ClueCon");
        assert_eq!(
            switch_password(0, &section("password_env = \"FS_PASS\""), &env).unwrap(),
            "from-env"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\r\n").unwrap();
        let s = section(&format!("password_file = {:?}", file.display().to_string()));
        assert_eq!(switch_password(0, &s, &env).unwrap(), "from-file");
    }

    #[test]
    fn missing_sources_are_errors_naming_the_field() {
        let env = |_: &str| None;
        let e = switch_password(2, &section("password_env = \"NOPE\""), &env).unwrap_err();
        assert_eq!(
            e,
            "switches[2].password_env: the environment variable NOPE is not set"
        );
        let e =
            switch_password(0, &section("password_file = \"/nonexistent/pw\""), &env).unwrap_err();
        assert!(
            e.starts_with("switches[0].password_file: /nonexistent/pw: "),
            "{e}"
        );
        let e = switch_password(
            0,
            &section("password_env = \"A\"\npassword_file = \"/x\""),
            &env,
        )
        .unwrap_err();
        assert!(e.ends_with("not both"), "{e}");
    }
}
