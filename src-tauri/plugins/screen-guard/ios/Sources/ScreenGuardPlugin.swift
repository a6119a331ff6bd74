import SwiftRs
import Tauri
import UIKit
import WebKit

// A privacy cover over the app's window whenever it resigns active (app switcher, incoming call,
// Control Centre), so the snapshot iOS takes for the app switcher shows no code. Removed when the
// app becomes active again. iOS has no way to block screenshots of an app in front.
class ScreenGuardPlugin: Plugin {
  private var cover: UIView?

  @objc public override func load(webview: WKWebView) {
    let center = NotificationCenter.default
    center.addObserver(
      self, selector: #selector(coverWindow),
      name: UIApplication.willResignActiveNotification, object: nil)
    center.addObserver(
      self, selector: #selector(uncoverWindow),
      name: UIApplication.didBecomeActiveNotification, object: nil)
  }

  @objc private func coverWindow() {
    DispatchQueue.main.async {
      guard self.cover == nil, let window = self.keyWindow() else { return }
      let view = UIView(frame: window.bounds)
      view.backgroundColor = UIColor.systemBackground
      view.autoresizingMask = [.flexibleWidth, .flexibleHeight]
      window.addSubview(view)
      self.cover = view
    }
  }

  @objc private func uncoverWindow() {
    DispatchQueue.main.async {
      self.cover?.removeFromSuperview()
      self.cover = nil
    }
  }

  private func keyWindow() -> UIWindow? {
    UIApplication.shared.connectedScenes
      .compactMap { $0 as? UIWindowScene }
      .flatMap { $0.windows }
      .first { $0.isKeyWindow }
  }
}

@_cdecl("init_plugin_screen_guard")
func initPlugin() -> Plugin {
  return ScreenGuardPlugin()
}
