//! Packs the Kotlin (android/) and Swift (ios/) halves into the mobile builds. The plugin has no
//! commands: it acts as it loads.

fn main() {
    if let Err(e) = tauri_plugin::Builder::new(&[])
        .android_path("android")
        .ios_path("ios")
        .try_build()
    {
        eprintln!("tauri-plugin build failed: {e:#}");
        std::process::exit(1);
    }
}
