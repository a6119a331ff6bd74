//! How the WebView paints on a Linux desktop without a GPU.
//!
//! WebKitGTK (2.46 and later) paints with Skia on the GPU by default. With no GPU (no DRM render
//! node: a virtual machine, a remote desktop, the tests' Xvfb), that "GPU" is Mesa's llvmpipe,
//! software GL, and Skia's CPU painting is faster: on the tests' Xvfb the first code is painted
//! about 80 ms sooner (the README's cold-start section has the runs). Browsers make the same
//! choice when they find only a software GL. A GPU's machine keeps WebKit's default, and so
//! does anyone who sets `WEBKIT_SKIA_ENABLE_CPU_RENDERING` either way.
//!
//! Phones use the system's WebView; none of this is compiled for them.

use std::path::Path;

/// WebKitGTK's switch to Skia's CPU painting (read by its web process, which inherits it).
pub const CPU_PAINTING: &str = "WEBKIT_SKIA_ENABLE_CPU_RENDERING";

/// Where Linux lists the GPUs' render nodes (`renderD128`, ...).
const DRI: &str = "/dev/dri";

/// Whether to ask for CPU painting: only when nobody chose already and no GPU is there.
pub fn cpu_painting(already_chosen: bool, render_node: bool) -> bool {
    !already_chosen && !render_node
}

/// Whether `dir` holds a DRM render node (a GPU that renders); a missing or unreadable
/// directory holds none.
pub fn has_render_node(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    })
}

/// Chooses CPU painting for this process's WebView when no GPU is there. Call it first thing
/// in `main`, while the process has one thread and before WebKit starts its web process.
pub fn choose() {
    let already_chosen = std::env::var_os(CPU_PAINTING).is_some();
    if cpu_painting(already_chosen, has_render_node(Path::new(DRI))) {
        std::env::set_var(CPU_PAINTING, "1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_painting_only_without_a_gpu_and_without_a_choice() {
        assert!(cpu_painting(false, false));
        assert!(!cpu_painting(false, true), "a GPU keeps WebKit's default");
        assert!(!cpu_painting(true, false), "the user's setting stands");
        assert!(!cpu_painting(true, true));
    }

    #[test]
    fn a_render_node_is_a_gpu_a_card_alone_or_nothing_is_not() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_render_node(dir.path()), "empty");
        assert!(!has_render_node(&dir.path().join("missing")), "missing");
        std::fs::write(dir.path().join("card0"), b"").unwrap();
        assert!(
            !has_render_node(dir.path()),
            "a display card without a render node"
        );
        std::fs::write(dir.path().join("renderD128"), b"").unwrap();
        assert!(has_render_node(dir.path()));
    }
}
