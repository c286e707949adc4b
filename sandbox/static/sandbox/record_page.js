/*
 * A sandbox record page's actions menu (Pipedrive's three-dot menu in the detail view) with the
 * app's actions (sandbox/app_actions.py; docs/pipedrive-platform.md §3, app actions):
 *   link          an <a target=_blank> to the sandbox's redirect, which signs the selection at click time
 *   custom_modal  opened in the page's SDK host (extensions_host.js), like OPEN_MODAL without an opener
 *   json_modal    drawn here from the app's schema; the sandbox's server GETs the app's initial data and
 *                 POSTs the blocks' values (json_modal_host.py), answering with the app's success/error
 * After a modal closes, the page re-reads its activities card, as Pipedrive refreshes what changed.
 * Dependency-free; text from the app is shown with textContent only.
 */
(function () {
  "use strict";

  var menu = document.querySelector("[data-pd-actions]");

  function host() {
    var registry = window.PipedriveSandboxExtensionsHost;
    if (registry) registry.setUp();
    return registry && registry.hosts.length ? registry.hosts[0] : null;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /* --- the menu (a disclosure: button + list; Escape closes it) ----------------------------- */

  function setOpen(open) {
    var toggle = menu.querySelector("[data-pd-actions-toggle]");
    var list = menu.querySelector(".pd-actions-list");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    list.hidden = !open;
    if (open) {
      var first = list.querySelector("a, button");
      if (first) first.focus();
    }
  }

  function wireMenu() {
    if (!menu) return;
    var toggle = menu.querySelector("[data-pd-actions-toggle]");
    toggle.addEventListener("click", function () {
      setOpen(toggle.getAttribute("aria-expanded") !== "true");
    });
    menu.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
        event.stopPropagation();
        setOpen(false);
        toggle.focus();
      }
    });
    document.addEventListener("click", function (event) {
      if (!menu.contains(event.target)) setOpen(false);
    });
    Array.prototype.forEach.call(menu.querySelectorAll("[data-pd-action]"), function (item) {
      item.addEventListener("click", function () {
        var kind = item.getAttribute("data-pd-action-kind");
        setOpen(false);
        if (kind === "link") return; // the browser opens the new tab
        var h = host();
        if (!h) return;
        if (kind === "custom_modal") {
          h.openAction(item.getAttribute("data-pd-action")).catch(function (error) {
            h.toast(error.message || String(error), null, "error");
          });
        } else if (kind === "json_modal") {
          var label = item.getAttribute("data-pd-action-label") || item.textContent;
          openJsonModal(h, item.getAttribute("data-pd-action"), item.getAttribute("data-pd-action-url"), label, toggle);
        }
      });
    });
  }

  /* --- JSON modal, drawn from the app's schema ------------------------------------------------- */

  function csrfToken() {
    return menu ? menu.getAttribute("data-csrf") || "" : "";
  }

  function blockField(key, block, value, index) {
    var kind = String(block.$ref || "").replace("#/definitions/element-", "");
    var options = block.options || {};
    var wrap = el("div", "pd-json-block pd-json-block-" + kind);
    wrap.setAttribute("data-pd-block", key);
    var id = "pd-json-" + index + "-" + key;
    if (kind === "separator") {
      wrap.appendChild(el("hr"));
      return wrap;
    }
    if (kind === "text") {
      wrap.appendChild(el("p", "pd-ext-dialog-text", options.value || ""));
      return wrap;
    }
    var label = el("label", "", (options.label || key) + (options.isRequired ? " *" : ""));
    label.setAttribute("for", id);
    wrap.appendChild(label);
    var input;
    if (kind === "textarea") {
      input = el("textarea");
      input.rows = 3;
    } else if (kind === "select") {
      input = el("select");
      (options.items || []).forEach(function (item) {
        var option = el("option", "", item.label);
        option.value = String(item.value);
        input.appendChild(option);
      });
    } else {
      input = el("input");
      input.type = kind === "datepicker" ? "date" : "text";
    }
    input.id = id;
    input.name = key;
    if (options.placeholder) input.placeholder = options.placeholder;
    if (options.isRequired) input.required = true;
    var initial = value !== undefined ? value : options.value;
    if (initial !== undefined && initial !== null) input.value = String(initial);
    wrap.appendChild(input);
    if (options.message) {
      var hint = el("span", "pd-json-hint", options.message);
      hint.id = id + "-hint";
      input.setAttribute("aria-describedby", hint.id);
      wrap.appendChild(hint);
    }
    return wrap;
  }

  function openJsonModal(h, actionId, url, label, returnFocus) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (loaded) {
        h.overlay("pd-ext-modal pd-ext-json-modal", function (dialog, done) {
          dialog.setAttribute("data-pd-modal", "json_modal");
          dialog.setAttribute("data-pd-action", actionId);
          var title = el("h2", "pd-ext-dialog-title", label);
          title.id = "pd-json-title-" + actionId;
          dialog.setAttribute("aria-labelledby", title.id);
          dialog.appendChild(title);
          var error = el("p", "pd-ext-notice", "");
          error.setAttribute("role", "alert");
          error.setAttribute("data-pd-json-error", "");
          error.hidden = true;
          dialog.appendChild(error);
          if (!loaded.ok) {
            error.textContent = loaded.message || ("The app's data could not be loaded. " + (loaded.problems || []).join("; "));
            error.hidden = false;
            var closeOnly = h.button("Close", "pd-ext-button-secondary", function () { done(null); });
            closeOnly.setAttribute("data-pd-autofocus", "");
            dialog.appendChild(closeOnly);
            return function (event) { if (event.key === "Escape") done(null); };
          }
          var form = el("form", "pd-json-form");
          form.noValidate = true;
          var blocks = ((loaded.schema.properties || {}).blocks || {}).properties || {};
          var initial = (loaded.data && loaded.data.blocks) || {};
          Object.keys(blocks).forEach(function (key, index) {
            var value = initial[key] && initial[key].value;
            form.appendChild(blockField(key, blocks[key], value, index));
          });
          var first = form.querySelector("input, select, textarea");
          if (first) first.setAttribute("data-pd-autofocus", "");
          var actionsBox = el("div", "pd-ext-dialog-actions");
          var actions = ((loaded.schema.properties || {}).actions || {}).properties || {};
          Object.keys(actions).forEach(function (key) {
            var options = actions[key].options || {};
            var primary = actions[key].$ref === "#/definitions/action-primary";
            var button = h.button(options.label || key, primary ? "pd-ext-button-primary" : "pd-ext-button-secondary", function () {
              if (options.handler === "cancel") { done(null); return; }
              submit();
            });
            if (primary) button.setAttribute("data-pd-modal-submit", "");
            actionsBox.appendChild(button);
          });
          form.appendChild(actionsBox);
          form.addEventListener("submit", function (event) { event.preventDefault(); submit(); });
          dialog.appendChild(form);

          function submit() {
            var values = {};
            Array.prototype.forEach.call(form.elements, function (field) {
              if (field.name) values[field.name] = field.value;
            });
            fetch(url, {
              method: "POST",
              credentials: "same-origin",
              headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
              body: JSON.stringify(values),
            })
              .then(function (response) { return response.json(); })
              .then(function (answer) {
                if (answer.ok) {
                  var success = answer.success || {};
                  var link = success.link ? { url: success.link.value, label: success.link.label } : null;
                  h.toast(success.message || "Done", link);
                  done(true);
                } else {
                  error.textContent = answer.message || "The app did not complete the action.";
                  error.hidden = false;
                }
              })
              .catch(function () {
                error.textContent = "The app could not be reached.";
                error.hidden = false;
              });
          }
          return function (event) { if (event.key === "Escape") done(null); };
        }).then(function (submitted) {
          if (submitted) document.dispatchEvent(new CustomEvent("pd:record-changed", { detail: { action: actionId } }));
          if (returnFocus) returnFocus.focus();
        });
      })
      .catch(function () {
        h.toast("The app's JSON modal could not be opened.", null, "error");
      });
  }

  /* --- what changed: the record's activities ---------------------------------------------------- */

  document.addEventListener("pd:record-changed", function () {
    var card = document.querySelector("[data-pd-activities]");
    if (!card) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-pd-activities]");
        if (fresh) card.replaceWith(document.importNode(fresh, true));
      })
      .catch(function () {});
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wireMenu);
  else wireMenu();
})();
