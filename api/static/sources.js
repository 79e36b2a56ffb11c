// Sources: keep each mailbox card current without a reload. The workspace's event stream
// says when a card changed (a mailbox expired or came back, its mail became tickets), and
// the card is then read again from /sources/status.json; a slow refresh keeps "last checked"
// current, since a poll that finds nothing is no event. Without JavaScript the page is the
// same, only static.
(function () {
  "use strict";
  var container = document.querySelector(".cards[data-status-url]");
  if (!container) { return; }
  var url = container.getAttribute("data-status-url");
  var every = parseInt(container.getAttribute("data-refresh-ms"), 10) || 60000;
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

  var soon = null;
  function refreshSoon() {  // a burst of events is one read
    if (soon === null) { soon = setTimeout(function () { soon = null; refresh(); }, 150); }
  }

  var eventsUrl = container.getAttribute("data-events-url");
  if (eventsUrl && window.EventSource) {
    var source = new EventSource(eventsUrl);
    ["mailbox.auth_expired", "mailbox.reconnected"].forEach(function (type) {
      source.addEventListener(type, refreshSoon);
    });
    ["ticket.created", "ticket.message_added"].forEach(function (type) {
      source.addEventListener(type, function (e) {
        var mailbox = JSON.parse(e.data).data.ticket.mailbox;
        if (mailbox && container.querySelector('[data-mailbox-id="' + mailbox.id + '"]')) {
          refreshSoon();
        }
      });
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { clearTimeout(timer); } else { refresh(); }
  });
  schedule();
})();

// The IMAP form: "Connect another mail server" opens it in place (without JavaScript the link
// loads /sources/imap with it open), and a preset fills host, port and security as it is
// picked (without JavaScript the server fills what was left empty).
(function () {
  "use strict";
  var section = document.getElementById("imap-connect");
  var opener = document.querySelector("[data-imap-open]");
  if (!section || !opener) { return; }
  var form = section.querySelector("form[data-presets]");
  var preset = form.querySelector('select[name="preset"]');
  var host = form.querySelector('input[name="host"]');
  var port = form.querySelector('input[name="port"]');
  var security = form.querySelector('select[name="security"]');
  var address = form.querySelector('input[name="address"]');
  var username = form.querySelector('input[name="username"]');

  function show(open) {
    section.hidden = !open;
    opener.setAttribute("aria-expanded", open ? "true" : "false");
  }
  show(!section.hidden);

  var hint = document.getElementById("login_hint");
  opener.addEventListener("click", function (e) {
    e.preventDefault();
    if (hint && hint.value.trim() && !address.value.trim()) {
      address.value = hint.value.trim();  // typed above, for whichever button
      address.dispatchEvent(new Event("input"));
    }
    show(true);
    section.scrollIntoView({ block: "start" });
    preset.focus();
  });
  section.querySelector("[data-imap-close]").addEventListener("click", function (e) {
    e.preventDefault();
    show(false);
    opener.focus();
  });

  var presetHosts = Array.prototype.map.call(preset.options, function (o) {
    return o.getAttribute("data-host");
  });
  function fill(chosen) {
    host.value = chosen.getAttribute("data-host");
    port.value = chosen.getAttribute("data-port");
    security.value = chosen.getAttribute("data-security");
  }

  preset.addEventListener("change", function () {
    var chosen = preset.options[preset.selectedIndex];
    if (chosen.getAttribute("data-host")) {
      fill(chosen);
    } else if (presetHosts.indexOf(host.value) !== -1) {
      host.value = "";  // "Other": a preset's server would be wrong here
      host.focus();
    }
  });

  // An address at a known host's own domain (help@fastmail.com) picks its preset, unless
  // a server of someone's own was typed.
  function presetFor(domain) {
    return Array.prototype.filter.call(preset.options, function (o) {
      return (o.getAttribute("data-domains") || "").split(" ").indexOf(domain) !== -1;
    })[0];
  }

  address.addEventListener("input", function () {
    var typed = address.value.trim();
    username.placeholder = typed || "Same as the email address";
    var known = presetFor(typed.split("@").pop().toLowerCase());
    if (known && (host.value === "" || presetHosts.indexOf(host.value) !== -1)) {
      preset.value = known.value;
      fill(known);
    }
  });
})();
