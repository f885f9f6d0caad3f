//! The folders a callflow may play from and record into (`[engine] sounds_dir`, `recordings_dir`), checked at
//! render time on the path actually sent.
//!
//! Member data can never make a path absolute or climb with `..` (see [`super::render`]); with a folder
//! configured, the whole rendered path — the author's text included — must also stay inside it: a relative path
//! is taken inside the folder, `.` and `..` are resolved lexically, and the result must still be under the folder.
//! Streams (`tone_stream://`, `silence_stream://`, anything with `://`) are not files and are not checked.

use super::render::Refusal;
use crate::campaign::callflow::Template;
use std::path::{Component, Path, PathBuf};

/// The configured folders; `None`: no confinement beyond the render rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaFolders {
    /// Where `playback` and `play_and_get_digits` files must be.
    pub sounds: Option<PathBuf>,
    /// Where `record_session` may write.
    pub recordings: Option<PathBuf>,
}

/// Lexically resolves `.` and `..`; `None` when `..` would climb above the start.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

/// Checks a rendered path against `folder` (named `what` in the message).
pub fn confine(
    folder: Option<&Path>,
    what: &str,
    rendered: &str,
    template: &Template,
) -> Result<(), Refusal> {
    let Some(folder) = folder else {
        return Ok(());
    };
    if rendered.contains("://") {
        return Ok(());
    }
    let inside = normalise(folder)
        .zip(normalise(&folder.join(rendered)))
        .is_some_and(|(root, path)| path.starts_with(root));
    if inside {
        Ok(())
    } else {
        Err(Refusal {
            variable: template.variables().next().map(str::to_string),
            message: format!(
                "the path {:?} is outside the {what} folder {}",
                crate::text::prefix(rendered),
                folder.display()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(folder: &str, rendered: &str) -> bool {
        let t = Template::parse("${x}").unwrap();
        confine(Some(Path::new(folder)), "sounds", rendered, &t).is_ok()
    }

    #[test]
    fn paths_must_stay_inside_the_configured_folder() {
        assert!(check("/snd", "ivr/hello.wav"));
        assert!(check("/snd", "/snd/ivr/./x.wav"));
        assert!(check("/snd", "ivr/../x.wav"));
        assert!(check("/snd", "tone_stream://%(100,0,400)"));
        assert!(!check("/snd", "../etc/passwd"));
        assert!(!check("/snd", "/etc/passwd"));
        assert!(!check("/snd", "/snd/../etc/passwd"));
        assert!(!check("/snd", "/sndx/a.wav"));
        let t = Template::parse("a.wav").unwrap();
        assert!(confine(None, "sounds", "/etc/passwd", &t).is_ok());
    }
}
