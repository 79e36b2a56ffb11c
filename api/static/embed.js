// DeskClone support form embed:
//   <script src="https://help.example.com/static/embed.js" data-deskclone-form="PUBLIC_KEY" async></script>
// Renders the support form right after this script tag, on any site, and posts it to the
// public form endpoint (CORS, no cookies). Field errors show inline; a sent form answers
// "We got it: #N". Styles live in a shadow root, so the host page and the form leave each
// other alone. `data-deskclone-preview="true"` shows the form without ever sending it.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.parentNode) { return; }
  var key = script.getAttribute("data-deskclone-form");
  if (!key) { return; }
  var preview = script.getAttribute("data-deskclone-preview") === "true";
  var base = new URL(script.src, document.baseURI).origin;
  var endpoint = base + "/api/v1/public/" + encodeURIComponent(key) + "/form";
  var uid = "dc" + Math.random().toString(36).slice(2, 10);

  var CSS = [
    ":host { display: block; max-width: 40rem; }",
    ".dc { font: 16px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1d2330;",
    "  background: #fff; border: 1px solid #d9dde4; border-radius: .6rem; padding: 1.25rem; text-align: left; }",
    ".dc * { box-sizing: border-box; }",
    "h2 { font-size: 1.3rem; line-height: 1.3; margin: 0 0 .35rem; }",
    "p { margin: 0 0 1rem; }",
    "p:last-child { margin-bottom: 0; }",
    ".hint { color: #5b6474; }",
    ".field { display: flex; flex-direction: column; gap: .25rem; margin: 0 0 1rem; }",
    "label { font-weight: 600; }",
    "input, textarea { font: inherit; color: inherit; background: #fff; width: 100%; padding: .55rem .65rem;",
    "  border: 1px solid #8a93a3; border-radius: .4rem; }",
    "textarea { resize: vertical; min-height: 8rem; }",
    "input:focus, textarea:focus, button:focus-visible { outline: 3px solid #2553c7; outline-offset: 1px; }",
    ".has-error input, .has-error textarea { border-color: #b42318; }",
    ".error { color: #b42318; margin: 0; font-size: .93rem; font-weight: 500; }",
    ".form-error { color: #8f1c13; background: #fdeceb; border: 1px solid #f2b8b3; border-radius: .4rem;",
    "  padding: .5rem .75rem; }",
    ".done { color: #146c2e; }",
    "button { font: inherit; font-weight: 600; padding: .6rem 1.4rem; border: 0; border-radius: .4rem;",
    "  background: #2553c7; color: #fff; cursor: pointer; }",
    "button[disabled] { opacity: .7; cursor: progress; }",
    ".trap { position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }",
    "[hidden] { display: none !important; }"
  ].join("\n");

  var FIELDS = [
    { name: "name", label: "Your name", type: "text", autocomplete: "name", required: false },
    { name: "email", label: "Email address", type: "email", autocomplete: "email", required: true },
    { name: "subject", label: "Subject", type: "text", autocomplete: "off", required: true },
    { name: "description", label: "How can we help?", type: "textarea", autocomplete: "off", required: true }
  ];

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (attrs[name] === true) { node.setAttribute(name, ""); }
      else if (attrs[name] !== false && attrs[name] != null) { node.setAttribute(name, attrs[name]); }
    });
    if (text != null) { node.textContent = text; }
    return node;
  }

  function newSubmissionId() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // The API's messages are precise but technical; say the common ones plainly.
  function friendly(field, message) {
    var text = String(message || "");
    if (/at most|too long/i.test(text)) { return "This is too long; please shorten it."; }
    if (field === "email") { return "Enter a valid email address, like ann@example.com."; }
    if (field === "subject") { return "Enter a subject."; }
    if (field === "description") { return "Tell us how we can help."; }
    return text || "Please check this field.";
  }

  function attachStyles(root) {
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      root.appendChild(el("style", {}, CSS));
    }
  }

  var host = el("div", { "class": "deskclone-support-form" });
  script.parentNode.insertBefore(host, script.nextSibling);
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  attachStyles(root);

  var box = el("div", { "class": "dc" });
  root.appendChild(box);
  var heading = el("h2", { id: uid + "-title", tabindex: "-1" }, "Contact support");
  box.appendChild(heading);
  var intro = el("p", { "class": "hint" }, "Tell us what is going on and we will get back to you by email.");
  box.appendChild(intro);
  var formError = el("p", { "class": "form-error", role: "alert", hidden: true });
  box.appendChild(formError);

  var form = el("form", { novalidate: true, "aria-labelledby": uid + "-title" });
  var inputs = {};
  var errors = {};
  FIELDS.forEach(function (f) {
    var id = uid + "-" + f.name;
    var wrap = el("div", { "class": "field" });
    var label = el("label", { "for": id }, f.label);
    if (f.required) { label.appendChild(el("span", { "aria-hidden": "true" }, " *")); }
    var input = f.type === "textarea"
      ? el("textarea", { id: id, name: f.name, rows: "6", required: f.required })
      : el("input", { id: id, name: f.name, type: f.type, autocomplete: f.autocomplete, required: f.required });
    var error = el("p", { "class": "error", id: id + "-error", hidden: true });
    wrap.appendChild(label);
    wrap.appendChild(input);
    wrap.appendChild(error);
    form.appendChild(wrap);
    inputs[f.name] = input;
    errors[f.name] = error;
  });
  var trap = el("div", { "class": "trap", "aria-hidden": "true" });
  var trapInput = el("input", { name: "website", type: "text", tabindex: "-1", autocomplete: "off" });
  trap.appendChild(trapInput);
  form.appendChild(trap);
  var button = el("button", { type: "submit" }, "Send");
  form.appendChild(button);
  box.appendChild(form);
  var submissionId = newSubmissionId();

  function showError(name, message) {
    var input = inputs[name];
    var error = errors[name];
    if (!input || !error) { return false; }
    error.textContent = message;
    error.hidden = false;
    input.parentNode.classList.add("has-error");
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", error.id);
    return true;
  }

  function clearErrors() {
    formError.hidden = true;
    formError.textContent = "";
    Object.keys(inputs).forEach(function (name) {
      errors[name].hidden = true;
      errors[name].textContent = "";
      inputs[name].parentNode.classList.remove("has-error");
      inputs[name].removeAttribute("aria-invalid");
      inputs[name].removeAttribute("aria-describedby");
    });
  }

  function focusFirstError() {
    for (var i = 0; i < FIELDS.length; i++) {
      var input = inputs[FIELDS[i].name];
      if (input.getAttribute("aria-invalid") === "true") { input.focus(); return; }
    }
  }

  function checkLocally() {
    var bad = false;
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(inputs.email.value.trim())) {
      bad = showError("email", friendly("email")) || bad;
    }
    ["subject", "description"].forEach(function (name) {
      if (!inputs[name].value.trim()) { bad = showError(name, friendly(name)) || bad; }
    });
    return !bad;
  }

  function done(number, reference) {
    box.textContent = "";
    var title = el("h2", { "class": "done", tabindex: "-1" },
      number ? "We got it: #" + number : "We got it");
    var text = el("p", { role: "status" }, number
      ? "Your request is ticket #" + number + ". We will reply by email."
      : "Your request is being filed (reference " + reference + "). We will reply by email.");
    box.appendChild(title);
    box.appendChild(text);
    title.focus();
    return { title: title, text: text };
  }

  function waitForNumber(reference, shown, attempt) {
    if (attempt > 20) { return; }
    setTimeout(function () {
      fetch(endpoint + "/" + encodeURIComponent(reference), { credentials: "omit" })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          if (body && body.ticket_number) {
            shown.title.textContent = "We got it: #" + body.ticket_number;
            shown.text.textContent = "Your request is ticket #" + body.ticket_number + ". We will reply by email.";
          } else {
            waitForNumber(reference, shown, attempt + 1);
          }
        })
        .catch(function () { waitForNumber(reference, shown, attempt + 1); });
    }, 1500);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    if (!checkLocally()) { focusFirstError(); return; }
    if (preview) {
      formError.textContent = "This is a preview: the form is filled in correctly, and nothing was sent.";
      formError.hidden = false;
      return;
    }
    var body = {
      name: inputs.name.value,
      email: inputs.email.value.trim(),
      subject: inputs.subject.value,
      description: inputs.description.value,
      website: trapInput.value,
      submission_id: submissionId
    };
    button.disabled = true;
    button.textContent = "Sending…";
    fetch(endpoint, {
      method: "POST",
      credentials: "omit",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, data: data };
      });
    }).then(function (result) {
      if (result.status === 201) { done(result.data.ticket_number); return; }
      if (result.status === 202) {
        waitForNumber(result.data.reference, done(null, result.data.reference), 0);
        return;
      }
      var error = (result.data && result.data.error) || {};
      var shown = false;
      (error.fields || []).forEach(function (f) {
        var name = String(f.field || "").split(".")[0];
        shown = showError(name, friendly(name, f.message)) || shown;
      });
      if (!shown) {
        formError.textContent = result.status === 429 && error.message
          ? error.message
          : "Something went wrong on our side; please try again in a minute.";
        formError.hidden = false;
      }
      focusFirstError();
    }).catch(function () {
      formError.textContent = "We could not reach the support desk. Check your connection and try again.";
      formError.hidden = false;
    }).then(function () {
      button.disabled = false;
      button.textContent = "Send";
    });
  });
})();
