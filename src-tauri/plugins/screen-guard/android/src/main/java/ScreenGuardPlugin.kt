package jp.example_bank.otp.screenguard

import android.app.Activity
import android.view.WindowManager
import android.webkit.WebView
import app.tauri.annotation.TauriPlugin
import app.tauri.plugin.Plugin

// FLAG_SECURE on the app's only window, set once when the plugin loads (at app start) and never
// cleared: no screenshots, no recordings, no casting to non-secure displays, a blank thumbnail in
// the recent-apps list.
@TauriPlugin
class ScreenGuardPlugin(private val activity: Activity) : Plugin(activity) {
    override fun load(webView: WebView) {
        activity.runOnUiThread {
            activity.window.setFlags(
                WindowManager.LayoutParams.FLAG_SECURE,
                WindowManager.LayoutParams.FLAG_SECURE
            )
        }
    }
}
