// DeskClone support form embed: <script src=".../static/embed.js" data-deskclone-form="PUBLIC_KEY" async></script>
// Places the hosted form in an iframe right after this script tag.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var key = script.getAttribute("data-deskclone-form");
  if (!key) { return; }
  var base = new URL(script.src).origin;
  var frame = document.createElement("iframe");
  frame.src = base + "/forms/" + encodeURIComponent(key);
  frame.title = "Contact support";
  frame.loading = "lazy";
  frame.style.cssText = "border:0;width:100%;max-width:640px;height:720px";
  script.parentNode.insertBefore(frame, script.nextSibling);
})();
