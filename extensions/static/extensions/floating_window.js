/* The floating window's side of Pipedrive's App Extensions SDK (docs/app-extensions-sdk-protocol.md).
 *
 * Shows "changes on your records" from the app's feed (extensions/floating_window.py), polled with a
 * Bearer token from GET_SIGNED_TOKEN and a `since` cursor, so each poll costs one indexed query.
 *
 * - Shown (VISIBILITY is_visible): polls the feed every data-poll-ms, renders new lines on top, clears
 *   the dock badge (SET_NOTIFICATION {number: 0}).
 * - Hidden: no rendering; polls only the unread count, every data-hidden-poll-ms, and puts it on the
 *   dock badge (SET_NOTIFICATION {number}). Changes the viewer made themselves are not counted.
 * - Page in the background (PAGE_VISIBILITY_STATE hidden): no polling at all until it is back.
 * - A line's record opens with REDIRECT_TO, then the window hides itself (HIDE_FLOATING_WINDOW).
 * No cookies and no storage: the JWT is the only credential; every text is set with textContent.
 */
(function () {
  "use strict";

  var MAX_ITEMS = 50; // lines kept in the list
  var MAX_BACKOFF_MS = 60000;
  var body = document.body;
  var root = document.documentElement;
  var main = document.querySelector("[data-floating]");
  var list = document.querySelector("[data-feed]");
  var statusLine = document.querySelector("[data-feed-status]");
  var feedUrl = body.getAttribute("data-feed-url");
  var pageLimit = parseInt(body.getAttribute("data-page-limit"), 10) || 20;
  var pollMs = parseInt(body.getAttribute("data-poll-ms"), 10) || 5000;
  var hiddenPollMs = parseInt(body.getAttribute("data-hidden-poll-ms"), 10) || 15000;

  var sdk = null;
  var cursor = 0; // the newest line id this window has rendered
  var loaded = false; // a first page has been rendered
  var baselined = false; // the cursor marks what counts as already seen
  var visible = false;
  var pageVisible = !document.hidden;
  var timer = null;
  var failures = 0;
  var badge = 0; // what the dock badge shows now
  var inFlight = false;

  function text(key, fallback) {
    return body.getAttribute("data-msg-" + key) || fallback;
  }

  function el(tag, className, content) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (content !== undefined && content !== null) { node.textContent = String(content); }
    return node;
  }

  function applyTheme(theme) {
    root.setAttribute("data-theme", theme === "dark" ? "dark" : "light");
  }

  function setStatus(message) {
    statusLine.textContent = message;
  }

  function setBadge(count) {
    if (!sdk || count === badge) { return; }
    badge = count;
    sdk.execute(AppExtensionsSDK.Command.SET_NOTIFICATION, { number: count }).catch(function () {});
  }

  async function token() {
    var answer = await sdk.execute(AppExtensionsSDK.Command.GET_SIGNED_TOKEN);
    if (!answer || !answer.token) { throw new Error("no token"); }
    return answer.token;
  }

  async function feed(params) {
    var url = new URL(feedUrl, window.location.href);
    url.searchParams.set("userId", body.getAttribute("data-user-id"));
    url.searchParams.set("companyId", body.getAttribute("data-company-id"));
    Object.keys(params).forEach(function (key) { url.searchParams.set(key, String(params[key])); });
    var response = await fetch(url.href, {
      method: "GET",
      credentials: "omit",
      cache: "no-store",
      headers: { "Authorization": "Bearer " + (await token()), "Accept": "application/json" }
    });
    if (!response.ok) { throw new Error("HTTP " + response.status); }
    return response.json();
  }

  function openRecord(item) {
    if (!sdk || !item.open) { return; }
    sdk.execute(AppExtensionsSDK.Command.REDIRECT_TO, { view: item.open.view, id: item.open.id })
      .then(function () {
        return sdk.execute(AppExtensionsSDK.Command.HIDE_FLOATING_WINDOW, {
          context: { opened: { view: item.open.view, id: item.open.id } }
        });
      })
      .catch(function () {});
  }

  function line(item, isNew) {
    var li = el("li", "fw-item fw-kind-" + item.kind + (isNew ? " is-new" : ""));
    li.setAttribute("data-feed-item", String(item.id));
    li.setAttribute("data-entity", item.entity);
    var record = el("div", "fw-record");
    record.appendChild(el("span", "fw-entity", item.entity_label));
    if (item.open) {
      var open = el("button", "fw-open", item.record);
      open.type = "button";
      open.setAttribute("data-open", item.open.view + ":" + item.open.id);
      open.addEventListener("click", function () { openRecord(item); });
      record.appendChild(open);
    } else {
      record.appendChild(el("strong", "fw-record-name", item.record));
    }
    li.appendChild(record);
    var what = el("div", "fw-what");
    what.appendChild(el("strong", "", item.what));
    if (item.kind === "changed") {
      what.appendChild(document.createTextNode(": "));
      what.appendChild(el("span", "old", item.old || "\u2014"));
      what.appendChild(document.createTextNode(" \u2192 "));
      what.appendChild(el("span", "new", item.new || "\u2014"));
    } else if (item.new) {
      what.appendChild(document.createTextNode(": "));
      what.appendChild(el("span", "new", item.new));
    }
    li.appendChild(what);
    var meta = el("div", "fw-meta muted");
    meta.appendChild(el("span", "fw-actor", text("by", "by {actor}").replace("{actor}", item.actor)));
    meta.appendChild(document.createTextNode(" \u00b7 "));
    var when = el("time", "", item.when);
    when.setAttribute("datetime", item.when_iso);
    meta.appendChild(when);
    li.appendChild(meta);
    return li;
  }

  function render(items, replace) {
    if (replace) { list.textContent = ""; }
    Array.prototype.forEach.call(list.querySelectorAll(".is-new"), function (node) { node.classList.remove("is-new"); });
    for (var i = items.length - 1; i >= 0; i--) {
      if (list.querySelector('[data-feed-item="' + items[i].id + '"]')) { continue; }
      list.insertBefore(line(items[i], !replace), list.firstChild);
    }
    while (list.children.length > MAX_ITEMS) { list.removeChild(list.lastChild); }
    main.setAttribute("data-state", list.children.length ? "ready" : "empty");
  }

  // Shown: the lines above the cursor (the newest page on the first load, or after a gap).
  async function pollShown() {
    var answer = await feed({ since: loaded ? cursor : 0, limit: pageLimit });
    var replace = !loaded || answer.more === true;
    if (answer.more === true && loaded) {
      answer = await feed({ since: 0, limit: pageLimit });
    }
    var fresh = loaded ? answer.items.length : 0;
    render(answer.items, replace);
    cursor = Math.max(cursor, answer.cursor || 0);
    loaded = true;
    baselined = true;
    if (!list.children.length) {
      setStatus(text("empty", "No changes on your records yet."));
    } else if (fresh === 1) {
      setStatus(text("new-one", "1 new change."));
    } else if (fresh > 1) {
      setStatus(text("new-many", "{count} new changes.").replace("{count}", String(fresh)));
    } else {
      setStatus(text("updated", "Up to date."));
    }
  }

  // Hidden: only the count of others' changes above the cursor, for the dock badge.
  async function pollHidden() {
    if (!baselined) { // nothing seen yet: the newest line is the starting point, nothing is unread
      var first = await feed({ since: 0, unread: 1 });
      cursor = Math.max(cursor, first.cursor || 0);
      baselined = true;
      return;
    }
    var answer = await feed({ since: cursor, unread: 1 });
    if (!visible) { setBadge(answer.unread || 0); } // shown meanwhile: everything is in view, no badge
  }

  function schedule(delay) {
    window.clearTimeout(timer);
    timer = null;
    if (!sdk || !pageVisible) { return; } // a background tab does no work at all
    timer = window.setTimeout(tick, delay);
  }

  async function tick() {
    if (inFlight) { // a poll is under way: run again right after it, in the (maybe new) mode
      schedule(50);
      return;
    }
    inFlight = true;
    var shown = visible;
    try {
      if (shown) { await pollShown(); } else { await pollHidden(); }
      failures = 0;
    } catch (error) {
      failures += 1;
      if (shown) { setStatus(text("failed", "The changes could not be loaded. The window will try again.")); }
    } finally {
      inFlight = false;
    }
    var base = visible ? pollMs : hiddenPollMs;
    schedule(Math.min(MAX_BACKOFF_MS, base * Math.pow(2, Math.min(failures, 4))));
  }

  function setVisible(isVisible) {
    visible = isVisible;
    body.setAttribute("data-visible", isVisible ? "yes" : "no");
    if (isVisible) {
      setBadge(0); // everything is in view now
      schedule(0);
    } else {
      schedule(hiddenPollMs);
    }
  }

  async function start() {
    var instance;
    try {
      instance = new AppExtensionsSDK(); // reads `id` and `theme` from this page's URL
    } catch (error) {
      body.setAttribute("data-sdk", "standalone"); // opened outside Pipedrive
      setStatus(text("standalone", "Open this window inside Pipedrive to see your changes."));
      return;
    }
    try {
      sdk = await instance.initialize({ size: { height: 420, width: 360 } });
    } catch (error) {
      body.setAttribute("data-sdk", "failed");
      return;
    }
    body.setAttribute("data-sdk", "ready");
    sdk.listen(AppExtensionsSDK.Event.USER_SETTINGS_CHANGE, function (message) {
      var theme = message && message.data && message.data.theme;
      if (theme) { applyTheme(theme); }
    });
    // Shown or hidden, by the user (dock, close button) or by a command; `context.invoker` says which.
    sdk.listen(AppExtensionsSDK.Event.VISIBILITY, function (message) {
      var data = message && message.data;
      if (!data || typeof data.is_visible !== "boolean") { return; }
      var invoker = data.context && data.context.invoker;
      body.setAttribute("data-invoker", invoker === "command" ? "command" : "user");
      setVisible(data.is_visible);
    });
    sdk.listen(AppExtensionsSDK.Event.PAGE_VISIBILITY_STATE, function (message) {
      var state = message && message.data && message.data.state;
      pageVisible = state !== "hidden";
      schedule(0); // back: catch up at once; gone: stop (schedule does nothing for a hidden page)
    });
    document.querySelector("[data-refresh]").addEventListener("click", function () { schedule(0); });
    // Until the host says otherwise, a frame with no viewport (display: none) is a hidden window.
    setVisible(window.innerWidth > 0 && window.innerHeight > 0);
  }

  start();
}());
