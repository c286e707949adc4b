/* Panel side of Pipedrive's App Extensions SDK (docs/app-extensions-sdk-protocol.md).
 *
 * Initializes the vendored SDK (Pipedrive hides an iframe that has not initialized within 10 s),
 * keeps the iframe as tall as the content (ResizeObserver -> RESIZE), follows the user's theme
 * (USER_SETTINGS_CHANGE) and sends the panel's forms as fetch POSTs authenticated with a fresh
 * token from GET_SIGNED_TOKEN. No cookies: the JWT is the only credential.
 */
(function () {
  "use strict";

  var MIN_HEIGHT = 100;
  var MAX_HEIGHT = 750;
  var root = document.documentElement;
  var body = document.body;
  var content = document.querySelector("[data-panel]");
  var sdk = null;
  var lastHeight = 0;
  var resizeTimer = null;

  // The content's own height, never the document's: the document is at least as tall as the iframe,
  // so measuring it would never let the panel shrink.
  function contentHeight() {
    var style = window.getComputedStyle(body);
    var below = parseFloat(style.paddingBottom || "0") + parseFloat(style.marginBottom || "0");
    var height = Math.ceil(content.getBoundingClientRect().bottom + window.scrollY + below);
    return Math.max(MIN_HEIGHT, Math.min(MAX_HEIGHT, height));
  }

  function applyTheme(theme) {
    root.setAttribute("data-theme", theme === "dark" ? "dark" : "light");
  }

  function resizeSoon() {
    if (!sdk) { return; }
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(function () {
      var height = contentHeight();
      if (height === lastHeight) { return; }
      lastHeight = height;
      sdk.execute(AppExtensionsSDK.Command.RESIZE, { height: height }).catch(function () {});
    }, 30);
  }

  function snackbar(message) {
    var live = document.querySelector("[data-form-live]");
    if (live) { live.textContent = message; }
    if (sdk) {
      sdk.execute(AppExtensionsSDK.Command.SHOW_SNACKBAR, { message: message }).catch(function () {});
    }
  }

  function formPayload(form) {
    var data = {
      userId: form.getAttribute("data-user-id"),
      companyId: form.getAttribute("data-company-id")
    };
    if (form.getAttribute("data-kind") === "settings") {
      data.tracked_entities = Array.prototype.map.call(
        form.querySelectorAll("input[name=tracked_entities]:checked"), function (box) { return box.value; });
      data.history_retention_days = parseInt(form.querySelector("input[name=history_retention_days]").value, 10);
    } else {
      data.resource = form.getAttribute("data-resource");
      data.selectedIds = form.getAttribute("data-selected-id");
      data.content = form.querySelector("[name=content]").value;
    }
    return data;
  }

  async function signedToken() {
    if (!sdk) { throw new Error("Open this panel inside Pipedrive to use it."); }
    var answer = await sdk.execute(AppExtensionsSDK.Command.GET_SIGNED_TOKEN);
    if (!answer || !answer.token) { throw new Error("Pipedrive did not provide a token."); }
    return answer.token;
  }

  // Messages in the viewer's language, rendered by the server into data-msg-* on <body>.
  function pageText(key, fallback) {
    return document.body.getAttribute("data-msg-" + key) || fallback;
  }

  async function submitForm(event) {
    event.preventDefault();
    var form = event.currentTarget;
    var status = form.querySelector("[data-form-status]");
    var button = form.querySelector("button[type=submit]");
    if (form.getAttribute("data-state") === "sending") { return; }
    form.setAttribute("data-state", "sending");
    if (button) { button.disabled = true; }
    if (status) { status.textContent = pageText("saving", "Saving…"); }
    var ok = false;
    var message;
    try {
      var token = await signedToken();
      var response = await fetch(form.getAttribute("data-action-url"), {
        method: "POST",
        credentials: "omit",
        cache: "no-store",
        headers: {
          "Authorization": "Bearer " + token,
          "Content-Type": "application/json",
          "Accept": "application/json"
        },
        body: JSON.stringify(formPayload(form))
      });
      var answer = {};
      try { answer = await response.json(); } catch (ignored) { answer = {}; }
      ok = response.ok && answer.ok === true;
      message = answer.message || (ok ? pageText("saved", "Saved.") : pageText("failed", "The app could not save this.") + " (HTTP " + response.status + ")");
    } catch (error) {
      message = pageText("unreachable", "The app could not be reached.");
    }
    form.setAttribute("data-state", ok ? "saved" : "failed");
    if (button) { button.disabled = false; }
    if (status) { status.textContent = message; }
    if (ok && form.getAttribute("data-success-reset")) {
      var field = form.querySelector("[name=" + form.getAttribute("data-success-reset") + "]");
      if (field) { field.value = ""; }
    }
    snackbar(message);
  }

  function wireForms() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-action-form]"), function (form) {
      form.addEventListener("submit", submitForm);
    });
  }

  async function start() {
    wireForms();
    var instance;
    try {
      instance = new AppExtensionsSDK();  // reads `id` and `theme` from this page's URL
    } catch (error) {
      body.setAttribute("data-sdk", "standalone");  // opened outside Pipedrive
      return;
    }
    try {
      lastHeight = contentHeight();
      sdk = await instance.initialize({ size: { height: lastHeight } });
    } catch (error) {
      body.setAttribute("data-sdk", "failed");
      return;
    }
    body.setAttribute("data-sdk", "ready");
    // SDK 0.15.1 stores the whole posted object as userSettings, so read the theme from the event's
    // own `data` (docs/app-extensions-sdk-protocol.md, "Quirk").
    sdk.listen(AppExtensionsSDK.Event.USER_SETTINGS_CHANGE, function (message) {
      var theme = message && message.data && message.data.theme;
      if (theme) { applyTheme(theme); }
    });
    if (window.ResizeObserver) {
      new ResizeObserver(resizeSoon).observe(content);
    }
    resizeSoon();
  }

  start();
}());
