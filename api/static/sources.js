// Sources: keep each mailbox card's status current without a reload, by a light poll of
// /sources/status.json. Without JavaScript the page is the same, only static.
(function () {
  "use strict";
  var container = document.querySelector(".cards[data-status-url]");
  if (!container) { return; }
  var url = container.getAttribute("data-status-url");
  var every = parseInt(container.getAttribute("data-refresh-ms"), 10) || 5000;
  var live = document.getElementById("live-status");
  var timer = null;

  function setText(card, field, text) {
    var el = card.querySelector('[data-field="' + field + '"]');
    if (el && el.textContent !== text) { el.textContent = text; }
    return el;
  }

  function update(card, item) {
    var badge = card.querySelector('[data-field="status"]');
    var before = card.getAttribute("data-status");
    if (badge) {
      badge.textContent = item.status_label;
      badge.className = "badge badge-" + item.status;
    }
    card.className = card.className.replace(/\bstatus-\S+/, "status-" + item.status);
    card.setAttribute("data-status", item.status);
    var polled = setText(card, "last-polled", item.last_polled_text);
    if (polled) {
      if (item.last_polled_at) { polled.setAttribute("datetime", item.last_polled_at); }
      polled.title = item.last_polled_title || "";
    }
    var newMail = setText(card, "new-mail", item.new_mail);
    if (newMail) { newMail.setAttribute("data-push", item.push_state); }
    var problem = setText(card, "problem", item.problem || "");
    if (problem) { problem.hidden = !item.problem; }
    Object.keys(item.counts).forEach(function (key) {
      setText(card, "count-" + key, String(item.counts[key]));
    });
    card.querySelectorAll("[data-show-when]").forEach(function (el) {
      el.hidden = el.getAttribute("data-show-when") !== item.status;
    });
    if (before && before !== item.status && live) {
      live.textContent = card.getAttribute("data-address") + ": " + item.status_label;
    }
  }

  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) {
          window.location.reload(); // the session ended: the page sends to sign-in
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (body) {
        if (!body) { return; }
        body.items.forEach(function (item) {
          var card = container.querySelector('[data-mailbox-id="' + item.id + '"]');
          if (card) { update(card, item); }
        });
      })
      .catch(function () { /* offline for a moment: the next round tries again */ })
      .then(schedule);
  }

  function schedule() {
    clearTimeout(timer);
    if (!document.hidden) { timer = setTimeout(refresh, every); }
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { clearTimeout(timer); } else { refresh(); }
  });
  schedule();
})();
