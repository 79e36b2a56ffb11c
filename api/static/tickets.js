// Tickets: the queue follows the workspace's event stream. A new ticket appears at the top
// (on the newest, unfiltered page; elsewhere a notice offers the newest), and a row whose
// ticket changes (status, a new message) is redrawn. Rows come from the server
// (/tickets/{id}/row), rendered by the same template as the page. Without JavaScript the
// page is the same, only static.
(function () {
  "use strict";
  var list = document.querySelector("ol.queue[data-events-url]");
  if (!list || !window.EventSource) { return; }
  var prepend = list.getAttribute("data-prepend") === "true";
  var live = document.getElementById("live-status");
  var notice = document.getElementById("live-notice");
  var empty = document.getElementById("queue-empty");

  function fetchRow(id) {
    return fetch("/tickets/" + encodeURIComponent(id) + "/row", {
      credentials: "same-origin", headers: { Accept: "text/html" }
    }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (!html) { return null; }
      var holder = document.createElement("template");
      holder.innerHTML = html.trim();  // escaped by the server's template
      return holder.content.firstElementChild;
    });
  }

  function rowOf(id) {
    return list.querySelector('[data-ticket-id="' + CSS.escape(id) + '"]');
  }

  function say(text) { if (live) { live.textContent = text; } }

  function created(ticket) {
    if (!prepend) { if (notice) { notice.hidden = false; } return; }
    if (rowOf(ticket.id)) { return; }
    fetchRow(ticket.id).then(function (row) {
      if (!row || rowOf(ticket.id)) { return; }
      list.insertBefore(row, list.firstElementChild);
      list.hidden = false;
      if (empty) { empty.hidden = true; }
      say("New ticket #" + ticket.number + ": " + ticket.title);
    });
  }

  function changed(ticket) {
    var old = rowOf(ticket.id);
    if (!old) { return; }
    fetchRow(ticket.id).then(function (row) {
      var current = rowOf(ticket.id);
      if (row && current) { current.replaceWith(row); }
    });
  }

  var source = new EventSource(list.getAttribute("data-events-url"));
  source.addEventListener("ticket.created", function (e) {
    created(JSON.parse(e.data).data.ticket);
  });
  ["ticket.status_changed", "ticket.message_added"].forEach(function (type) {
    source.addEventListener(type, function (e) {
      var ticket = JSON.parse(e.data).data.ticket;
      changed(ticket);
      if (type === "ticket.status_changed") {
        say("Ticket #" + ticket.number + " is now " + ticket.status);
      }
    });
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();
