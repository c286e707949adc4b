/*
 * The sandbox's stand-in for Pipedrive's page around a custom UI extension: the HOST side of the
 * App Extensions SDK protocol (npm @pipedrive/app-extensions-sdk 0.15.1; protocol notes in
 * docs/app-extensions-sdk-protocol.md).
 *
 * The SDK inside the iframe posts {id, payload} to window.parent:
 *   payload {type: "command", command, args}  + a MessagePort  -> answer {data} or {error} on the port
 *   payload {type: "listener", event}          + a MessagePort  -> keep the port; post {data} per event
 *   payload {type: "track", event}             (no port)       -> nothing to answer
 * `initialize` is itself a command; a frame that has not initialized within data-init-timeout-ms
 * (default 10 s, as Pipedrive) is not shown.
 *
 * Markup comes from sandbox/templates/sandbox/_extension_host.html. Dependency-free, no inline HTML
 * from messages (textContent only), and a message is accepted only from a known iframe, from the
 * origin of its URL and with the `id` that URL carries.
 */
(function () {
  "use strict";

  if (window.PipedriveSandboxExtensionsHost) {
    return; // the template may be included more than once on a page
  }

  var PANEL_MIN_HEIGHT = 100; // custom panel: height only, 100-750 px (SDK README, RESIZE)
  var PANEL_MAX_HEIGHT = 750;
  var MODAL_MIN_HEIGHT = 120; // custom modal: min 120 x 320, max the browser window (SDK README)
  var MODAL_MIN_WIDTH = 320;
  var DEFAULT_PANEL_HEIGHT = 300; // sandbox choice for `initialize` without a size
  var DEFAULT_MODAL_SIZE = { height: 400, width: 560 }; // sandbox choice
  var FLOATING_MIN_HEIGHT = 70; // custom floating window: 70-700 px high, 200-800 px wide (SDK README)
  var FLOATING_MAX_HEIGHT = 700;
  var FLOATING_MIN_WIDTH = 200;
  var FLOATING_MAX_WIDTH = 800;
  var DEFAULT_FLOATING_SIZE = { height: 420, width: 360 }; // sandbox choice for `initialize` without a size
  var DEFAULT_INIT_TIMEOUT_MS = 10000;
  var SNACKBAR_MS = 6000;
  var LOG_LIMIT = 200;

  var COMMANDS = [
    "show_snackbar", "show_confirmation", "resize", "initialize", "open_modal", "close_modal",
    "get_signed_token", "redirect_to", "show_floating_window", "hide_floating_window",
    "set_notification", "set_focus_mode", "get_metadata",
  ];
  var EVENTS = ["visibility", "close_custom_modal", "page_visibility_state", "user_settings_change"];
  var MODAL_TYPES = ["deal", "organization", "person", "activity", "json_modal", "custom_modal"];
  var MODAL_TITLES = { deal: "New deal", organization: "New organization", person: "New person", activity: "New activity" };
  // Query parameters a custom modal shares with the panel that opened it (sandbox choice).
  var SHARED_PARAMS = ["userId", "companyId", "resource", "view", "selectedIds"];

  var hosts = []; // every Host on the page
  var floating = null; // the page's FloatingHost (the app's floating window), if the page has one
  var fakeRecordId = 9000; // ids the sandbox returns for "submitted" Pipedrive modals

  function clamp(value, min, max) {
    return Math.min(max, Math.max(min, value));
  }

  function isNumber(value) {
    return typeof value === "number" && isFinite(value);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function summarize(value) {
    if (value === undefined) return "";
    try {
      var text = JSON.stringify(value);
      return text.length > 160 ? text.slice(0, 157) + "..." : text;
    } catch (e) {
      return String(value);
    }
  }

  function safeHttpUrl(raw) {
    try {
      var url = new URL(String(raw), window.location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function reply(port, response) {
    try {
      port.postMessage(response);
    } catch (e) {
      // the frame went away (reloaded or closed): nothing left to answer
    }
  }

  /* ------------------------------------------------------------------------------------------ */
  /* One iframe that runs the SDK: the panel, or a custom modal opened from it.                   */

  function ExtensionFrame(host, kind, iframe, tokenUrl) {
    this.host = host;
    this.tokenUrl = tokenUrl || ""; // signed for this frame's own extension (its JWT secret)
    this.kind = kind; // "panel" | "modal" | "floating"
    this.iframe = iframe;
    this.listeners = {}; // event -> [MessagePort]
    this.initialized = false;
    this.timedOut = false;
    this.timer = null;
    this.size = kind === "panel" ? { height: DEFAULT_PANEL_HEIGHT } : { height: DEFAULT_MODAL_SIZE.height, width: DEFAULT_MODAL_SIZE.width };
    if (kind === "floating") this.size = { height: DEFAULT_FLOATING_SIZE.height, width: DEFAULT_FLOATING_SIZE.width };
    this.readUrl(iframe.getAttribute("src") || iframe.src);
  }

  ExtensionFrame.prototype.readUrl = function (src) {
    var url = new URL(src, window.location.href);
    this.url = url;
    this.origin = url.origin;
    this.id = url.searchParams.get("id");
  };

  ExtensionFrame.prototype.label = function () {
    return this.kind === "panel" || this.kind === "floating" ? this.kind : "modal";
  };

  ExtensionFrame.prototype.startTimer = function () {
    var self = this;
    clearTimeout(this.timer);
    this.timer = setTimeout(function () {
      if (!self.initialized) {
        self.timedOut = true;
        self.host.log(self, "!", "not initialized within " + self.host.initTimeoutMs + " ms: not shown");
        self.host.onTimeout(self);
      }
    }, this.host.initTimeoutMs);
  };

  ExtensionFrame.prototype.navigate = function (src) {
    this.initialized = false;
    this.timedOut = false;
    this.listeners = {}; // the old document's ports are gone with it
    this.readUrl(src);
    this.iframe.src = src;
    this.startTimer();
  };

  ExtensionFrame.prototype.emit = function (event, data) {
    var ports = this.listeners[event] || [];
    for (var i = 0; i < ports.length; i++) {
      reply(ports[i], data === undefined ? {} : { data: data });
    }
    if (ports.length) this.host.log(this, "event", event + " " + summarize(data));
    return ports.length;
  };

  ExtensionFrame.prototype.hasListener = function (event) {
    return (this.listeners[event] || []).length > 0;
  };

  ExtensionFrame.prototype.receive = function (message, port) {
    var payload = message.payload;
    if (payload.type === "track") {
      this.host.log(this, "track", String(payload.event));
      return;
    }
    if (!port) return; // commands and listeners always come with a port; anything else is not the SDK
    if (message.id !== this.id) {
      reply(port, { error: "Unknown custom UI identifier" });
      return;
    }
    if (payload.type === "listener") {
      if (EVENTS.indexOf(payload.event) === -1) {
        reply(port, { error: "Invalid event" });
        return;
      }
      (this.listeners[payload.event] = this.listeners[payload.event] || []).push(port);
      this.host.log(this, "listen", String(payload.event));
      return;
    }
    if (payload.type !== "command") {
      reply(port, { error: "Unknown message type" });
      return;
    }
    this.runCommand(payload.command, payload.args, port);
  };

  ExtensionFrame.prototype.runCommand = function (command, args, port) {
    var self = this;
    var host = this.host;
    // A token must never reach the log, not even the sandbox's.
    host.log(this, "command", command + " " + (command === "get_signed_token" ? "" : summarize(args)));
    var result;
    try {
      if (COMMANDS.indexOf(command) === -1) throw new Error("Invalid command");
      if (this.timedOut) throw new Error("The extension did not initialize in time and is not shown");
      if (command !== "initialize" && !this.initialized) throw new Error("SDK is not initialized");
      result = host.commands[command].call(host, this, args);
    } catch (err) {
      result = Promise.reject(err);
    }
    Promise.resolve(result).then(
      function (data) {
        reply(port, data === undefined ? {} : { data: data });
        host.log(self, "answer", command + " " + (command === "get_signed_token" ? "{token: (redacted)}" : summarize(data)));
      },
      function (err) {
        var text = err && err.message ? err.message : String(err);
        reply(port, { error: text });
        host.log(self, "error", command + ": " + text);
      }
    );
  };

  /* ------------------------------------------------------------------------------------------ */
  /* The host: one per [data-pd-extension-host] element rendered by the template.                 */

  function Host(root) {
    this.root = root;
    this.signedTokenUrl = root.getAttribute("data-signed-token-url") || "";
    this.customModalUrl = root.getAttribute("data-custom-modal-url") || "";
    // The app's registered actions (Developer Hub): [{id, kind, label, url, token_url}] from a JSON
    // script element the template names; a custom modal's action_id picks its URL and JWT secret.
    this.actions = [];
    var actionsId = root.getAttribute("data-app-actions");
    var actionsNode = actionsId ? document.getElementById(actionsId) : null;
    if (actionsNode) {
      try {
        this.actions = JSON.parse(actionsNode.textContent || "[]") || [];
      } catch (e) {
        this.actions = [];
      }
    }
    var timeout = parseInt(root.getAttribute("data-init-timeout-ms") || "", 10);
    this.initTimeoutMs = timeout > 0 ? timeout : DEFAULT_INIT_TIMEOUT_MS;
    this.frames = [];
    this.modal = null; // {frame?, element, resolve, opener}
    this.dialogQueue = Promise.resolve();
    this.modalCounter = 0;
    this.collapsed = false;

    var iframe = root.querySelector('iframe[data-pd-frame="panel"]');
    this.panel = new ExtensionFrame(this, "panel", iframe);
    this.frames.push(this.panel);
    this.theme = this.panel.url.searchParams.get("theme") === "dark" ? "dark" : "light";
    this.applyTheme();
    this.showPanelState("loading");
    this.panel.startTimer();
    this.bindControls();
  }

  Host.prototype.find = function (selector) {
    return this.root.querySelector(selector);
  };

  Host.prototype.frameFor = function (source) {
    for (var i = 0; i < this.frames.length; i++) {
      if (this.frames[i].iframe.contentWindow === source) return this.frames[i];
    }
    return null;
  };

  Host.prototype.log = function (frame, kind, text) {
    var list = this.find("[data-pd-log]");
    if (!list) return;
    var item = el("li", "pd-ext-log-" + kind.replace(/[^a-z]/g, ""), frame.label() + " " + kind + ": " + text);
    list.appendChild(item);
    while (list.children.length > LOG_LIMIT) list.removeChild(list.firstChild);
  };

  Host.prototype.bindControls = function () {
    var self = this;
    var themeToggle = this.find("[data-pd-theme-toggle]");
    if (themeToggle) {
      themeToggle.addEventListener("click", function () {
        self.setTheme(self.theme === "dark" ? "light" : "dark");
      });
    }
    var collapse = this.find("[data-pd-collapse-toggle]");
    if (collapse) {
      collapse.addEventListener("click", function () {
        self.setCollapsed(!self.collapsed);
      });
    }
    var reload = this.find("[data-pd-reload]");
    if (reload) {
      reload.addEventListener("click", function () {
        self.reloadPanel();
      });
    }
  };

  Host.prototype.applyTheme = function () {
    this.root.setAttribute("data-theme", this.theme);
    var toggle = this.find("[data-pd-theme-toggle]");
    if (toggle) {
      toggle.setAttribute("aria-pressed", this.theme === "dark" ? "true" : "false");
      toggle.textContent = this.theme === "dark" ? "Theme: dark" : "Theme: light";
    }
  };

  // Pipedrive tells a running extension through USER_SETTINGS_CHANGE; a frame that does not listen
  // for it is reloaded with the new `theme=` (and a fresh token, since the old one may have expired).
  Host.prototype.setTheme = function (theme) {
    this.theme = theme;
    this.applyTheme();
    themeEverywhere(theme);
    var self = this;
    this.frames.forEach(function (frame) {
      if (frame.initialized && frame.hasListener("user_settings_change")) {
        frame.emit("user_settings_change", { theme: theme });
        frame.url.searchParams.set("theme", theme); // a later reload keeps the theme
      } else {
        self.reloadFrame(frame);
      }
    });
  };

  Host.prototype.setCollapsed = function (collapsed) {
    this.collapsed = collapsed;
    this.root.classList.toggle("is-collapsed", collapsed);
    var toggle = this.find("[data-pd-collapse-toggle]");
    if (toggle) toggle.setAttribute("aria-expanded", collapsed ? "false" : "true");
    if (this.panel.initialized) this.panel.emit("visibility", { is_visible: !collapsed });
  };

  Host.prototype.freshUrl = function (frame) {
    var url = new URL(frame.url.href);
    url.searchParams.set("theme", this.theme);
    return this.fetchToken(frame).then(
      function (token) {
        url.searchParams.set("token", token);
        return url.href;
      },
      function () {
        return url.href; // keep the old token; the app will say if it has expired
      }
    );
  };

  Host.prototype.reloadFrame = function (frame) {
    if (frame.kind === "panel") this.showPanelState("loading");
    else this.showModalState(frame, "loading");
    return this.freshUrl(frame).then(function (src) {
      frame.navigate(src);
    });
  };

  Host.prototype.reloadPanel = function () {
    return this.reloadFrame(this.panel);
  };

  // "loading": frame kept invisible under a placeholder; "ready": frame shown; "timeout": frame
  // hidden and the notice shown.
  Host.prototype.showPanelState = function (state) {
    var loading = this.find("[data-pd-loading]");
    var notice = this.find("[data-pd-timeout-notice]");
    var iframe = this.panel.iframe;
    if (loading) loading.hidden = state !== "loading";
    if (notice) notice.hidden = state !== "timeout";
    iframe.hidden = state === "timeout";
    iframe.classList.toggle("is-pending", state === "loading");
    this.root.setAttribute("data-state", state);
  };

  Host.prototype.showModalState = function (frame, state) {
    if (!this.modal || this.modal.frame !== frame) return;
    var box = this.modal.element;
    box.querySelector("[data-pd-loading]").hidden = state !== "loading";
    box.querySelector("[data-pd-timeout-notice]").hidden = state !== "timeout";
    frame.iframe.hidden = state === "timeout";
    frame.iframe.classList.toggle("is-pending", state === "loading");
  };

  Host.prototype.onTimeout = function (frame) {
    if (frame.kind === "panel") this.showPanelState("timeout");
    else this.showModalState(frame, "timeout");
  };

  Host.prototype.applySize = function (frame, size) {
    size = size || {};
    if (frame.kind === "panel") {
      // A panel's width is the sidebar's; only the height moves.
      if (isNumber(size.height)) frame.size.height = clamp(Math.round(size.height), PANEL_MIN_HEIGHT, PANEL_MAX_HEIGHT);
      frame.iframe.style.height = frame.size.height + "px";
      frame.iframe.setAttribute("height", String(frame.size.height));
      return;
    }
    var maxHeight = Math.max(MODAL_MIN_HEIGHT, window.innerHeight - 120);
    var maxWidth = Math.max(MODAL_MIN_WIDTH, window.innerWidth - 48);
    if (isNumber(size.height)) frame.size.height = clamp(Math.round(size.height), MODAL_MIN_HEIGHT, maxHeight);
    if (isNumber(size.width)) frame.size.width = clamp(Math.round(size.width), MODAL_MIN_WIDTH, maxWidth);
    frame.iframe.style.height = frame.size.height + "px";
    frame.iframe.style.width = frame.size.width + "px";
  };

  Host.prototype.action = function (actionId, kind) {
    for (var i = 0; i < this.actions.length; i++) {
      if (this.actions[i].id === actionId && (!kind || this.actions[i].kind === kind)) return this.actions[i];
    }
    return null;
  };

  Host.prototype.fetchToken = function (frame) {
    var tokenUrl = (frame && frame.tokenUrl) || this.signedTokenUrl;
    if (!tokenUrl) return Promise.reject(new Error("No signed_token_url configured"));
    return fetch(tokenUrl, {
      method: "GET",
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("Signed token request failed (HTTP " + response.status + ")");
        return response.json();
      })
      .then(function (body) {
        if (!body || typeof body.token !== "string" || !body.token) throw new Error("Signed token response has no token");
        return body.token;
      });
  };

  /* --- host-rendered UI ------------------------------------------------------------------------ */

  Host.prototype.toast = function (message, link, kind) {
    var box = this.find("[data-pd-toasts]");
    if (!box) {
      box = el("div", "pd-ext-toasts");
      box.setAttribute("data-pd-toasts", "");
      this.root.appendChild(box);
    }
    var toast = el("div", "pd-ext-toast" + (kind ? " pd-ext-toast-" + kind : ""));
    toast.setAttribute("role", "status");
    toast.setAttribute("data-pd-snackbar", "");
    toast.appendChild(el("span", "pd-ext-toast-text", message));
    if (link) {
      var href = safeHttpUrl(link.url);
      if (href) {
        var a = el("a", "pd-ext-toast-link", link.label || href);
        a.href = href;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        toast.appendChild(a);
      }
    }
    var close = el("button", "pd-ext-toast-close", "\u00d7");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", function () {
      toast.remove();
    });
    toast.appendChild(close);
    box.appendChild(toast);
    setTimeout(function () {
      toast.remove();
    }, SNACKBAR_MS);
  };

  // An overlay on the host page; `build(dialog, done)` fills it and calls done(result) once.
  Host.prototype.overlay = function (className, build) {
    var self = this;
    return new Promise(function (resolve) {
      var backdrop = el("div", "pd-ext-overlay");
      backdrop.setAttribute("data-theme", self.theme);
      var dialog = el("div", "pd-ext-dialog " + className);
      dialog.setAttribute("role", "dialog");
      dialog.setAttribute("aria-modal", "true");
      backdrop.appendChild(dialog);
      var finished = false;
      function done(result) {
        if (finished) return;
        finished = true;
        document.removeEventListener("keydown", onKey, true);
        backdrop.remove();
        resolve(result);
      }
      var onKey = build(dialog, done) || null;
      if (onKey) document.addEventListener("keydown", onKey, true);
      document.body.appendChild(backdrop);
      var focus = dialog.querySelector("[data-pd-autofocus]");
      if (focus) focus.focus();
    });
  };

  Host.prototype.button = function (text, className, onClick) {
    var b = el("button", "pd-ext-button " + (className || ""), text);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  };

  Host.prototype.confirm = function (args) {
    var self = this;
    var color = ["primary", "secondary", "negative"].indexOf(args.okColor) >= 0 ? args.okColor : "negative";
    // One confirmation at a time, in the order they were asked for.
    var shown = this.dialogQueue.then(function () {
      return self.overlay("pd-ext-confirm", function (dialog, done) {
        dialog.setAttribute("data-pd-confirmation", "");
        var title = el("h2", "pd-ext-dialog-title", args.title);
        title.id = "pd-ext-confirm-title-" + ++self.modalCounter;
        dialog.setAttribute("aria-labelledby", title.id);
        dialog.appendChild(title);
        if (args.description) dialog.appendChild(el("p", "pd-ext-dialog-text", args.description));
        var actions = el("div", "pd-ext-dialog-actions");
        actions.appendChild(self.button(args.cancelText || "Cancel", "pd-ext-button-secondary", function () {
          done(false);
        }));
        var ok = self.button(args.okText || "OK", "pd-ext-button-" + color, function () {
          done(true);
        });
        ok.setAttribute("data-pd-autofocus", "");
        ok.setAttribute("data-pd-confirm-ok", "");
        actions.lastChild.setAttribute("data-pd-confirm-cancel", "");
        actions.appendChild(ok);
        dialog.appendChild(actions);
        return function (event) {
          if (event.key === "Escape") done(false);
        };
      });
    });
    this.dialogQueue = shown.then(function () {}, function () {});
    return shown.then(function (confirmed) {
      return { confirmed: confirmed };
    });
  };

  Host.prototype.redirectNotice = function (args) {
    var notice = this.find("[data-pd-redirect-notice]");
    if (!notice) {
      notice = el("p", "pd-ext-redirect");
      notice.setAttribute("data-pd-redirect-notice", "");
      this.root.appendChild(notice);
    }
    var parts = ["view=" + args.view];
    if (args.id !== undefined && args.id !== null) parts.push("id=" + args.id);
    if (args.context !== undefined) parts.push("context=" + summarize(args.context));
    notice.textContent = "Pipedrive would now open " + parts.join(", ") + " (the sandbox does not navigate).";
    notice.hidden = false;
  };

  /* --- modals ---------------------------------------------------------------------------------- */

  Host.prototype.openModal = function (opener, args) {
    var self = this;
    if (!args || MODAL_TYPES.indexOf(args.type) === -1) return Promise.reject(new Error("Invalid modal type"));
    if (this.modal) return Promise.reject(new Error("A modal is already open"));
    if (args.type === "custom_modal") return this.openCustomModal(opener, args);

    // Pipedrive's own "new deal/person/organization/activity" modals and JSON modals: the sandbox
    // shows what would open and lets the user submit (with a made-up id) or close.
    return new Promise(function (resolve) {
      var pending = { frame: null, opener: opener, resolve: resolve, element: null };
      self.modal = pending;
      self.overlay("pd-ext-modal pd-ext-modal-" + args.type, function (dialog, done) {
        pending.element = dialog;
        dialog.setAttribute("data-pd-modal", args.type);
        var heading = args.type === "json_modal" ? "JSON modal: " + (args.action_id || "") : MODAL_TITLES[args.type];
        dialog.appendChild(el("h2", "pd-ext-dialog-title", heading));
        dialog.appendChild(el("p", "pd-ext-dialog-text", "Sandbox: Pipedrive would open this modal here."));
        if (args.prefill) {
          var list = el("dl", "pd-ext-prefill");
          Object.keys(args.prefill).forEach(function (key) {
            list.appendChild(el("dt", "", key));
            list.appendChild(el("dd", "", args.prefill[key]));
          });
          dialog.appendChild(list);
        }
        var actions = el("div", "pd-ext-dialog-actions");
        actions.appendChild(self.button("Cancel", "pd-ext-button-secondary", function () {
          done({ status: "closed" });
        }));
        var submit = self.button(args.type === "json_modal" ? "Submit" : "Save", "pd-ext-button-primary", function () {
          done(args.type === "json_modal" ? { status: "submitted" } : { status: "submitted", id: ++fakeRecordId });
        });
        submit.setAttribute("data-pd-autofocus", "");
        submit.setAttribute("data-pd-modal-submit", "");
        actions.appendChild(submit);
        dialog.appendChild(actions);
        return function (event) {
          if (event.key === "Escape") done({ status: "closed" });
        };
      }).then(function (result) {
        self.modal = null;
        resolve(result);
      });
    });
  };

  // A custom modal, opened by a frame's OPEN_MODAL (opener = that frame) or from the record page's
  // actions menu (opener = null). Its URL and JWT secret are the action's, as registered for the app.
  Host.prototype.openCustomModal = function (opener, args) {
    var self = this;
    var action = this.action(args.action_id, "custom_modal");
    var modalUrl = action ? action.url : this.customModalUrl;
    if (!modalUrl) return Promise.reject(new Error("No custom modal is configured for action " + args.action_id));
    if (this.modal) return Promise.reject(new Error("A modal is already open"));
    var base = new URL(modalUrl, window.location.href);
    var source = opener || this.panel; // the record the page shows: the panel's parameters name it
    SHARED_PARAMS.forEach(function (name) {
      var value = source.url.searchParams.get(name);
      if (value !== null) base.searchParams.set(name, value);
    });
    base.searchParams.set("id", this.panel.id + "-modal-" + ++this.modalCounter);
    base.searchParams.set("theme", this.theme);
    if (args.data !== undefined) base.searchParams.set("data", JSON.stringify(args.data));
    var tokenUrl = action ? action.token_url : "";
    var title = (action && action.label) || args.action_id || "Custom modal";
    var returnFocus = document.activeElement;

    return this.fetchToken({ tokenUrl: tokenUrl })
      .catch(function () {
        return opener ? opener.url.searchParams.get("token") || "" : "";
      })
      .then(function (token) {
        base.searchParams.set("token", token);
        return new Promise(function (resolve) {
          var pending = { frame: null, opener: opener, resolve: null, element: null, finish: null };
          self.modal = pending;
          self.overlay("pd-ext-modal pd-ext-custom-modal", function (dialog, done) {
            pending.element = dialog;
            pending.finish = done;
            dialog.setAttribute("data-pd-modal", "custom_modal");
            dialog.setAttribute("data-pd-action", args.action_id || "");
            var header = el("div", "pd-ext-modal-header");
            var heading = el("h2", "pd-ext-dialog-title", title);
            heading.id = "pd-ext-modal-title-" + self.modalCounter;
            dialog.setAttribute("aria-labelledby", heading.id);
            header.appendChild(heading);
            var close = self.button("\u00d7", "pd-ext-modal-close", function () {
              done({ status: "closed" }); // the user closed it
            });
            close.setAttribute("aria-label", "Close");
            close.setAttribute("data-pd-modal-close", "");
            header.appendChild(close);
            dialog.appendChild(header);
            dialog.appendChild(el("p", "pd-ext-loading", "Loading app\u2026")).setAttribute("data-pd-loading", "");
            var notice = el("p", "pd-ext-notice", "The app did not respond");
            notice.setAttribute("data-pd-timeout-notice", "");
            notice.setAttribute("role", "alert");
            notice.hidden = true;
            dialog.appendChild(notice);
            var iframe = el("iframe", "pd-ext-frame is-pending");
            iframe.setAttribute("data-pd-frame", "modal");
            iframe.title = title;
            iframe.src = base.href;
            var frame = new ExtensionFrame(self, "modal", iframe, tokenUrl);
            pending.frame = frame;
            self.frames.push(frame);
            self.applySize(frame, {});
            dialog.appendChild(iframe);
            frame.startTimer();
            return function (event) {
              if (event.key === "Escape") done({ status: "closed" });
            };
          }).then(function (result) {
            var frame = pending.frame;
            clearTimeout(frame.timer);
            self.frames = self.frames.filter(function (f) {
              return f !== frame;
            });
            self.modal = null;
            // The panel hears that its custom modal closed (CLOSE_MODAL or the user's close).
            if (opener) opener.emit("close_custom_modal", undefined);
            // The record page refreshes what Pipedrive would show changed (its activities).
            document.dispatchEvent(new CustomEvent("pd:record-changed", { detail: { action: args.action_id } }));
            if (returnFocus && typeof returnFocus.focus === "function" && document.contains(returnFocus)) {
              returnFocus.focus();
            }
            resolve(result);
          });
        });
      });
  };

  // The record page's actions menu: a custom modal opens like OPEN_MODAL without an opener.
  Host.prototype.openAction = function (actionId) {
    var action = this.action(actionId);
    if (!action) return Promise.reject(new Error("Unknown action " + actionId));
    if (action.kind === "custom_modal") return this.openCustomModal(null, { type: "custom_modal", action_id: actionId });
    return Promise.reject(new Error("The menu opens " + action.kind + " actions itself"));
  };

  /* --- command handlers: (frame, args) -> value or Promise; a throw answers {error} ------------ */

  Host.prototype.commands = {
    initialize: function (frame, args) {
      clearTimeout(frame.timer);
      frame.initialized = true;
      this.applySize(frame, args && args.size);
      if (frame.kind === "panel") this.showPanelState("ready");
      else {
        this.showModalState(frame, "ready");
        frame.iframe.focus(); // keyboard users land in the modal's form
      }
    },
    resize: function (frame, args) {
      if (!args || (!isNumber(args.height) && !isNumber(args.width))) throw new Error("Provide height and/or width");
      this.applySize(frame, args);
    },
    show_snackbar: function (frame, args) {
      if (!args || typeof args.message !== "string" || !args.message) throw new Error("A message is required");
      this.toast(args.message, args.link);
    },
    show_confirmation: function (frame, args) {
      if (!args || typeof args.title !== "string" || !args.title) throw new Error("A title is required");
      return this.confirm(args);
    },
    get_signed_token: function (frame) {
      return this.fetchToken(frame).then(function (token) {
        return { token: token };
      });
    },
    open_modal: function (frame, args) {
      if (frame.kind !== "panel") throw new Error("A modal cannot open another modal");
      return this.openModal(frame, args);
    },
    close_modal: function (frame) {
      var modal = this.modal;
      if (!modal || !modal.frame || (modal.frame !== frame && modal.opener !== frame)) {
        throw new Error("No custom modal is open");
      }
      // Answer first: the modal's port dies with its iframe.
      return Promise.resolve().then(function () {
        setTimeout(function () {
          modal.finish({ status: "closed" });
        }, 0);
      });
    },
    redirect_to: function (frame, args) {
      if (!args || typeof args.view !== "string" || !args.view) throw new Error("A view is required");
      this.redirectNotice(args);
    },
    get_metadata: function () {
      return { windowHeight: window.innerHeight, windowWidth: window.innerWidth };
    },
    // Any custom UI extension of an app with a floating window may show or hide it, set the dock's
    // badge or the focus mode (SDK README: "Show floating window", "Set notification"); the page's
    // FloatingHost does it. An app without a floating window gets an error.
    show_floating_window: toFloatingWindow("show_floating_window"),
    hide_floating_window: toFloatingWindow("hide_floating_window"),
    set_notification: toFloatingWindow("set_notification"),
    set_focus_mode: toFloatingWindow("set_focus_mode"),
  };

  function toFloatingWindow(command) {
    return function (frame, args) {
      if (!floating) throw new Error("This app has no floating window (" + command + " from a custom " + frame.kind + ")");
      return floating.floatingCommand(command, frame, args);
    };
  }

  // Pipedrive's theme is one setting for every extension on the page.
  function themeEverywhere(theme) {
    hosts.concat(floating ? [floating] : []).forEach(function (host) {
      if (host.theme !== theme) host.setTheme(theme);
    });
  }

  /* ------------------------------------------------------------------------------------------ */
  /* Floating window: the app's iframe in a draggable box over the page, opened from the launcher  */
  /* in the page chrome (Pipedrive's apps dock), one per page ([data-pd-floating-host]).           */
  /* It shares ExtensionFrame and Host's token, toast, confirmation, modal and redirect handling.  */

  function FloatingHost(root) {
    this.root = root;
    this.box = root.querySelector("[data-pd-floating-window]");
    this.launcher = root.querySelector("[data-pd-floating-launcher]");
    this.badge = root.querySelector("[data-pd-floating-badge]");
    this.signedTokenUrl = root.getAttribute("data-signed-token-url") || "";
    this.customModalUrl = "";
    var timeout = parseInt(root.getAttribute("data-init-timeout-ms") || "", 10);
    this.initTimeoutMs = timeout > 0 ? timeout : DEFAULT_INIT_TIMEOUT_MS;
    this.frames = [];
    this.modal = null;
    this.dialogQueue = Promise.resolve();
    this.modalCounter = 0;
    this.visible = false;
    this.focusMode = false;
    this.notification = 0;
    this.position = null; // {left, top} once the user moved the window
    var iframe = this.box.querySelector('iframe[data-pd-frame="floating"]');
    this.panel = new ExtensionFrame(this, "floating", iframe); // `panel`: Host's helpers read it
    this.frames.push(this.panel);
    this.theme = this.panel.url.searchParams.get("theme") === "dark" ? "dark" : "light";
    this.applyTheme();
    this.showPanelState("loading");
    this.panel.startTimer();
    this.bindFloatingControls();
  }

  FloatingHost.prototype = Object.create(Host.prototype);
  FloatingHost.prototype.constructor = FloatingHost;

  FloatingHost.prototype.find = function (selector) {
    return this.box.querySelector(selector);
  };

  FloatingHost.prototype.applyTheme = function () {
    this.box.setAttribute("data-theme", this.theme);
  };

  // Toasts and the redirect notice go over the page, not inside the small window.
  FloatingHost.prototype.toast = function (message, link, kind) {
    return Host.prototype.toast.call(this.pageHost() || this, message, link, kind);
  };

  FloatingHost.prototype.redirectNotice = function (args) {
    var host = this.pageHost();
    if (host) return host.redirectNotice(args);
    return Host.prototype.redirectNotice.call(this, args);
  };

  FloatingHost.prototype.pageHost = function () {
    return hosts.length ? hosts[0] : null;
  };

  FloatingHost.prototype.showPanelState = function (state) {
    var loading = this.find("[data-pd-loading]");
    var notice = this.find("[data-pd-timeout-notice]");
    var iframe = this.panel.iframe;
    if (loading) loading.hidden = state !== "loading";
    if (notice) notice.hidden = state !== "timeout";
    iframe.hidden = state === "timeout";
    iframe.classList.toggle("is-pending", state === "loading");
    this.box.setAttribute("data-state", state);
  };

  FloatingHost.prototype.onTimeout = function (frame) {
    if (frame.kind === "floating") this.showPanelState("timeout");
    else this.showModalState(frame, "timeout");
  };

  FloatingHost.prototype.applySize = function (frame, size) {
    if (frame.kind !== "floating") return Host.prototype.applySize.call(this, frame, size);
    size = size || {};
    if (isNumber(size.height)) frame.size.height = clamp(Math.round(size.height), FLOATING_MIN_HEIGHT, FLOATING_MAX_HEIGHT);
    if (isNumber(size.width)) frame.size.width = clamp(Math.round(size.width), FLOATING_MIN_WIDTH, FLOATING_MAX_WIDTH);
    frame.iframe.style.height = frame.size.height + "px";
    frame.iframe.style.width = frame.size.width + "px";
    this.keepInView();
  };

  FloatingHost.prototype.bindFloatingControls = function () {
    var self = this;
    this.launcher.addEventListener("click", function () {
      self.setVisible(!self.visible, { invoker: "user" });
    });
    this.box.querySelector("[data-pd-floating-close]").addEventListener("click", function () {
      self.setVisible(false, { invoker: "user" });
      self.launcher.focus();
    });
    this.box.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && !self.focusMode) {
        self.setVisible(false, { invoker: "user" });
        self.launcher.focus();
      }
    });
    var handle = this.box.querySelector("[data-pd-floating-handle]");
    handle.addEventListener("keydown", function (event) {
      var step = event.shiftKey ? 40 : 10;
      var moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (!moves[event.key]) return;
      event.preventDefault();
      self.moveBy(moves[event.key][0], moves[event.key][1]);
    });
    handle.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      var start = { x: event.clientX, y: event.clientY };
      var rect = self.box.getBoundingClientRect();
      handle.setPointerCapture(event.pointerId);
      function move(e) {
        self.moveTo(rect.left + e.clientX - start.x, rect.top + e.clientY - start.y);
      }
      function up() {
        handle.removeEventListener("pointermove", move);
        handle.removeEventListener("pointerup", up);
        handle.removeEventListener("pointercancel", up);
      }
      handle.addEventListener("pointermove", move);
      handle.addEventListener("pointerup", up);
      handle.addEventListener("pointercancel", up);
    });
    window.addEventListener("resize", function () {
      self.keepInView();
    });
  };

  FloatingHost.prototype.moveTo = function (left, top) {
    this.position = { left: left, top: top };
    this.keepInView();
  };

  FloatingHost.prototype.moveBy = function (dx, dy) {
    var rect = this.box.getBoundingClientRect();
    this.moveTo(rect.left + dx, rect.top + dy);
  };

  // The window never leaves the viewport (at least its header stays reachable).
  FloatingHost.prototype.keepInView = function () {
    if (!this.position || this.box.hidden) return;
    var rect = this.box.getBoundingClientRect();
    var left = clamp(this.position.left, 0, Math.max(0, window.innerWidth - rect.width));
    var top = clamp(this.position.top, 0, Math.max(0, window.innerHeight - 40));
    this.position = { left: left, top: top };
    this.box.style.left = left + "px";
    this.box.style.top = top + "px";
    this.box.style.right = "auto";
    this.box.style.bottom = "auto";
  };

  // Shown or hidden, by the user (launcher, close button, Escape) or by a command; the app hears it
  // as VISIBILITY {is_visible, context: {...the command's context, invoker}} (SDK README, "Visibility").
  FloatingHost.prototype.setVisible = function (visible, context) {
    var changed = this.visible !== visible;
    this.visible = visible;
    this.box.hidden = !visible;
    this.launcher.setAttribute("aria-expanded", visible ? "true" : "false");
    this.root.setAttribute("data-visible", visible ? "yes" : "no");
    if (visible) this.keepInView();
    if (!visible && this.focusMode) this.setFocusMode(false);
    if (changed || context.invoker === "command") {
      if (this.panel.initialized) this.panel.emit("visibility", { is_visible: visible, context: context });
    }
  };

  FloatingHost.prototype.setNotification = function (count) {
    this.notification = count;
    this.badge.hidden = count <= 0;
    this.badge.textContent = count > 0 ? String(count) : "";
    this.launcher.setAttribute("aria-label", count > 0 ? "The app, " + count + " new" : "The app");
    this.root.setAttribute("data-notification", String(count));
  };

  FloatingHost.prototype.setFocusMode = function (on) {
    this.focusMode = on;
    this.box.setAttribute("data-focus-mode", on ? "on" : "off");
  };

  // Commands that act on the floating window, from the window itself or from any other extension
  // of the app on the page (a panel, a custom modal).
  FloatingHost.prototype.floatingCommand = function (command, frame, args) {
    if (command === "show_floating_window" || command === "hide_floating_window") {
      if (args !== undefined && args !== null && typeof args !== "object") throw new Error("Invalid arguments");
      var context = {};
      if (args && args.context !== undefined) {
        if (!args.context || typeof args.context !== "object" || Array.isArray(args.context)) {
          throw new Error("context must be an object");
        }
        Object.keys(args.context).forEach(function (key) {
          context[key] = args.context[key];
        });
      }
      context.invoker = "command";
      this.setVisible(command === "show_floating_window", context);
      return undefined;
    }
    if (command === "set_notification") {
      var number = args && args.number;
      if (number === undefined || number === null) number = 0;
      if (!isNumber(number) || number < 0 || Math.floor(number) !== number) {
        throw new Error("number must be a whole number, 0 or more");
      }
      this.setNotification(number);
      return undefined;
    }
    if (command === "set_focus_mode") {
      if (typeof args !== "boolean") throw new Error("Focus mode takes true or false");
      if (!this.visible) throw new Error("The floating window must be visible to set focus mode");
      this.setFocusMode(args);
      return undefined;
    }
    throw new Error("Invalid command");
  };

  FloatingHost.prototype.commands = Object.create(Host.prototype.commands);
  FloatingHost.prototype.commands.initialize = function (frame, args) {
    clearTimeout(frame.timer);
    frame.initialized = true;
    this.applySize(frame, args && args.size);
    if (frame.kind === "floating") this.showPanelState("ready");
    else this.showModalState(frame, "ready");
  };
  ["show_floating_window", "hide_floating_window", "set_notification", "set_focus_mode"].forEach(function (name) {
    FloatingHost.prototype.commands[name] = function (frame, args) {
      return this.floatingCommand(name, frame, args);
    };
  });

  /* ------------------------------------------------------------------------------------------ */
  /* Wiring: listen before the iframes load; set a host up at first sight of it.                  */

  function hostFor(root) {
    if (!root.__pdHost) {
      root.__pdHost = new Host(root);
      hosts.push(root.__pdHost);
    }
    return root.__pdHost;
  }

  function setUpAll() {
    var roots = document.querySelectorAll("[data-pd-extension-host]");
    for (var i = 0; i < roots.length; i++) hostFor(roots[i]);
    var dock = document.querySelector("[data-pd-floating-host]");
    if (dock && !floating && dock.querySelector("[data-pd-floating-window]")) {
      floating = new FloatingHost(dock);
      dock.__pdHost = floating;
      if (hosts.length && hosts[0].theme !== floating.theme) floating.setTheme(hosts[0].theme);
    }
  }

  window.addEventListener("message", function (event) {
    var message = event.data;
    if (!message || typeof message !== "object" || !message.payload || typeof message.payload !== "object") return;
    setUpAll(); // a frame can talk before DOMContentLoaded
    var all = floating ? hosts.concat([floating]) : hosts;
    for (var i = 0; i < all.length; i++) {
      var frame = all[i].frameFor(event.source);
      if (frame) {
        if (event.origin !== frame.origin) return; // not the document the host loaded
        frame.receive(message, event.ports && event.ports[0]);
        return;
      }
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUpAll);
  } else {
    setUpAll();
  }

  window.PipedriveSandboxExtensionsHost = {
    hosts: hosts,
    setUp: setUpAll,
    floating: function () {
      return floating;
    },
  };
})();
