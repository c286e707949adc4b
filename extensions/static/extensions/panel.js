/* Panel side of Pipedrive's App Extensions SDK (docs/app-extensions-sdk-protocol.md).
 *
 * Initializes the vendored SDK (Pipedrive hides an iframe that has not initialized within 10 s),
 * keeps the iframe as tall as the content (ResizeObserver -> RESIZE), follows the user's theme
 * (USER_SETTINGS_CHANGE) and sends the panel's forms as fetch POSTs authenticated with a fresh
 * token from GET_SIGNED_TOKEN. No cookies: the JWT is the only credential.
 *
 * The same script runs the "Schedule a follow-up" custom modal (a page with [data-surface=modal]):
 * modal size limits, Cancel/Escape -> CLOSE_MODAL, success -> SHOW_SNACKBAR + CLOSE_MODAL, and the
 * panels' [data-open-modal] buttons (OPEN_MODAL custom_modal; when it closes the panel reloads itself
 * with a fresh token so it shows what changed).
 */
(function () {
  "use strict";

  var root = document.documentElement;
  var modalSurface = document.querySelector("[data-follow-up][data-surface=modal]");
  var isModal = Boolean(modalSurface);
  var MIN_HEIGHT = isModal ? 120 : 100; // custom modal: at least 120 x 320 (SDK README); panel 100-750
  var MAX_HEIGHT = isModal ? 900 : 750;
  var MODAL_WIDTH = 560;
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
      var size = isModal ? { height: height, width: MODAL_WIDTH } : { height: height };
      sdk.execute(AppExtensionsSDK.Command.RESIZE, size).catch(function () {});
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
    if (form.getAttribute("data-kind") === "follow-up") {
      data.resource = form.getAttribute("data-resource");
      data.selectedIds = form.getAttribute("data-selected-id");
      ["subject", "type", "due_date", "due_time", "note"].forEach(function (name) {
        data[name] = form.querySelector("[name=" + name + "]").value;
      });
    } else if (form.getAttribute("data-kind") === "settings") {
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

  // Field errors from the app's 400 ({errors: {field: message}}), shown next to each field.
  function showFieldErrors(form, errors) {
    var first = null;
    Array.prototype.forEach.call(form.querySelectorAll("[data-field-error]"), function (slot) {
      var name = slot.getAttribute("data-field-error");
      var field = form.querySelector("[name=" + name + "]");
      var message = errors && errors[name] ? String(errors[name]) : "";
      slot.textContent = message;
      if (field) {
        if (message) { field.setAttribute("aria-invalid", "true"); } else { field.removeAttribute("aria-invalid"); }
        if (message && !first) { first = field; }
      }
    });
    var alert = form.querySelector("[data-form-error]");
    if (alert) { alert.hidden = !first; }
    if (first) { first.focus(); }
  }

  function closeModal() {
    if (sdk) { return sdk.execute(AppExtensionsSDK.Command.CLOSE_MODAL).catch(function () {}); }
    return Promise.resolve();
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
      if (form.getAttribute("data-kind") === "follow-up") {
        showFieldErrors(form, ok ? {} : answer.errors);
        var formError = form.querySelector("[data-form-error]");
        if (formError && !ok && !answer.errors) { formError.textContent = answer.message || ""; formError.hidden = false; }
      }
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
    if (ok && form.getAttribute("data-kind") === "follow-up") {
      closeModal(); // the panel that opened the modal hears CLOSE_CUSTOM_MODAL and reloads
    }
  }

  // The panel reloads itself with a fresh token from GET_SIGNED_TOKEN (the one in its URL may have expired).
  async function reloadFresh() {
    try {
      var token = await signedToken();
      var url = new URL(window.location.href);
      url.searchParams.set("token", token);
      window.location.replace(url.href);
    } catch (error) {
      window.location.reload();
    }
  }

  function wireModalOpeners() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-open-modal]"), function (button) {
      button.hidden = false;
      button.addEventListener("click", async function () {
        var status = button.parentNode.querySelector("[data-modal-status]");
        button.disabled = true;
        try {
          var result = await sdk.execute(AppExtensionsSDK.Command.OPEN_MODAL, {
            type: AppExtensionsSDK.Modal.CUSTOM_MODAL,
            action_id: button.getAttribute("data-open-modal"),
            data: { title: button.getAttribute("data-modal-title") || "" }
          });
          if (result && result.status) { await reloadFresh(); return; }
        } catch (error) {
          if (status) { status.textContent = error && error.message ? error.message : String(error); }
        }
        button.disabled = false;
        button.focus();
      });
    });
  }

  function wireModalControls() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-close-modal]"), function (button) {
      button.addEventListener("click", function () { closeModal(); });
    });
    // Inside the iframe the host page never sees the key, so the modal closes itself on Escape.
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { closeModal(); }
    });
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
      var size = isModal ? { height: lastHeight, width: MODAL_WIDTH } : { height: lastHeight };
      sdk = await instance.initialize({ size: size });
    } catch (error) {
      body.setAttribute("data-sdk", "failed");
      return;
    }
    body.setAttribute("data-sdk", "ready");
    if (isModal) {
      wireModalControls();
      // autofocus does not apply in a frame that was not focused when it loaded: focus the first field.
      var first = document.querySelector("[autofocus]");
      if (first) { first.focus(); }
    } else {
      wireModalOpeners();
    }
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
