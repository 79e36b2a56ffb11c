// DeskClone pages: small conveniences on top of pages that work without JavaScript.
(function () {
  "use strict";

  // Times are written in UTC by the server; show them in the reader's own time zone.
  function localTimes(root) {
    var format;
    try {
      format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
    } catch (e) {
      return;
    }
    root.querySelectorAll("time[data-local][datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        el.title = el.textContent;
        el.textContent = format.format(when);
      }
    });
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  // <button data-copy="ID"> copies the text of #ID and says so in [data-copied-for=ID].
  function copyButtons(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var id = button.getAttribute("data-copy");
        var source = document.getElementById(id);
        var status = root.querySelector('[data-copied-for="' + id + '"]');
        if (!source) { return; }
        var text = "value" in source ? source.value : source.textContent;
        copyText(text).then(function () {
          if (status) { status.textContent = "Copied to the clipboard."; }
        }, function () {
          source.focus();
          if (source.select) { source.select(); }
          if (status) { status.textContent = "Press Ctrl+C (or Cmd+C) to copy the selected code."; }
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    copyButtons(document);
  });
})();
